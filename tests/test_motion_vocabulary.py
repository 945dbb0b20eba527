"""Motion engine prompt vocabulary: which words are understood, and what suppresses them."""

from __future__ import annotations

import pytest

from kinema.engines.motion.vocabulary import VOCABULARY, understand

DEFAULT_NEGATIVE = "blur, distort, and low quality"


def names(prompt: str, negative: str = DEFAULT_NEGATIVE, cfg: float = 0.5) -> tuple[list[str], list[str]]:
    told = understand(prompt, negative, cfg)
    return [m.entry.name for m in told.camera], [m.entry.name for m in told.effects]


@pytest.mark.parametrize(
    ("prompt", "camera"),
    [
        ("Snowflakes fall as a car moves forward along the road.", ["push-in"]),
        ("Zoom in on the cat", ["push-in"]),
        ("the camera pushes in slowly", ["push-in"]),
        ("slow dolly shot", ["dolly-in"]),
        ("dolly out from the window", ["dolly-out"]),
        ("the camera pulls back", ["pull-out"]),
        ("ZOOMING OUT over the city", ["pull-out"]),
        ("camera pans to the left", ["pan-left"]),
        ("panning right across the beach", ["pan-right"]),
        ("the camera tilts up to the sky", ["tilt-up"]),
        ("tilt down", ["tilt-down"]),
        ("the drone orbits the tower", ["orbit-right"]),
        ("orbit left around the statue", ["orbit-left"]),
        ("the view rotates slowly", ["rotate-cw"]),
        ("spinning counter-clockwise", ["rotate-ccw"]),
        ("static camera, leaves rustle", ["still"]),
        ("the camera remains still while the dog runs forward", ["still"]),
        ("a portrait of a woman", ["push-in"]),  # the default move
    ],
)
def test_camera_words(prompt: str, camera: list[str]) -> None:
    assert names(prompt)[0] == camera


def test_default_move_is_marked_as_such() -> None:
    told = understand("a quiet lake", DEFAULT_NEGATIVE, 0.5)
    assert told.default_move and not told.still
    assert "default" in told.describe()
    assert not understand("zoom in", DEFAULT_NEGATIVE, 0.5).default_move


@pytest.mark.parametrize(
    ("prompt", "effects"),
    [
        ("Snowflakes fall on the street", ["snow"]),
        ("a snowy forest in a blizzard", ["snow"]),
        ("rain pours down", ["rain"]),
        ("a rainbow over the field", []),
        ("morning mist over the lake", ["fog"]),
        ("a mistake was made", []),
        ("thick fog rolls in", ["fog"]),
        ("clouds drift over the mountains", ["clouds"]),
        ("rain, fog and snow", ["fog", "rain", "snow"]),
    ],
)
def test_effect_words(prompt: str, effects: list[str]) -> None:
    assert sorted(names(prompt)[1]) == effects


def test_negated_words_are_ignored() -> None:
    assert names("a street with no snow")[1] == []
    assert names("the camera does not zoom in, rain falls") == (["push-in"], ["rain"])  # default move


def test_negative_prompt_suppresses_every_entry_it_names() -> None:
    assert names("snow and rain", negative="snow")[1] == ["rain"]
    assert names("zoom in, pan left", negative="zooming in")[0] == ["pan-left"]
    # Suppressing the default move's own entry leaves the camera still.
    told = understand("a portrait", "push in", 0.5)
    assert told.still and told.camera == ()
    # Naming camera movement itself suppresses every move.
    told = understand("pan left and zoom in", "camera movement", 0.5)
    assert told.still and told.camera == ()
    assert "suppressed" in told.describe()


def test_default_negative_prompt_names_nothing() -> None:
    assert all(entry.find(DEFAULT_NEGATIVE) is None for entry in VOCABULARY)
    assert names("snow, zoom in") == names("snow, zoom in", negative="")


def test_cfg_scale_zero_ignores_the_prompt() -> None:
    told = understand("snow, zoom in", DEFAULT_NEGATIVE, 0.0)
    assert told.still and told.camera == () and told.effects == () and told.strength == 0.0
    with pytest.raises(ValueError):
        understand("x", "", 1.5)


def test_describe_names_the_words_it_understood() -> None:
    line = understand("Snowflakes fall as a car moves forward along the road.", DEFAULT_NEGATIVE, 0.5).describe()
    assert line.startswith('camera: push-in (from "moves forward"); effects: snow (from "Snowflakes")')

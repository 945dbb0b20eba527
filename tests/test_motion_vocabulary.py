"""Motion engine prompt understanding: directions, intensity, negation, sequences, word sense, negative prompts."""

from __future__ import annotations

import pytest

from kinema.engines.motion.prompt import HIGH, LOW, NORMAL, clauses, phases
from kinema.engines.motion.vocabulary import understand

DEFAULT_NEGATIVE = "blur, distort, and low quality"


def camera(prompt: str, negative: str = DEFAULT_NEGATIVE) -> list[list[str]]:
    return [[m.family for m in phase] for phase in understand(prompt, negative, 0.5).phases]


def effects(prompt: str, negative: str = DEFAULT_NEGATIVE) -> list[str]:
    return [e.name for e in understand(prompt, negative, 0.5).effects]


@pytest.mark.parametrize(
    ("prompt", "families"),
    [
        ("pans from right to left", ["pan-left"]),
        ("the camera pans from left to right", ["pan-right"]),
        ("pan up to the clouds", ["tilt-up"]),
        ("the camera circles the temple to the left", ["orbit-left"]),
        ("orbit counter-clockwise around the statue", ["orbit-right"]),
        ("the camera circles the tree clockwise", ["orbit-left"]),
        ("the camera rotates counterclockwise", ["roll-ccw"]),
        ("the camera moves left along the shore", ["track-left"]),
        ("we glide to the right", ["track-right"]),
        ("crane shot descending into the courtyard", ["crane-down"]),
        ("drone shot flying forward", ["drone-forward"]),
        ("a drone shot panning left", ["pan-left"]),
    ],
)
def test_directions(prompt: str, families: list[str]) -> None:
    assert camera(prompt) == [families]


def test_intensity_words_scale_moves_and_effects() -> None:
    told = understand("slow zoom into the pagoda roof, heavy snow", DEFAULT_NEGATIVE, 0.5)
    assert [(m.family, m.intensity) for m in told.camera] == [("push-in", LOW)]
    assert [(e.name, e.intensity) for e in told.effects] == [("snow", HIGH)]
    assert understand("zoom in", "", 0.5).camera[0].intensity == NORMAL
    assert understand("a quick pan to the left", "", 0.5).camera[0].intensity == HIGH
    assert understand("light rain falls", "", 0.5).effects[0].intensity == LOW
    # An intensity word belongs to the nearest match: "slowly" is the dolly's, not the mist's.
    told = understand("camera slowly dollies forward through the misty forest", "", 0.5)
    assert [(m.family, m.intensity) for m in told.camera] == [("push-in", LOW)]
    assert [(e.name, e.intensity) for e in told.effects] == [("fog", NORMAL)]
    # An intensity word far from the move in the same clause does not count.
    assert understand("zoom in on the old house at the end of the slow road", "", 0.5).camera[0].intensity == NORMAL


def test_negation_and_stillness() -> None:
    for prompt in (
        "the camera doesn't move",
        "the camera does not move at all",
        "no camera movement",
        "no movement",
        "static camera, leaves rustle",
        "locked-off shot",
        "the camera stays completely still",
    ):
        told = understand(prompt, DEFAULT_NEGATIVE, 0.5)
        assert told.still and not told.default_move and told.phases == (), prompt
    told = understand("no zoom, light rain", DEFAULT_NEGATIVE, 0.5)
    assert told.still and effects("no zoom, light rain") == ["rain"]
    assert understand("the camera does not zoom or pan, fog drifts", DEFAULT_NEGATIVE, 0.5).still
    assert effects("a street with no snow") == []
    # Negation stays in its clause.
    assert camera("no rain, sunny sky, zoom in") == [["push-in"]]


def test_sequences_are_phases() -> None:
    assert phases("zoom in slowly then pull back") == ["zoom in slowly", "pull back"]
    assert camera("zoom in slowly then pull back") == [["push-in"], ["pull-out"]]
    assert camera("pan left, then tilt up") == [["pan-left"], ["tilt-up"]]
    assert camera("first pan right, followed by a zoom in") == [["pan-right"], ["push-in"]]
    assert camera("zoom in and pan left") == [["push-in", "pan-left"]]
    # A phase that holds still stays as an empty phase.
    assert camera("the camera holds still, then slowly zooms in") == [[], ["push-in"]]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("snow-capped mountains, sunny day", []),
        ("a snow-covered cabin", []),
        ("kids building a snowman", []),
        ("rainforest", []),
        ("a rainbow over the field", []),
        ("a mistake was made", []),
        ("smoke rises from the chimney", []),
        ("a lone tree in the snow", []),
        ("snow falls on the village", ["snow"]),
        ("Snowflakes fall on the street", ["snow"]),
        ("a rainy day in Tokyo", ["rain"]),
        ("misty mountains", ["fog"]),
        ("rain, fog and snow", ["snow", "rain", "fog"]),
    ],
)
def test_word_sense(prompt: str, expected: list[str]) -> None:
    assert effects(prompt) == expected


def test_what_cannot_be_drawn_is_said_plainly() -> None:
    for prompt in (
        "a person waving",
        "a flower blooming",
        "smoke rises from the chimney",
        "Snowflakes fall as a car moves forward along the road.",
    ):
        told = understand(prompt, DEFAULT_NEGATIVE, 0.5)
        assert told.unsupported, prompt
        lines = told.limits()
        assert lines and "motion brush" in lines[0] and "learned engine" in lines[0], lines
        # Said in the camera line too: the push-in is the default, not a reading of the prompt.
        assert told.default_move and "default" in told.describe()
    assert not understand("snow falls, the camera pans left", DEFAULT_NEGATIVE, 0.5).unsupported


@pytest.mark.parametrize(
    ("prompt", "negative", "families", "still"),
    [
        ("zoom in", "zoom", [], True),
        ("zoom in, pan left", "zooming in", [["pan-left"]], False),
        ("zoom out, pan left", "zoom in", [["pull-out", "pan-left"]], False),
        ("handheld shot of the market", "shaky camera", [], True),
        ("pan left and zoom in", "camera movement", [], True),
        ("pan right", "camera motion, distortion", [], True),
        ("a portrait", "push in", [], True),
        ("pan left", "motion blur", [["pan-left"]], False),
    ],
)
def test_negative_prompt_suppresses_families(
    prompt: str, negative: str, families: list[list[str]], still: bool
) -> None:
    told = understand(prompt, negative, 0.5)
    assert [[m.family for m in p] for p in told.phases] == families
    assert told.still == still
    if still:
        assert "suppressed" in told.describe()


def test_default_negative_prompt_names_nothing() -> None:
    told = understand("snow, zoom in", DEFAULT_NEGATIVE, 0.5)
    assert told.suppressed == ()
    assert camera("snow, zoom in") == camera("snow, zoom in", negative="")


def test_cfg_scale_zero_ignores_the_prompt() -> None:
    told = understand("snow, zoom in", DEFAULT_NEGATIVE, 0.0)
    assert told.still and told.camera == () and told.effects == () and told.strength == 0.0
    with pytest.raises(ValueError):
        understand("x", "", 1.5)


def test_describe_names_the_words_it_understood() -> None:
    line = understand("Slow zoom in as heavy snow falls", DEFAULT_NEGATIVE, 0.5).describe()
    assert line.startswith('camera: push-in, gentle (from "zoom in"); effects: snow, strong (from "heavy snow")')
    assert "then" in understand("zoom in then pull back", "", 0.5).describe()


def test_clauses_carry_their_negation() -> None:
    parts = clauses("The camera doesn't move, snow falls")
    assert [c.text for c in parts] == ["the camera does not move", "snow falls"]
    assert parts[0].negated_from is not None and parts[1].negated_from is None

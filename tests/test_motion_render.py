"""Motion engine behind the engine seam: loading, progress, cancellation, logging thread, refusals."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from skimage import data

from kinema.engines import EngineInputs, Progress, load_engine
from kinema.engines.motion import MotionEngine
from kinema.errors import Cancelled
from kinema.media.encode import read_frames
from kinema.pipeline import Pipeline
from kinema.settings import DEFAULT_ENGINE, Settings

SETTINGS = Settings()


def chelsea_inputs(**kw: object) -> EngineInputs:
    return EngineInputs(prompt="the cat looks up, snow falls", image=data.chelsea(), **kw)  # type: ignore[arg-type]


def test_default_engine_is_this_one_and_the_old_spec_names_it() -> None:
    assert DEFAULT_ENGINE == "motion"
    engine = load_engine(DEFAULT_ENGINE, SETTINGS, "cpu")
    assert isinstance(engine, MotionEngine) and engine.fps == 30
    assert isinstance(load_engine("kinema.engines.motion:render", SETTINGS, "cpu"), MotionEngine)


def test_progress_once_per_frame_and_logs_on_the_calling_thread(tmp_path: Path) -> None:
    pipeline = Pipeline(SETTINGS, load_engine("motion", SETTINGS, "cpu"))
    progress: list[Progress] = []
    log_threads: set[int] = set()
    lines: list[str] = []

    def log(line: str) -> None:
        log_threads.add(threading.get_ident())
        lines.append(line)

    clip = pipeline.render(
        chelsea_inputs(), tmp_path / "out.mp4", progress=progress.append, should_cancel=lambda: False, log=log
    )
    rendered = [p.step for p in progress if p.stage == "render"]
    encoded = [p.step for p in progress if p.stage == "encode"]
    assert rendered == list(range(1, 151)) and encoded == list(range(1, 151))
    assert {p.total for p in progress} == {150}
    assert (clip.width, clip.height, clip.fps, clip.frames) == (1082, 720, 30, 150)
    assert clip.duration_s == 5.0
    assert log_threads == {threading.get_ident()}
    assert any("prompt mode" in line for line in lines) and any("snow" in line for line in lines)
    decoded = read_frames(tmp_path / "out.mp4")
    assert decoded.shape == (150, 720, 1082, 3)
    raw = (tmp_path / "out.mp4").read_bytes()
    assert raw[4:8] == b"ftyp"
    assert raw.index(b"moov") < raw.index(b"mdat")  # +faststart


@pytest.mark.parametrize("k", [0, 7])
def test_cancel_stops_within_one_frame(k: int) -> None:
    engine = load_engine("motion", SETTINGS, "cpu")
    done: list[int] = []
    checks = 0

    def should_cancel() -> bool:
        nonlocal checks
        checks += 1
        return len(done) >= k

    made = engine.frames(
        chelsea_inputs(tail_image=data.chelsea()[::-1].copy()),
        size=(450, 300),
        progress=lambda p: done.append(p.step),
        should_cancel=should_cancel,
        log=lambda m: None,
    )
    with pytest.raises(Cancelled):
        for _ in made:
            pass
    assert done == list(range(1, k + 1))
    assert checks == k + 1  # checked before every frame


def test_errors_in_frame_building_reach_the_caller() -> None:
    engine = load_engine("motion", SETTINGS, "cpu")
    bad = EngineInputs(
        prompt="x", image=data.chelsea(), tail_image=data.chelsea(), static_mask=np.ones((300, 451), bool)
    )
    with pytest.raises(ValueError, match="tail image"):
        next(
            iter(
                engine.frames(
                    bad, size=(450, 300), progress=lambda p: None, should_cancel=lambda: False, log=lambda m: None
                )
            )
        )


def test_refuses_an_image_that_is_not_rgb_uint8() -> None:
    engine = load_engine("motion", SETTINGS, "cpu")
    gray = EngineInputs(prompt="x", image=data.camera())
    with pytest.raises(ValueError, match="image"):
        next(
            iter(
                engine.frames(
                    gray, size=(512, 512), progress=lambda p: None, should_cancel=lambda: False, log=lambda m: None
                )
            )
        )

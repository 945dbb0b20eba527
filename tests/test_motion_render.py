"""Motion engine entry point: seam contract, progress, cancellation, logging thread, refusals."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from skimage import data

from kinema.engines import EngineInputs, Progress, load_engine
from kinema.errors import Cancelled
from kinema.media.encode import read_frames
from kinema.settings import DEFAULT_ENGINE


def chelsea_inputs(**kw: object) -> EngineInputs:
    return EngineInputs(prompt="the cat looks up, snow falls", image=data.chelsea(), **kw)  # type: ignore[arg-type]


def test_default_engine_is_this_one() -> None:
    engine = load_engine(DEFAULT_ENGINE)
    assert DEFAULT_ENGINE == "kinema.engines.motion:render"
    from kinema.engines.motion import render

    assert engine is render


def test_progress_once_per_frame_and_logs_on_the_calling_thread(tmp_path: Path) -> None:
    render = load_engine("kinema.engines.motion:render")
    progress: list[Progress] = []
    log_threads: set[int] = set()
    lines: list[str] = []

    def log(line: str) -> None:
        log_threads.add(threading.get_ident())
        lines.append(line)

    info = render(chelsea_inputs(), tmp_path / "out.mp4", callback=progress.append,
                  should_cancel=lambda: False, log=log)
    assert [p.step for p in progress] == list(range(1, 151))
    assert {p.total for p in progress} == {150}
    assert (info.width, info.height, info.fps, info.frames) == (1082, 720, 30, 150)
    assert info.duration_s == 5.0
    assert log_threads == {threading.get_ident()}
    assert any("prompt mode" in line for line in lines) and any("snow" in line for line in lines)
    decoded = read_frames(tmp_path / "out.mp4")
    assert decoded.shape == (150, 720, 1082, 3)
    raw = (tmp_path / "out.mp4").read_bytes()
    assert raw[4:8] == b"ftyp"
    assert raw.index(b"moov") < raw.index(b"mdat")  # +faststart


@pytest.mark.parametrize("k", [0, 7])
def test_cancel_stops_within_one_frame(tmp_path: Path, k: int) -> None:
    render = load_engine("kinema.engines.motion:render")
    done: list[int] = []
    checks = 0

    def should_cancel() -> bool:
        nonlocal checks
        checks += 1
        return len(done) >= k

    out = tmp_path / "cancelled.mp4"
    with pytest.raises(Cancelled):
        render(chelsea_inputs(tail_image=data.chelsea()[::-1].copy()), out,
               callback=lambda p: done.append(p.step), should_cancel=should_cancel, log=lambda m: None)
    assert done == list(range(1, k + 1))
    assert checks == k + 1  # checked before every frame
    assert not out.exists()  # the partial file is removed


def test_errors_in_frame_building_reach_the_caller(tmp_path: Path) -> None:
    render = load_engine("kinema.engines.motion:render")
    bad = EngineInputs(prompt="x", image=data.chelsea(), tail_image=data.chelsea(),
                       static_mask=np.ones((300, 451), bool))
    with pytest.raises(ValueError, match="tail image"):
        render(bad, tmp_path / "bad.mp4", callback=lambda p: None, should_cancel=lambda: False, log=lambda m: None)
    assert not (tmp_path / "bad.mp4").exists()


def test_refuses_an_image_that_is_not_rgb_uint8(tmp_path: Path) -> None:
    render = load_engine("kinema.engines.motion:render")
    gray = EngineInputs(prompt="x", image=data.camera())
    with pytest.raises(ValueError, match="image"):
        render(gray, tmp_path / "g.mp4", callback=lambda p: None, should_cancel=lambda: False, log=lambda m: None)

"""Slow: 0.05 s per frame with a log line every 30 frames (cancel and streaming tests)."""

from _frames import FixtureEngine

from kinema.engines import EngineInputs, LogFn


def _every_30(i: int, inputs: EngineInputs, log: LogFn) -> None:
    if i % 30 == 0:
        log(f"slow engine at frame {i}")


def load(settings: object, device: str) -> FixtureEngine:
    return FixtureEngine(per_frame_s=0.05, on_frame=_every_30)

"""Stubborn: renders 60 frames, then hangs ignoring cancellation (a partial MP4 is on disk by then)."""

import time

from _frames import FixtureEngine

from kinema.engines import EngineInputs, LogFn


def _hang_at_60(i: int, inputs: EngineInputs, log: LogFn) -> None:
    if i == 60:
        log("stubborn engine: hanging at frame 60")
        while True:
            time.sleep(3600)


def load(settings: object, device: str) -> FixtureEngine:
    return FixtureEngine(on_frame=_hang_at_60)

"""Failing: the engine raises an ordinary exception at frame 5."""

from _frames import FixtureEngine

from kinema.engines import EngineInputs, LogFn


def _fail_at_5(i: int, inputs: EngineInputs, log: LogFn) -> None:
    if i == 5:
        raise RuntimeError("fixture engine failure at frame 5")


def load(settings: object, device: str) -> FixtureEngine:
    return FixtureEngine(on_frame=_fail_at_5)

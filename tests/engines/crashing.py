"""Crashing: the worker process dies hard (as a segfault or OOM kill would) at frame 10."""

import os
import signal

from _frames import FixtureEngine

from kinema.engines import EngineInputs, LogFn


def _die_at_10(i: int, inputs: EngineInputs, log: LogFn) -> None:
    if i == 10:
        os.kill(os.getpid(), signal.SIGKILL)


def load(settings: object, device: str) -> FixtureEngine:
    return FixtureEngine(on_frame=_die_at_10)

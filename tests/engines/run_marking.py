"""Marks every run: at its first frame it appends ``<prompt> <pid>`` to ``$KINEMA_TEST_RUNS``.

``KINEMA_TEST_FRAME_S`` (default 0.01) is the time per frame, so runs overlap between servers.
Used to count how many times each job really ran (two servers on one data dir).
"""

import os

from _frames import FixtureEngine

from kinema.engines import EngineInputs, LogFn


def _mark(i: int, inputs: EngineInputs, log: LogFn) -> None:
    if i == 0:
        with open(os.environ["KINEMA_TEST_RUNS"], "a") as fh:
            fh.write(f"{inputs.prompt} {os.getpid()}\n")


def load(settings: object, device: str) -> FixtureEngine:
    return FixtureEngine(per_frame_s=float(os.environ.get("KINEMA_TEST_FRAME_S", "0.01")), on_frame=_mark)

"""For the Ray executor tests: marks each run and paces its frames by prompt.

At a run's first frame it appends ``<prompt> <pid>`` to ``$KINEMA_TEST_RUNS`` (how many times each job
really ran, and in which process). A prompt starting with ``slow`` sleeps ``$KINEMA_TEST_SLOW_FRAME_S``
(default 0.1) per frame, so a test can cancel or kill it mid-run; any other prompt runs at full speed.
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from _frames import FixtureEngine

from kinema.engines import EngineInputs, LogFn


def _mark(i: int, inputs: EngineInputs, log: LogFn) -> None:
    if i == 0:
        with open(os.environ["KINEMA_TEST_RUNS"], "a") as fh:
            fh.write(f"{inputs.prompt} {os.getpid()}\n")


@dataclass
class PacedEngine(FixtureEngine):
    slow_frame_s: float = 0.1

    def frames(self, inputs: EngineInputs, **kw: Any) -> Iterator[np.ndarray]:
        self.per_frame_s = self.slow_frame_s if inputs.prompt.startswith("slow") else 0.0
        return super().frames(inputs, **kw)


def load(settings: object, device: str) -> PacedEngine:
    return PacedEngine(on_frame=_mark, slow_frame_s=float(os.environ.get("KINEMA_TEST_SLOW_FRAME_S", "0.1")))

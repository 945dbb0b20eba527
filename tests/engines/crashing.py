"""Crashing: the worker process dies hard (as a segfault or OOM kill would) at frame 10."""

import os
import signal
from pathlib import Path

from kinema.engines import EngineInputs, RenderInfo

from _frames import encode_small  # noqa: E402


def render(inputs: EngineInputs, output: Path, *, callback, should_cancel, log) -> RenderInfo:
    def on_frame(i: int) -> None:
        if i == 10:
            os.kill(os.getpid(), signal.SIGKILL)

    return encode_small(inputs, output, callback, should_cancel, on_frame=on_frame)

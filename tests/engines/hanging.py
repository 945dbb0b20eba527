"""Hanging: never calls back and ignores cancellation (only the grace-period kill stops it)."""

import time
from pathlib import Path

from kinema.engines import EngineInputs, RenderInfo


def render(inputs: EngineInputs, output: Path, *, callback, should_cancel, log) -> RenderInfo:
    log("hanging engine: sleeping forever")
    while True:
        time.sleep(3600)

"""CLI tests: a small clip like ``trivial``, plus two knobs for the command-line tests.

* A prompt containing ``slow`` renders at 0.05 s per frame (cancel, progress, "not finished yet").
* With ``KINEMA_CLI_RECORD`` set to a directory, a JSON summary of what the engine received is written
  there as ``<prompt>.json`` (so tests can check that every flag reached the engine).
"""

import json
import os
import time
from pathlib import Path

from _frames import FixtureEngine

from kinema.engines import EngineInputs, LogFn


def _summary(inputs: EngineInputs) -> dict:
    return {
        "prompt": inputs.prompt,
        "image_shape": list(inputs.image.shape),
        "image_mean": float(inputs.image.mean()),
        "duration_s": inputs.duration_s,
        "negative_prompt": inputs.negative_prompt,
        "cfg_scale": inputs.cfg_scale,
        "tail_image_shape": None if inputs.tail_image is None else list(inputs.tail_image.shape),
        "static_mask_pixels": None if inputs.static_mask is None else int(inputs.static_mask.sum()),
        "dynamic": [
            {"mask_pixels": int(b.mask.sum()), "trajectory": [list(p) for p in b.trajectory]}
            for b in inputs.dynamic_brushes
        ],
        "seed": inputs.seed,
    }


def _per_frame(i: int, inputs: EngineInputs, log: LogFn) -> None:
    if i == 0:
        record = os.environ.get("KINEMA_CLI_RECORD")
        if record:
            safe = "".join(c if c.isalnum() else "_" for c in inputs.prompt)[:60]
            (Path(record) / f"{safe}.json").write_text(json.dumps(_summary(inputs)))
        log(f"cli fixture engine: {inputs.num_frames} frames")
    if "slow" in inputs.prompt:
        time.sleep(0.05)


def load(settings: object, device: str) -> FixtureEngine:
    return FixtureEngine(on_frame=_per_frame)

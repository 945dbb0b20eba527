"""Slow: 0.05 s per frame with a log line every 30 frames (cancel and streaming tests)."""

from pathlib import Path

from kinema.engines import EngineInputs, RenderInfo

from _frames import encode_small  # noqa: E402


def render(inputs: EngineInputs, output: Path, *, callback, should_cancel, log) -> RenderInfo:
    def on_frame(i: int) -> None:
        if i % 30 == 0:
            log(f"slow engine at frame {i}")

    return encode_small(inputs, output, callback, should_cancel, per_frame_s=0.05, on_frame=on_frame)

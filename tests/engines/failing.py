"""Failing: the engine raises an ordinary exception at frame 5."""

from pathlib import Path

from kinema.engines import EngineInputs, RenderInfo

from _frames import encode_small  # noqa: E402


def render(inputs: EngineInputs, output: Path, *, callback, should_cancel, log) -> RenderInfo:
    def on_frame(i: int) -> None:
        if i == 5:
            raise RuntimeError("fixture engine failure at frame 5")

    return encode_small(inputs, output, callback, should_cancel, on_frame=on_frame)

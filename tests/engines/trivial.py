"""Fast: a small scrolling clip of the input image, 30 × duration frames."""

from pathlib import Path

from kinema.engines import EngineInputs, RenderInfo

from _frames import encode_small  # noqa: E402  (engines are loaded by file path)


def render(inputs: EngineInputs, output: Path, *, callback, should_cancel, log) -> RenderInfo:
    log(f"trivial engine: prompt {inputs.prompt!r}")
    return encode_small(inputs, output, callback, should_cancel)

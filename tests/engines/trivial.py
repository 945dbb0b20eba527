"""Fast: a small scrolling clip of the input image, 30 × duration frames."""

from _frames import (
    FixtureEngine,  # (engines are loaded by file path; the folder is on sys.path)
)

from kinema.engines import EngineInputs, LogFn


def _announce(i: int, inputs: EngineInputs, log: LogFn) -> None:
    if i == 0:
        log(f"trivial engine: prompt {inputs.prompt!r}")


def load(settings: object, device: str) -> FixtureEngine:
    return FixtureEngine(on_frame=_announce)

"""A 16 fps engine (like a Wan video model): 16 x duration + 1 frames, converted to 30 fps by the pipeline."""

from _frames import FixtureEngine


def load(settings: object, device: str) -> FixtureEngine:
    return FixtureEngine(fps=16.0)

"""Shared setup of the Wan engine tests: the tiny folders and engines loaded by the engine's real loader.

Torch runs on one thread here: on this 2-core machine shared by several processes, two torch threads made the
tiny VAE 15x slower (4.9 s against 0.27 s for an 81-frame encode, measured).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Self

import pytest

pytest.importorskip("diffusers", reason="the Wan engine needs the extra: pip install -e '.[diffusion]'")

import torch
from wan_tiny import save_tiny_wan

from kinema.engines import load_engine
from kinema.settings import Settings

__all__ = ["BASE_ENV", "counting", "load_wan", "tiny_folders"]

torch.set_num_threads(1)

#: Settings of every tiny run: 32x32 working size, float32 on the CPU, few steps.
BASE_ENV = {"KINEMA_WAN_MAX_AREA": "1024", "KINEMA_WAN_DTYPE": "float32", "KINEMA_WAN_STEPS": "3"}


def tiny_folders(root: Path) -> dict[str, Path]:
    return {"i2v": save_tiny_wan(root / "i2v"), "flf": save_tiny_wan(root / "flf", flf=True)}


def load_wan(env: dict[str, str]) -> Any:
    """The engine as a worker loads it: ``load_engine("wan", ...)`` reading ``KINEMA_WAN_*`` from the env."""
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("KINEMA_WAN_")]:
            mp.delenv(key)
        for key, value in {**BASE_ENV, **env}.items():
            mp.setenv(key, value)
        return load_engine("wan", Settings(), "cpu")


class counting:
    """Counts (and records the inputs of) a module's forward calls while active."""

    def __init__(self, module: torch.nn.Module, keep: bool = False):
        self.module, self.keep = module, keep
        self.calls: list[dict[str, Any]] = []

    def __enter__(self) -> Self:
        def hook(_m: Any, args: Any, kwargs: Any) -> None:
            self.calls.append(
                {k: v.detach().clone() for k, v in kwargs.items() if self.keep and isinstance(v, torch.Tensor)}
                | {"args": args if self.keep else ()}
            )

        self.handle = self.module.register_forward_pre_hook(hook, with_kwargs=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()

    def __len__(self) -> int:
        return len(self.calls)

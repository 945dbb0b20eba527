"""The learned engine: Wan 2.1/2.2 image-to-video through diffusers (spec ``wan``).

Needs the optional extra (``pip install 'kinema[diffusion]'``) and a local diffusers model folder
(``KINEMA_WAN_MODEL``); nothing is downloaded. Settings: :mod:`kinema.engines.wan.config`; Kling's fields:
:mod:`kinema.engines.wan.mapping`; the motion brush: :mod:`kinema.engines.wan.brush`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kinema.errors import EngineLoadError

from .config import WanSettings
from .folder import ModelInfo, inspect_folder

if TYPE_CHECKING:
    from kinema.engines import Engine
    from kinema.settings import Settings

__all__ = ["ModelInfo", "WanSettings", "inspect_folder", "load"]


def load(settings: Settings, device: str) -> Engine:
    """The seam's loader: check the folder(s), then load them onto ``device`` once."""
    wan = WanSettings.from_env()
    main = inspect_folder(wan.model)
    flf = inspect_folder(wan.flf_model, setting="KINEMA_WAN_FLF_MODEL") if wan.flf_model is not None else None
    if flf is not None and not flf.tail:
        raise EngineLoadError(f"KINEMA_WAN_FLF_MODEL={flf.path}: a {flf.variant} folder cannot honour a tail image")
    if flf is not None and flf.fps != main.fps:
        raise EngineLoadError(
            f"KINEMA_WAN_FLF_MODEL={flf.path}: {flf.variant} runs at {flf.fps:g} fps, "
            f"KINEMA_WAN_MODEL at {main.fps:g} fps; a 10 s tail clip needs both at one rate"
        )
    try:
        # torch and diffusers load only when this engine is chosen (seconds of import, GBs of address
        # space): kinema's default install and its motion engine never import them.
        from .engine import WanEngine
    except ImportError as exc:
        raise EngineLoadError(
            f"the wan engine needs the diffusion extra: pip install 'kinema[diffusion]' ({exc})"
        ) from exc
    return WanEngine.load(wan, main, flf, device)

"""Loading a checked Wan folder onto a device, once per worker, with the configured options.

Every option maps onto one documented diffusers/torch call: dtype (``from_pretrained(dtype=...)``),
model CPU offload (``enable_model_cpu_offload``), group offloading (``enable_group_offload`` on the
diffusers models, ``apply_group_offloading`` on the text and image encoders), VAE tiling
(``vae.enable_tiling``), an attention backend (``set_attention_backend``), regional ``torch.compile``
(``compile_repeated_blocks``), LoRA files (``load_lora_weights`` + ``set_adapters``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import WanImageToVideoPipeline
from diffusers.hooks.group_offloading import apply_group_offloading

from kinema.engines import LogFn
from kinema.errors import EngineLoadError

from .config import WanSettings
from .folder import ModelInfo

__all__ = ["Loaded", "load_pipeline", "torch_dtype"]

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
#: Components an FLF folder may borrow from the main one when their configs are identical (the UMT5-XXL text
#: encoder alone is about 11 GB in bf16; Wan 2.1 I2V and FLF2V ship the same one and the same VAE).
_SHAREABLE = ("text_encoder", "tokenizer", "vae")


@dataclass
class Loaded:
    """A pipeline on its device and the folder it came from."""

    pipe: Any  # WanImageToVideoPipeline (diffusers ships no type stubs)
    info: ModelInfo
    load_s: float


def torch_dtype(name: str) -> torch.dtype:
    return _DTYPES[name]


def _same_config(a: Path, b: Path, name: str) -> bool:
    for fname in ("config.json", "tokenizer_config.json"):
        fa, fb = a / name / fname, b / name / fname
        if fa.is_file() or fb.is_file():
            try:
                ca, cb = json.loads(fa.read_text()), json.loads(fb.read_text())
            except (OSError, ValueError):
                return False
            ca.pop("_name_or_path", None)
            cb.pop("_name_or_path", None)
            return bool(ca == cb)
    return False


def load_pipeline(
    info: ModelInfo, settings: WanSettings, device: str, log: LogFn, share_with: Loaded | None = None
) -> Loaded:
    """``from_pretrained`` of a checked folder (local files only) with the settings' options applied."""
    t0 = time.monotonic()
    dtype = torch_dtype(settings.dtype)
    shared: dict[str, Any] = {}
    if share_with is not None:
        for name in _SHAREABLE:
            if _same_config(share_with.info.path, info.path, name):
                shared[name] = getattr(share_with.pipe, name)
        if shared:
            log(f"{info.variant}: sharing {', '.join(shared)} with {share_with.info.variant}")
    try:
        pipe = WanImageToVideoPipeline.from_pretrained(  # type: ignore[no-untyped-call]
            str(info.path), dtype=dtype, local_files_only=True, **shared
        )
    except Exception as exc:
        raise EngineLoadError(f"cannot load {info.describe()}: {type(exc).__name__}: {exc}") from exc
    pipe.set_progress_bar_config(disable=True)
    experts = [m for m in (pipe.transformer, getattr(pipe, "transformer_2", None)) if m is not None]
    try:
        _apply_loras(pipe, settings, log)
        if settings.attention:
            for model in experts:
                model.set_attention_backend(settings.attention)
        if settings.vae_tiling:
            pipe.vae.enable_tiling()
        _place(pipe, experts, settings.offload, device)
        if settings.compile:
            for model in experts:
                compile_blocks = getattr(model, "compile_repeated_blocks", None)
                if callable(compile_blocks):
                    compile_blocks(fullgraph=True)
                else:
                    model.compile()
    except EngineLoadError:
        raise
    except Exception as exc:
        raise EngineLoadError(
            f"{info.describe()}: cannot apply the KINEMA_WAN_* options: {type(exc).__name__}: {exc}"
        ) from exc
    loaded = Loaded(pipe, info, time.monotonic() - t0)
    log(
        f"loaded {info.describe()} on {device} in {loaded.load_s:.1f} s ({settings.dtype}, offload "
        f"{settings.offload}{', VAE tiling' if settings.vae_tiling else ''}"
        f"{', attention ' + settings.attention if settings.attention else ''}"
        f"{', torch.compile' if settings.compile else ''})"
    )
    return loaded


def _apply_loras(pipe: Any, settings: WanSettings, log: LogFn) -> None:
    if not settings.loras:
        return
    names: list[str] = []
    weights: list[float] = []
    for i, lora in enumerate(settings.loras):
        if not lora.path.is_file():
            raise EngineLoadError(f"KINEMA_WAN_LORA: {lora.path} is not a file")
        name = f"lora{i}"
        pipe.load_lora_weights(str(lora.path), adapter_name=name)
        names.append(name)
        weights.append(lora.scale)
        if getattr(pipe, "transformer_2", None) is not None:  # Wan 2.2 A14B: the low-noise expert too
            pipe.load_lora_weights(str(lora.path), adapter_name=name + "_2", load_into_transformer_2=True)
            names.append(name + "_2")
            weights.append(lora.scale)
        log(f"LoRA {lora.path.name} at scale {lora.scale:g}")
    pipe.set_adapters(names, adapter_weights=weights)


def _place(pipe: Any, experts: list[Any], offload: str, device: str) -> None:
    """Put the pipeline on ``device``: whole, with model CPU offload, or with group offloading."""
    if offload == "none" or device == "cpu":
        pipe.to(device)
        return
    if offload == "model":
        pipe.enable_model_cpu_offload(device=device)
        return
    # Group offloading: leaf-level groups streamed in with CUDA streams (diffusers' recommended Wan recipe).
    onload, offload_to = torch.device(device), torch.device("cpu")
    stream = onload.type == "cuda"
    for model in experts + [pipe.vae]:
        model.enable_group_offload(
            onload_device=onload, offload_device=offload_to, offload_type="leaf_level", use_stream=stream
        )
    for name in ("text_encoder", "image_encoder"):
        module = getattr(pipe, name, None)
        if module is not None:
            apply_group_offloading(
                module,
                onload_device=onload,
                offload_device=offload_to,
                offload_type="block_level",
                num_blocks_per_group=4,
            )

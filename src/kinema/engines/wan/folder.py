"""What a diffusers Wan folder holds, read from its JSON files alone (no torch, nothing downloaded).

:func:`inspect_folder` checks that a folder is complete (``model_index.json``, and for every component it
names a folder with its config and weights) and tells which Wan variant it is, from the configs:

=========================  ==============================================  ======  =========  ============
variant                    how it is recognised                            fps     multiple   tail image
=========================  ==============================================  ======  =========  ============
Wan 2.2 TI2V-5B            ``expand_timesteps`` in ``model_index.json``    24      32         no
Wan 2.2 I2V-A14B           a ``transformer_2`` (two experts)               16      16         yes
Wan 2.1 FLF2V              the transformer has ``pos_embed_seq_len``       16      16         yes
Wan 2.1 I2V (480P/720P)    otherwise                                       16      16         no
=========================  ==============================================  ======  =========  ============

480P and 720P checkpoints share one architecture; ``KINEMA_WAN_MAX_AREA`` picks the working size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinema.errors import EngineLoadError

__all__ = ["ModelInfo", "inspect_folder"]

_PIPELINES = {"WanImageToVideoPipeline"}
#: Components whose folder must hold weights (the tokenizer, scheduler and image processor hold configs only).
_WEIGHTED = {"transformer", "transformer_2", "vae", "text_encoder", "image_encoder"}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".safetensors.index.json", ".bin.index.json")


@dataclass(frozen=True)
class ModelInfo:
    """A checked Wan folder and what it can do."""

    path: Path
    variant: str
    fps: float
    #: Both sides of the working size are multiples of this (VAE spatial factor x patch size).
    multiple: int
    #: The transformer has the position embedding for a second (last) image: it can honour a tail image.
    tail: bool
    #: The transformer only works with two images (Wan 2.1 FLF2V): a request without a tail image gives the
    #: image for both image-encoder slots.
    needs_two_images: bool
    two_experts: bool
    #: The guidance Wan's own code samples this variant with (``cfg_scale`` 0.5 maps to it).
    default_guidance: float

    def describe(self) -> str:
        return f"{self.variant} at {self.path}"


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise EngineLoadError(f"{what}: {path} is missing") from None
    except (OSError, ValueError) as exc:
        raise EngineLoadError(f"{what}: cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise EngineLoadError(f"{what}: {path} is not a JSON object")
    return data


def _named(value: Any) -> bool:
    """Whether a ``model_index.json`` entry names a component (``[library, class]``, not ``[null, null]``)."""
    return isinstance(value, list) and len(value) == 2 and value[0] is not None and value[1] is not None


def inspect_folder(path: Path | None, *, setting: str = "KINEMA_WAN_MODEL") -> ModelInfo:
    """Check ``path`` and describe it; an :class:`EngineLoadError` names everything missing."""
    if path is None:
        raise EngineLoadError(
            f"the wan engine needs {setting}=/path/to/a/diffusers/Wan/folder (nothing is downloaded; "
            "see the README, 'The learned engine (Wan)')"
        )
    what = f"{setting}={path}"
    if not path.is_dir():
        raise EngineLoadError(f"{what}: no such folder (nothing is downloaded; fetch the model folder first)")
    index = _read_json(path / "model_index.json", what)
    cls = index.get("_class_name")
    if cls not in _PIPELINES:
        raise EngineLoadError(f"{what}: model_index.json names {cls!r}, not a Wan image-to-video pipeline")
    missing: list[str] = []
    for name, value in sorted(index.items()):
        if name.startswith("_") or not _named(value):
            continue
        sub = path / name
        if not sub.is_dir():
            missing.append(f"{name}/")
            continue
        if not any(
            (sub / c).is_file()
            for c in ("config.json", "tokenizer_config.json", "scheduler_config.json", "preprocessor_config.json")
        ):
            missing.append(f"{name}/ (its config)")
        if name in _WEIGHTED and not any(p.name.endswith(_WEIGHT_SUFFIXES) for p in sub.iterdir()):
            missing.append(f"{name}/ (its weights)")
    if not _named(index.get("transformer")) and not _named(index.get("transformer_2")):
        missing.append("transformer/ (model_index.json names none)")
    if missing:
        raise EngineLoadError(f"{what}: incomplete model folder, missing {', '.join(missing)}")

    main = "transformer" if _named(index.get("transformer")) else "transformer_2"
    tconf = _read_json(path / main / "config.json", what)
    vconf = _read_json(path / "vae" / "config.json", what)
    patch = tconf.get("patch_size") or [1, 2, 2]
    spatial = int(vconf.get("scale_factor_spatial") or 8)
    multiple = spatial * int(patch[1])
    two_experts = _named(index.get("transformer_2")) and _named(index.get("transformer"))
    if index.get("expand_timesteps"):
        return ModelInfo(path, "Wan 2.2 TI2V-5B", 24.0, multiple, False, False, False, 5.0)
    if two_experts:
        return ModelInfo(path, "Wan 2.2 I2V-A14B", 16.0, multiple, True, False, True, 3.5)
    if tconf.get("pos_embed_seq_len"):
        return ModelInfo(path, "Wan 2.1 FLF2V", 16.0, multiple, True, True, False, 5.0)
    return ModelInfo(path, "Wan 2.1 I2V", 16.0, multiple, False, False, False, 5.0)

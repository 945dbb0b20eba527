"""The Wan engine's parts that need no torch: the default install stays torch-free, the model-folder check,
the field mapping (sizes, guidance, segments, brush windows) and the settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kinema.engines import resolve_spec
from kinema.engines.wan import WanSettings, inspect_folder
from kinema.engines.wan.mapping import brush_windows, guidance_for, latent_frames, segment_frames, working_size
from kinema.errors import EngineLoadError


def test_importing_kinema_and_running_the_motion_engine_never_imports_torch() -> None:
    """Not even the Wan engine's package: torch loads only when ``load`` runs."""
    code = (
        "import sys, numpy as np\n"
        "import kinema, kinema.api.app, kinema.jobs.worker, kinema.pipeline, kinema.engines.wan\n"
        "from kinema.engines import EngineInputs, load_engine\n"
        "from kinema.settings import Settings\n"
        "eng = load_engine('motion', Settings(), 'cpu')\n"
        "img = np.full((64, 96, 3), 120, np.uint8); img[20:40, 30:60] = 200\n"
        "n = sum(1 for _ in eng.frames(EngineInputs(prompt='zoom in', image=img), size=(96, 64),\n"
        "        progress=lambda p: None, should_cancel=lambda: False, log=lambda m: None))\n"
        "print(n, 'torch' in sys.modules, 'diffusers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["150", "False", "False"]


def test_the_wan_alias_names_the_wan_loader() -> None:
    assert resolve_spec("wan") == "kinema.engines.wan:load"


def _folder(
    root: Path,
    *,
    transformer: dict[str, object] | None = None,
    index: dict[str, object] | None = None,
    weights: bool = True,
) -> Path:
    """A JSON-only stand-in for a diffusers folder (inspect_folder reads nothing else)."""
    idx: dict[str, object] = {
        "_class_name": "WanImageToVideoPipeline",
        "transformer": ["diffusers", "WanTransformer3DModel"],
        "transformer_2": [None, None],
        "vae": ["diffusers", "AutoencoderKLWan"],
        "text_encoder": ["transformers", "UMT5EncoderModel"],
        "tokenizer": ["transformers", "T5TokenizerFast"],
        "scheduler": ["diffusers", "UniPCMultistepScheduler"],
        "image_encoder": ["transformers", "CLIPVisionModel"],
        "image_processor": ["transformers", "CLIPImageProcessor"],
        **(index or {}),
    }
    root.mkdir(parents=True)
    (root / "model_index.json").write_text(json.dumps(idx))
    configs = {
        "transformer": {"patch_size": [1, 2, 2], **(transformer or {})},
        "transformer_2": {"patch_size": [1, 2, 2]},
        "vae": {"scale_factor_spatial": 16 if (index or {}).get("expand_timesteps") else 8},
        "text_encoder": {},
        "image_encoder": {},
    }
    for name, value in idx.items():
        if name.startswith("_") or not isinstance(value, list) or value[0] is None:
            continue
        (root / name).mkdir()
        fname = {
            "tokenizer": "tokenizer_config.json",
            "scheduler": "scheduler_config.json",
            "image_processor": "preprocessor_config.json",
        }.get(name, "config.json")
        (root / name / fname).write_text(json.dumps(configs.get(name, {})))
        if weights and name in configs:
            (root / name / "diffusion_pytorch_model.safetensors").write_bytes(b"x")
    return root


def test_missing_or_incomplete_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(EngineLoadError, match="KINEMA_WAN_MODEL=/path"):
        inspect_folder(None)
    with pytest.raises(EngineLoadError, match="no such folder"):
        inspect_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EngineLoadError, match="model_index.json is missing"):
        inspect_folder(tmp_path / "empty")
    folder = _folder(tmp_path / "partial", weights=False)
    with pytest.raises(EngineLoadError) as err:
        inspect_folder(folder)
    for name in ("transformer/ (its weights)", "vae/ (its weights)", "text_encoder/ (its weights)"):
        assert name in str(err.value)
    folder = _folder(tmp_path / "novae")
    for p in (folder / "vae").iterdir():
        p.unlink()
    (folder / "vae").rmdir()
    with pytest.raises(EngineLoadError, match=r"missing vae/"):
        inspect_folder(folder)


def test_variants_are_told_apart_by_their_configs(tmp_path: Path) -> None:
    i2v = inspect_folder(_folder(tmp_path / "i2v", transformer={"image_dim": 1280}))
    flf = inspect_folder(_folder(tmp_path / "flf", transformer={"image_dim": 1280, "pos_embed_seq_len": 514}))
    a14b = inspect_folder(
        _folder(
            tmp_path / "a14b",
            index={
                "transformer_2": ["diffusers", "WanTransformer3DModel"],
                "image_encoder": [None, None],
                "image_processor": [None, None],
                "boundary_ratio": 0.9,
            },
        )
    )
    ti2v = inspect_folder(
        _folder(
            tmp_path / "ti2v",
            index={"expand_timesteps": True, "image_encoder": [None, None], "image_processor": [None, None]},
        )
    )
    assert (i2v.variant, i2v.tail, i2v.fps, i2v.multiple) == ("Wan 2.1 I2V", False, 16.0, 16)
    assert (flf.variant, flf.tail, flf.needs_two_images) == ("Wan 2.1 FLF2V", True, True)
    assert (a14b.variant, a14b.tail, a14b.two_experts, a14b.default_guidance) == ("Wan 2.2 I2V-A14B", True, True, 3.5)
    assert (ti2v.variant, ti2v.tail, ti2v.fps, ti2v.multiple) == ("Wan 2.2 TI2V-5B", False, 24.0, 32)


def test_working_size_keeps_the_aspect_within_the_area() -> None:
    assert working_size(832, 480, 480 * 832, 16) == (832, 480)
    assert working_size(1280, 720, 720 * 1280, 16) == (1280, 720)
    w, h = working_size(512, 512, 480 * 832, 16)
    assert w == h and w % 16 == 0 and w * h <= 480 * 832 and (w + 16) * (h + 16) > 480 * 832
    w, h = working_size(720, 1280, 720 * 1280, 32)
    assert (w % 32, h % 32) == (0, 0) and abs(h / w - 1280 / 720) < 0.05


def test_cfg_scale_maps_to_guidance() -> None:
    assert guidance_for(0.0, 5.0) == 1.0
    assert guidance_for(0.5, 5.0) == 5.0
    assert guidance_for(1.0, 5.0) == 9.0
    assert guidance_for(0.7, 5.0, no_cfg=True) == 1.0


def test_segments_and_brush_windows() -> None:
    assert (segment_frames(16), segment_frames(24)) == (81, 121)
    assert latent_frames(81) == 21
    win = brush_windows(50, 0.06, 0.14, 0.8)
    assert (win.tweak, win.tstrong, win.static) == (3, 7, 40)
    tiny = brush_windows(2, 0.06, 0.14, 0.8)
    assert tiny.tweak < tiny.tstrong <= tiny.static <= tiny.steps


def test_settings_from_env() -> None:
    s = WanSettings.from_env(
        {
            "KINEMA_WAN_MODEL": "/m",
            "KINEMA_WAN_STEPS": "4",
            "KINEMA_WAN_DTYPE": "bf16",
            "KINEMA_WAN_LORA": "/l/a.safetensors:0.8,/l/b.safetensors",
        }
    )
    assert (s.model, s.steps, s.dtype) == (Path("/m"), 4, "bfloat16")
    assert [(str(x.path), x.scale) for x in s.loras] == [("/l/a.safetensors", 0.8), ("/l/b.safetensors", 1.0)]
    assert s.no_cfg  # a LoRA at 4 steps is a distilled run: guidance 1
    assert not WanSettings.from_env({"KINEMA_WAN_LORA": "/l/a.safetensors", "KINEMA_WAN_STEPS": "30"}).no_cfg
    with pytest.raises(EngineLoadError, match="KINEMA_WAN_OFFLOAD"):
        WanSettings.from_env({"KINEMA_WAN_OFFLOAD": "disk"})
    with pytest.raises(EngineLoadError, match="KINEMA_WAN_STEPS"):
        WanSettings.from_env({"KINEMA_WAN_STEPS": "0"})

"""LoRA files from local paths, with a scale; a distilled (few-step) LoRA forces guidance 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from wan_fixtures import counting, load_wan, tiny_folders

from kinema.engines import EngineInputs
from kinema.errors import EngineLoadError


@pytest.fixture(scope="module")
def model_and_lora(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny folder and a random rank-4 LoRA for its transformer's attention, saved as diffusers saves LoRAs."""
    from diffusers import WanImageToVideoPipeline, WanTransformer3DModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    root = tmp_path_factory.mktemp("wan-lora")
    folder = tiny_folders(root)["i2v"]
    transformer = WanTransformer3DModel.from_pretrained(folder / "transformer")
    config = LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False)
    transformer.add_adapter(config)
    WanImageToVideoPipeline.save_lora_weights(
        root / "lora", transformer_lora_layers=get_peft_model_state_dict(transformer), weight_name="tiny.safetensors"
    )
    return folder, root / "lora" / "tiny.safetensors"


def _frames(engine: Any, inputs: EngineInputs, logs: list[str]) -> list[np.ndarray]:
    return list(
        engine.frames(inputs, size=(32, 32), progress=lambda p: None, should_cancel=lambda: False, log=logs.append)
    )


def test_a_few_step_lora_runs_without_the_unconditional_pass_and_changes_the_frames(
    model_and_lora: tuple[Path, Path],
) -> None:
    folder, lora = model_and_lora
    with_lora = load_wan({"KINEMA_WAN_MODEL": str(folder), "KINEMA_WAN_LORA": f"{lora}:0.7"})
    plain = load_wan({"KINEMA_WAN_MODEL": str(folder)})
    assert with_lora.main.pipe.transformer.active_adapters() == ["lora0"]
    image = (np.random.default_rng(1).random((48, 48, 3)) * 255).astype(np.uint8)
    inputs = EngineInputs(prompt="p", image=image, cfg_scale=0.5, seed=8)  # 0.5 is guidance 5 without the LoRA
    logs: list[str] = []
    with counting(with_lora.main.pipe.transformer) as calls:
        a = _frames(with_lora, inputs, logs)
    assert len(calls) == 3  # 3 steps, one call each: guidance 1
    assert any("guidance 1 (LoRA without CFG)" in m for m in logs)
    b = _frames(plain, EngineInputs(prompt="p", image=image, cfg_scale=0.0, seed=8), [])  # guidance 1, no LoRA
    assert any(not np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_lora_guidance_can_be_kept_and_a_missing_file_is_named(model_and_lora: tuple[Path, Path]) -> None:
    folder, lora = model_and_lora
    kept = load_wan({"KINEMA_WAN_MODEL": str(folder), "KINEMA_WAN_LORA": str(lora), "KINEMA_WAN_LORA_NO_CFG": "0"})
    image = np.zeros((48, 48, 3), np.uint8)
    assert kept.plan(EngineInputs(prompt="p", image=image, cfg_scale=0.5)).guidance == 5.0
    with pytest.raises(EngineLoadError, match="KINEMA_WAN_LORA: .*nowhere.safetensors is not a file"):
        load_wan({"KINEMA_WAN_MODEL": str(folder), "KINEMA_WAN_LORA": str(lora.parent / "nowhere.safetensors")})

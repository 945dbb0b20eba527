"""Tiny random Wan image-to-video pipelines, built from constructor arguments (no hub, no weights).

``save_tiny_wan(folder, flf=...)`` writes a diffusers folder that the Wan engine's real loading code
reads: a 2-layer transformer, a 3-channel VAE (8x spatial, 4x temporal), a 2-layer CLIP image encoder
and a 1-layer UMT5 text encoder with the file-less ByT5 tokenizer. ``flf=True`` gives the transformer the
position embedding for two images (a Wan 2.1 FLF2V-shaped folder); without it the folder is a Wan 2.1
I2V one, which cannot honour a tail image. Used by ``tests/test_wan_*.py`` and ``benchmarks/bench_wan.py``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CLIP_TOKENS", "save_tiny_wan"]

#: Tokens of the tiny CLIP: (32 / 8)^2 patches + the class token.
CLIP_TOKENS = 17


def save_tiny_wan(folder: Path, *, flf: bool = False, seed: int = 0) -> Path:
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import (
        ByT5Tokenizer,
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        UMT5Config,
        UMT5EncoderModel,
    )

    torch.manual_seed(seed)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    tokenizer = ByT5Tokenizer()
    text_encoder = UMT5EncoderModel(
        UMT5Config(vocab_size=tokenizer.vocab_size, d_model=32, d_kv=16, d_ff=32, num_layers=1, num_heads=2)
    )
    image_encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=8,
            projection_dim=8,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            intermediate_size=16,
            patch_size=8,
        )
    )
    image_processor = CLIPImageProcessor(crop_size=32, size=32)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=36,
        out_channels=16,
        text_dim=32,
        freq_dim=32,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=8,
        pos_embed_seq_len=2 * CLIP_TOKENS if flf else None,
    )
    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        image_processor=image_processor,
        image_encoder=image_encoder,
        transformer=transformer,
    )
    folder.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(folder)
    return folder

"""The Wan engine's overhead and its speed on a real model.

(a) ``python benchmarks/bench_wan.py cpu`` — on the CPU with a tiny random Wan I2V folder (built here from
    constructor arguments, nothing downloaded): kinema's engine time (``frames()`` to its last frame) divided by
    the stock ``WanImageToVideoPipeline.__call__`` on the same pipeline object, inputs, steps and seed (medians
    of alternating runs; target <= 1.05). The output contract's rate conversion and the MP4 encoding, which the
    stock call does not do, are timed apart. The frames are checked equal to the stock call's.

(b) ``python benchmarks/bench_wan.py gpu --model /path/to/Wan2.1-I2V-14B-480P-Diffusers [--lora FILE]
    [--device cuda:0] [--offload model]`` — on a GPU with a real folder: time per stage (load, denoising steps,
    VAE decode, rate conversion + encode) and peak GPU memory for a 5 s clip at 480p (480 x 832) and 720p
    (720 x 1280), 40 steps at guidance 5; with ``--lora`` also 4 steps at guidance 1 with the LoRA.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tiny-model builder shared with the tests

from kinema.engines import EngineInputs, Progress
from kinema.engines.geometry import resize_image
from kinema.engines.wan.config import Lora, WanSettings
from kinema.engines.wan.folder import inspect_folder
from kinema.pipeline import Pipeline
from kinema.settings import Settings


def _image(w: int, h: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    img[h // 4 : h // 2, w // 4 : w // 2] = (230, 40, 40)
    return img


def bench_cpu(runs: int, steps: int, area: int) -> None:
    import torch
    from PIL import Image
    from wan_tiny import save_tiny_wan

    from kinema.engines.wan.engine import WanEngine

    torch.set_num_threads(1)  # one thread: on a loaded 2-core machine two torch threads are ~15x slower
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_tiny_wan(Path(tmp) / "tiny")
        settings = WanSettings(model=folder, steps=steps, max_area=area, dtype="float32")
        engine = WanEngine.load(settings, inspect_folder(folder), None, "cpu")
        image = _image(256, 256)
        inputs = EngineInputs(prompt="a red square slides", image=image, cfg_scale=0.5, seed=3)
        plan = engine.plan(inputs)
        w, h = plan.size
        pipe = engine.main.pipe

        def stock() -> np.ndarray:
            cond = Image.fromarray(resize_image(image, (w, h)))
            out = pipe(
                image=cond,
                prompt=plan.prompt,
                negative_prompt=plan.negative_prompt,
                height=h,
                width=w,
                num_frames=plan.segment_frames,
                num_inference_steps=steps,
                guidance_scale=plan.guidance,
                generator=torch.Generator().manual_seed(plan.seed),
                output_type="np",
            ).frames[0]
            return np.asarray(out)

        def ours() -> list[np.ndarray]:
            return list(
                engine.frames(
                    inputs, size=(w, h), progress=lambda p: None, should_cancel=lambda: False, log=lambda m: None
                )
            )

        stock(), ours()  # warm-up
        # Wall time and this process's CPU time (torch on one thread: on a shared machine the CPU time is the
        # steadier measure of the work done; both are printed).
        wall: dict[str, list[float]] = {"stock": [], "ours": []}
        cpu: dict[str, list[float]] = {"stock": [], "ours": []}
        out: dict[str, Any] = {}
        for i in range(runs):  # alternating order, so that drifts of a shared machine cancel out
            for name in ("stock", "ours") if i % 2 == 0 else ("ours", "stock"):
                w0, c0 = time.perf_counter(), time.process_time()
                out[name] = stock() if name == "stock" else ours()
                wall[name].append(time.perf_counter() - w0)
                cpu[name].append(time.process_time() - c0)
        ref, made = out["stock"], out["ours"]
        same = np.abs(np.stack(made).astype(int) - np.round(ref * 255).astype(int)).max()
        # Rate conversion (16 -> 30 fps by optical flow) and encoding, apart: the pipeline's render minus frames().
        t_render: list[float] = []
        for _ in range(max(1, runs // 2)):
            pipeline = Pipeline(Settings(output_short_side=h), engine)
            t0 = time.perf_counter()
            pipeline.render(
                inputs, Path(tmp) / "clip.mp4", progress=lambda p: None, should_cancel=lambda: False, log=lambda m: None
            )
            t_render.append(time.perf_counter() - t0)
        med = {k: {n: statistics.median(v) for n, v in d.items()} for k, d in (("wall", wall), ("cpu", cpu))}
        mr = statistics.median(t_render)
        print(
            f"tiny Wan I2V on CPU, {w}x{h}, {plan.segment_frames} frames, {steps} steps, guidance "
            f"{plan.guidance:g}, {runs} runs each (medians)"
        )
        for k in ("wall", "cpu"):
            ms, mo = med[k]["stock"], med[k]["ours"]
            print(
                f"  {k:4} time: stock pipeline call {ms:.3f} s, kinema engine frames() {mo:.3f} s, "
                f"ratio {mo / ms:.3f} (target <= 1.05)"
            )
        print(f"  max frame difference {same} (uint8 levels, against the stock call's frames rounded)")
        print(
            f"  apart: rate conversion 16 -> 30 fps + encode {mr - med['wall']['ours']:.3f} s wall "
            f"(150 frames, short side {h})"
        )


def bench_gpu(model: Path, lora: Path | None, device: str, offload: str) -> None:
    import torch

    from kinema.engines.wan.engine import WanEngine

    info = inspect_folder(model)
    base = WanSettings(model=model, steps=40, offload=offload)
    cases = [
        (f"{label}, 40 steps", replace(base, max_area=area))
        for label, area in (("480p", 480 * 832), ("720p", 720 * 1280))
    ]
    if lora is not None:
        cases += [
            (f"{label}, 4 steps + LoRA", replace(base, max_area=area, steps=4, loras=(Lora(lora),), lora_no_cfg=True))
            for label, area in (("480p", 480 * 832), ("720p", 720 * 1280))
        ]
    engine: Any = None
    for label, settings in cases:
        if engine is None or engine.settings.loras != settings.loras:  # one model in memory at a time
            engine = None
            gc.collect()
            torch.cuda.empty_cache()
            t0 = time.perf_counter()
            engine = WanEngine.load(settings, info, None, device)
            print(f"load{' with LoRA' if settings.loras else ''}: {time.perf_counter() - t0:.1f} s")
        engine.settings = settings
        image = _image(1280, 720) if "720p" in label else _image(832, 480)
        inputs = EngineInputs(prompt="a person turns and smiles", image=image, seed=1)
        marks: dict[str, float] = {}

        def progress(p: Progress, marks: dict[str, float] = marks) -> None:
            marks.setdefault(p.stage + "_first", time.perf_counter())
            marks[p.stage] = time.perf_counter()

        torch.cuda.reset_peak_memory_stats(device)
        pipeline = Pipeline(Settings(), engine)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            pipeline.render(
                inputs, Path(tmp) / "clip.mp4", progress=progress, should_cancel=lambda: False, log=lambda m: None
            )
        t_end = time.perf_counter()
        peak = torch.cuda.max_memory_allocated(device) / 2**30
        w, h = engine.plan(inputs).size
        print(
            f"{label} ({w}x{h}, 81 frames): to first step {marks['step_first'] - t0:.1f} s, "
            f"steps {marks['step'] - marks['step_first']:.1f} s, decode {marks['decode'] - marks['step']:.1f} s, "
            f"rate conversion + encode {t_end - marks['decode']:.1f} s, total {t_end - t0:.1f} s, "
            f"peak GPU memory {peak:.1f} GiB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    cpu = sub.add_parser("cpu", help="(a) engine overhead against the stock pipeline on a tiny model")
    cpu.add_argument("--runs", type=int, default=9)
    cpu.add_argument("--steps", type=int, default=4)
    cpu.add_argument("--area", type=int, default=64 * 64)
    gpu = sub.add_parser("gpu", help="(b) time per stage and peak memory on a real model folder")
    gpu.add_argument("--model", type=Path, required=True)
    gpu.add_argument("--lora", type=Path, default=None, help="a 4-step distillation LoRA (guidance 1)")
    gpu.add_argument("--device", default="cuda:0")
    gpu.add_argument("--offload", default="none", choices=["none", "model", "group"])
    args = parser.parse_args()
    if args.mode == "cpu":
        bench_cpu(args.runs, args.steps, args.area)
    else:
        bench_gpu(args.model, args.lora, args.device, args.offload)


if __name__ == "__main__":
    main()

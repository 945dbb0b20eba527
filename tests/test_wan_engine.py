"""The Wan engine on tiny random models (CPU, offline), loaded by its real loading code.

Frame counts through the core's request pipeline, the tail image, guidance, seeds, cancel, progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image
from wan_fixtures import counting, load_wan, tiny_folders

from kinema.engines import EngineInputs, Progress
from kinema.engines.geometry import resize_image
from kinema.errors import Cancelled, EngineLoadError, InputError
from kinema.pipeline import Pipeline
from kinema.settings import Settings


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random Wan I2V and FLF2V folders, written with ``save_pretrained``."""
    return tiny_folders(tmp_path_factory.mktemp("wan-models"))


@pytest.fixture(scope="module")
def engine(folders: dict[str, Path]) -> Any:
    return load_wan({"KINEMA_WAN_MODEL": str(folders["i2v"]), "KINEMA_WAN_FLF_MODEL": str(folders["flf"])})


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(7)
    img = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    img[10:30, 20:40] = (230, 40, 40)
    return img


def _run(engine: Any, inputs: EngineInputs, **kw: Any) -> list[np.ndarray]:
    args: dict[str, Any] = {
        "size": (64, 48),
        "progress": lambda p: None,
        "should_cancel": lambda: False,
        "log": lambda m: None,
    }
    return list(engine.frames(inputs, **{**args, **kw}))


def _video_frames(path: Path) -> tuple[int, float]:
    with av.open(str(path)) as box:
        stream = box.streams.video[0]
        n = sum(1 for _ in box.decode(stream))
        return n, float(stream.average_rate)


@pytest.mark.parametrize("duration,native,out", [(5, 81, 150), (10, 161, 300)])
def test_duration_gives_the_contract_frames_at_30_fps(
    engine: Any, image: np.ndarray, tmp_path: Path, duration: int, native: int, out: int
) -> None:
    yielded: list[np.ndarray] = []
    real_frames = engine.frames

    def spy(*a: Any, **kw: Any) -> Any:  # count what the engine yields on its way into the contract
        for f in real_frames(*a, **kw):
            yielded.append(f)
            yield f

    clip_image = EngineInputs(prompt="a red box slides", image=image, duration_s=duration, seed=1)
    pipe = Pipeline(Settings(output_short_side=48), engine)
    engine.frames = spy
    try:
        with counting(engine.main.pipe.image_encoder, keep=True) as clip:
            made = pipe.render(
                clip_image,
                tmp_path / "clip.mp4",
                progress=lambda p: None,
                should_cancel=lambda: False,
                log=lambda m: None,
            )
    finally:
        del engine.frames
    assert len(yielded) == native  # 16 fps: 81 frames, then 80 more (no repeated or skipped frame)
    assert (made.frames, made.fps) == (out, 30)
    assert _video_frames(tmp_path / "clip.mp4") == (out, 30.0)
    assert len(clip) == duration // 5
    if duration == 10:  # the second segment starts from the first one's last frame (frame 80)
        proc = engine.main.pipe.image_processor
        want = proc(images=[Image.fromarray(yielded[80])], return_tensors="pt").pixel_values
        assert np.allclose(clip.calls[1]["pixel_values"].numpy(), want.numpy())


def test_tail_image_goes_to_the_flf_model_as_last_image(engine: Any, image: np.ndarray) -> None:
    tail = np.ascontiguousarray(image[::-1])
    inputs = EngineInputs(prompt="p", image=image, tail_image=tail, seed=2)
    with (
        counting(engine.flf.pipe.image_encoder, keep=True) as flf_clip,
        counting(engine.main.pipe.transformer) as main_calls,
    ):
        frames = _run(engine, inputs)
    assert len(frames) == 81 and len(main_calls) == 0
    (call,) = flf_clip.calls
    pixels = call["pixel_values"].numpy()  # the image and the tail image, encoded together
    size = engine.plan(inputs).size
    proc = engine.flf.pipe.image_processor
    want = proc(
        images=[Image.fromarray(resize_image(x, size)) for x in (image, tail)], return_tensors="pt"
    ).pixel_values.numpy()
    assert pixels.shape[0] == 2 and np.allclose(pixels, want, atol=1e-5)


def test_an_flf_model_alone_serves_requests_without_a_tail(folders: dict[str, Path], image: np.ndarray) -> None:
    flf_only = load_wan({"KINEMA_WAN_MODEL": str(folders["flf"])})
    inputs = EngineInputs(prompt="p", image=image, seed=2)
    with counting(flf_only.main.pipe.image_encoder, keep=True) as clip:
        assert len(_run(flf_only, inputs)) == 81
    (call,) = clip.calls  # the image fills both image-encoder slots
    pixels = call["pixel_values"].numpy()
    assert pixels.shape[0] == 2 and np.array_equal(pixels[0], pixels[1])


def test_tail_image_refused_by_an_i2v_only_server(folders: dict[str, Path], image: np.ndarray) -> None:
    i2v_only = load_wan({"KINEMA_WAN_MODEL": str(folders["i2v"])})
    with pytest.raises(InputError) as err:
        i2v_only.frames(
            EngineInputs(prompt="p", image=image, tail_image=image),
            size=(64, 48),
            progress=lambda p: None,
            should_cancel=lambda: False,
            log=lambda m: None,
        )
    assert err.value.status_code == 422
    (item,) = err.value.body()["detail"]
    assert item["loc"] == ["body", "tail_image_url"] and "cannot use a tail image" in item["msg"]


def test_cfg_scale_zero_makes_no_unconditional_pass(engine: Any, image: np.ndarray) -> None:
    steps = engine.settings.steps
    with counting(engine.main.pipe.transformer) as free:
        _run(engine, EngineInputs(prompt="p", image=image, cfg_scale=0.0, seed=3))
    with counting(engine.main.pipe.transformer) as guided:
        _run(engine, EngineInputs(prompt="p", image=image, cfg_scale=0.5, seed=3))
    assert (len(free), len(guided)) == (steps, 2 * steps)


def test_same_seed_same_frames(engine: Any, image: np.ndarray) -> None:
    a = _run(engine, EngineInputs(prompt="p", image=image, seed=11))
    b = _run(engine, EngineInputs(prompt="p", image=image, seed=11))
    c = _run(engine, EngineInputs(prompt="p", image=image, seed=12))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_cancel_mid_denoise_stops_within_one_step_and_the_engine_stays_loaded(engine: Any, image: np.ndarray) -> None:
    seen: list[Progress] = []
    with (
        counting(engine.main.pipe.transformer) as calls,
        counting(engine.main.pipe.vae.decoder) as decodes,
        counting(engine.main.pipe.transformer.blocks[-1]) as last_block,
        pytest.raises(Cancelled, match="cancelled during step 3"),
    ):
        _run(
            engine,
            EngineInputs(prompt="p", image=image, cfg_scale=0.0, seed=4, duration_s=10),
            progress=seen.append,
            should_cancel=lambda: len(seen) >= 2,
        )
    assert [str(p) for p in seen] == ["step 1/6", "step 2/6"]
    # Step 3 began (its transformer call) and stopped at the first block check: it never reached the last block.
    assert len(calls) == 3 and len(last_block) == 2 and len(decodes) == 0
    assert len(_run(engine, EngineInputs(prompt="p", image=image, cfg_scale=0.0, seed=4))) == 81


def test_progress_stages_arrive_in_order(engine: Any, image: np.ndarray, tmp_path: Path) -> None:
    seen: list[Progress] = []
    logs: list[str] = []
    pipe = Pipeline(Settings(output_short_side=48), engine)
    pipe.render(
        EngineInputs(prompt="p", image=image, duration_s=10, seed=5),
        tmp_path / "c.mp4",
        progress=seen.append,
        should_cancel=lambda: False,
        log=logs.append,
    )
    steps = [p for p in seen if p.stage == "step"]
    assert [p.step for p in steps] == list(range(1, 7)) and {p.total for p in steps} == {6}
    order = [(p.stage, p.step) for p in seen if p.stage in ("step", "decode")]
    assert order == [
        ("step", 1),
        ("step", 2),
        ("step", 3),
        ("decode", 1),
        ("step", 4),
        ("step", 5),
        ("step", 6),
        ("decode", 2),
    ]
    first_out = min(i for i, p in enumerate(seen) if p.stage in ("interpolate", "encode"))
    assert seen.index(Progress(1, 2, "decode")) < first_out
    assert [p.step for p in seen if p.stage == "encode"] == list(range(1, 301))
    text = "\n".join(logs)
    for needle in (
        "Wan 2.1 I2V",
        "float32 on cpu",
        "3 steps",
        "guidance 5",
        "32x16",
        "seed 5",
        "segment 2/2",
        "s/step",
        "decode",
    ):
        assert needle in text


def test_load_options_are_applied_and_bad_ones_refused(folders: dict[str, Path], image: np.ndarray) -> None:
    tuned = load_wan(
        {"KINEMA_WAN_MODEL": str(folders["i2v"]), "KINEMA_WAN_VAE_TILING": "1", "KINEMA_WAN_ATTENTION": "native"}
    )
    assert tuned.main.pipe.vae.use_tiling
    assert len(_run(tuned, EngineInputs(prompt="p", image=image, cfg_scale=0.0, seed=1))) == 81
    with pytest.raises(EngineLoadError, match="cannot apply the KINEMA_WAN_\\* options"):
        load_wan({"KINEMA_WAN_MODEL": str(folders["i2v"]), "KINEMA_WAN_ATTENTION": "no-such-backend"})


def test_the_flf_folder_shares_the_text_encoder_and_must_take_a_tail(engine: Any, folders: dict[str, Path]) -> None:
    assert engine.flf.pipe.text_encoder is engine.main.pipe.text_encoder  # same configs: loaded once
    assert engine.flf.pipe.vae is engine.main.pipe.vae
    assert engine.flf.pipe.transformer is not engine.main.pipe.transformer
    with pytest.raises(EngineLoadError, match="KINEMA_WAN_FLF_MODEL=.*a Wan 2.1 I2V folder cannot honour a tail image"):
        load_wan({"KINEMA_WAN_MODEL": str(folders["i2v"]), "KINEMA_WAN_FLF_MODEL": str(folders["i2v"])})

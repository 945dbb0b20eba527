"""kinema.media.inputs: a request's URLs fetched (data URIs and a loopback server), decoded and checked."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import data_uri, jpeg_bytes, png_bytes

from kinema.engines import EngineInputs
from kinema.errors import InputError
from kinema.media.fetch import Fetcher
from kinema.media.inputs import load_inputs
from kinema.schema import parse_input
from kinema.settings import Settings

MAX_PIXELS = 40_000_000


def load(payload: dict[str, Any], settings: Settings | None = None, max_pixels: int = MAX_PIXELS) -> EngineInputs:
    return load_inputs(parse_input(payload), Fetcher(settings or Settings()).fetch, max_pixels=max_pixels)


def errors_of(payload: dict[str, Any], settings: Settings | None = None) -> dict[tuple, str]:
    """``{loc: type}`` of every error the request gets."""
    with pytest.raises(InputError) as exc:
        load(payload, settings)
    items = exc.value.errors
    got = {tuple(e["loc"]): e["type"] for e in items}
    assert len(got) == len(items), "one error per field"
    return got


def mask_png(w: int, h: int, box: tuple[int, int, int, int]) -> bytes:
    """A white-on-black mask with ``box`` = (x0, y0, x1, y1) in row/column pixels selected."""
    m = np.zeros((h, w), np.uint8)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = 255
    return png_bytes(m)


@pytest.fixture(scope="module")
def photo_png_uri(photo_png: bytes) -> str:
    return data_uri(photo_png)


def test_minimal_request(photo: np.ndarray, photo_png_uri: str) -> None:
    inputs = load({"prompt": "a slow pan", "image_url": photo_png_uri})
    assert isinstance(inputs, EngineInputs)
    assert inputs.prompt == "a slow pan"
    assert np.array_equal(inputs.image, photo)
    assert inputs.duration_s == 5 and inputs.num_frames == 150
    assert inputs.negative_prompt == "blur, distort, and low quality"
    assert inputs.cfg_scale == 0.5
    assert inputs.tail_image is None and inputs.static_mask is None
    assert inputs.dynamic_brushes == () and inputs.seed is None


def test_every_field_carried(photo: np.ndarray, photo_uri: str) -> None:
    tail = np.ascontiguousarray(photo[:, ::-1])
    inputs = load(
        {
            "prompt": "turn around",
            "image_url": photo_uri,
            "duration": "10",
            "negative_prompt": "",
            "cfg_scale": 0.8,
            "tail_image_url": data_uri(png_bytes(tail)),
            "seed": 42,
        }
    )
    assert inputs.duration_s == 10 and inputs.cfg_scale == 0.8 and inputs.seed == 42
    assert inputs.negative_prompt == ""
    assert np.abs(inputs.image.astype(int) - photo.astype(int)).mean() < 3.0  # the JPEG
    assert inputs.tail_image is not None and np.array_equal(inputs.tail_image, tail)


def test_brush_masks_at_their_own_resolution(photo_png_uri: str) -> None:
    # The image is 512×512; the masks are 256×256 (same aspect ratio, one shared resolution).
    inputs = load(
        {
            "prompt": "the arm waves",
            "image_url": photo_png_uri,
            "static_mask_url": data_uri(mask_png(256, 256, (0, 0, 256, 64))),
            "dynamic_masks": [
                {
                    "mask_url": data_uri(mask_png(256, 256, (100, 100, 150, 150))),
                    "trajectories": [{"x": 250, "y": 250}, {"x": 300, "y": 260}, {"x": 511, "y": 0}],
                },
                {
                    "mask_url": data_uri(mask_png(256, 256, (10, 200, 40, 250))),
                    "trajectories": [{"x": 0, "y": 511}, {"x": 50, "y": 500}],
                },
            ],
        }
    )
    assert inputs.static_mask is not None and inputs.static_mask.shape == (256, 256)
    assert inputs.static_mask.dtype == bool and inputs.static_mask.sum() == 256 * 64
    assert len(inputs.dynamic_brushes) == 2
    first, second = inputs.dynamic_brushes
    assert first.mask.shape == (256, 256) and first.mask.sum() == 50 * 50 and first.mask[120, 120]
    assert first.trajectory == ((250, 250), (300, 260), (511, 0))  # the last pixel column is inside
    assert second.trajectory == ((0, 511), (50, 500))
    assert second.mask.sum() == 30 * 50


def test_several_bad_fields_reported_together(photo: np.ndarray, photo_png: bytes) -> None:
    got = errors_of(
        {
            "prompt": "x",
            "image_url": data_uri(b"GIF89a" + b"\0" * 50, "image/gif"),
            "static_mask_url": "http://127.0.0.1:9/mask.png",
            "dynamic_masks": [
                {
                    "mask_url": data_uri(photo_png[: len(photo_png) // 3]),
                    "trajectories": [{"x": 1, "y": 1}, {"x": 2, "y": 2}],
                },
                {"mask_url": "data:image/png;base64,%%%", "trajectories": [{"x": 1, "y": 1}, {"x": 2, "y": 2}]},
            ],
        }
    )
    assert got == {
        ("body", "image_url"): "image_format",
        ("body", "static_mask_url"): "fetch_refused",
        ("body", "dynamic_masks", 0, "mask_url"): "image_decode",
        ("body", "dynamic_masks", 1, "mask_url"): "data_uri_invalid",
    }


def test_bad_image_and_tail_reported_together(photo: np.ndarray) -> None:
    got = errors_of(
        {
            "prompt": "x",
            "image_url": data_uri(png_bytes(np.tile(photo[:310], (1, 2, 1)))),  # 1024×310: aspect 3.3
            "tail_image_url": data_uri(png_bytes(photo[:299, :400])),  # 299 px tall
        }
    )
    assert got == {("body", "image_url"): "image_aspect", ("body", "tail_image_url"): "image_too_small"}


def test_trajectory_points_outside_the_image(photo_png_uri: str) -> None:
    mask = data_uri(mask_png(512, 512, (10, 10, 60, 60)))
    got = errors_of(
        {
            "prompt": "x",
            "image_url": photo_png_uri,
            "dynamic_masks": [
                {"mask_url": mask, "trajectories": [{"x": 10, "y": 10}, {"x": 513, "y": 10}, {"x": 512, "y": 512}]},
                {"mask_url": mask, "trajectories": [{"x": 10, "y": 600}, {"x": 20, "y": 20}]},
            ],
        }
    )
    assert got == {
        ("body", "dynamic_masks", 0, "trajectories", 1): "trajectory_point_outside",
        ("body", "dynamic_masks", 0, "trajectories", 2): "trajectory_point_outside",  # x = W is past the last pixel
        ("body", "dynamic_masks", 1, "trajectories", 0): "trajectory_point_outside",
    }


def test_trajectory_message_names_the_point_and_image(photo_png_uri: str) -> None:
    with pytest.raises(InputError) as exc:
        load(
            {
                "prompt": "x",
                "image_url": photo_png_uri,
                "dynamic_masks": [
                    {
                        "mask_url": data_uri(mask_png(512, 512, (0, 0, 9, 9))),
                        "trajectories": [{"x": 5, "y": 5}, {"x": 700, "y": 5}],
                    }
                ],
            }
        )
    [item] = exc.value.errors
    assert "(700, 5)" in item["msg"] and "512x512" in item["msg"]
    assert "x must be 0..511 and y 0..511" in item["msg"]


def test_mask_shape_problems_through_load_inputs(photo_png_uri: str) -> None:
    traj = [{"x": 1, "y": 1}, {"x": 2, "y": 2}]
    got = errors_of(
        {
            "prompt": "x",
            "image_url": photo_png_uri,
            "static_mask_url": data_uri(mask_png(400, 300, (0, 0, 10, 10))),
            "dynamic_masks": [
                {"mask_url": data_uri(mask_png(256, 256, (0, 0, 10, 10))), "trajectories": traj},
                {"mask_url": data_uri(mask_png(128, 128, (0, 0, 10, 10))), "trajectories": traj},
                {"mask_url": data_uri(mask_png(256, 256, (0, 0, 0, 0))), "trajectories": traj},
            ],
        }
    )
    assert got == {
        ("body", "static_mask_url"): "mask_aspect",
        ("body", "dynamic_masks", 1, "mask_url"): "mask_resolution",
        ("body", "dynamic_masks", 2, "mask_url"): "mask_empty",
    }


def test_max_pixels_passed_through(photo_png_uri: str) -> None:
    with pytest.raises(InputError) as exc:
        load({"prompt": "x", "image_url": photo_png_uri}, max_pixels=100_000)
    [item] = exc.value.errors
    assert item["loc"] == ["body", "image_url"] and item["type"] == "image_bomb"


def test_data_uri_over_fetch_cap(photo_png: bytes, photo_png_uri: str) -> None:
    got = errors_of({"prompt": "x", "image_url": photo_png_uri}, Settings(fetch_max_bytes=len(photo_png) - 1))
    assert got == {("body", "image_url"): "fetch_too_large"}


# Over HTTP from a real loopback server --------------------------------------------------------
@pytest.fixture()
def file_server(tmp_path: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_inputs_over_http(photo: np.ndarray, tmp_path: Path, file_server: str) -> None:
    (tmp_path / "photo.jpg").write_bytes(jpeg_bytes(photo, quality=95))
    (tmp_path / "mask.png").write_bytes(mask_png(512, 512, (100, 100, 200, 300)))
    payload = {
        "prompt": "x",
        "image_url": f"{file_server}/photo.jpg",
        "static_mask_url": f"{file_server}/mask.png",
    }
    inputs = load(payload, Settings(fetch_allow=("127.0.0.1",)))
    assert inputs.image.shape == (512, 512, 3)
    assert np.abs(inputs.image.astype(int) - photo.astype(int)).mean() < 3.0
    assert inputs.static_mask is not None and inputs.static_mask.sum() == 100 * 200
    # Without the allow-list entry the same request is refused, field by field.
    got = errors_of(payload)
    assert got == {("body", "image_url"): "fetch_refused", ("body", "static_mask_url"): "fetch_refused"}
    missing = errors_of({**payload, "image_url": f"{file_server}/nope.jpg"}, Settings(fetch_allow=("127.0.0.1",)))
    assert missing == {("body", "image_url"): "fetch_failed"}


def test_opaque_rgba_mask_selects_its_white_pixels(photo_png_uri: str) -> None:
    # A canvas export: white where painted, black elsewhere, alpha 255 everywhere.
    rgba = np.zeros((512, 512, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[100:200, 50:150, :3] = 255
    traj = [{"x": 100, "y": 300}, {"x": 200, "y": 300}]
    inputs = load(
        {
            "prompt": "x",
            "image_url": photo_png_uri,
            "static_mask_url": data_uri(png_bytes(rgba)),
            "dynamic_masks": [{"mask_url": data_uri(png_bytes(rgba[..., :3].copy())), "trajectories": traj}],
        }
    )
    assert inputs.static_mask is not None and inputs.static_mask.sum() == 100 * 100
    assert np.array_equal(inputs.static_mask, inputs.dynamic_brushes[0].mask)  # RGBA and RGB copies agree


def test_empty_mask_is_a_422_naming_the_field(photo_png_uri: str) -> None:
    black = np.zeros((512, 512, 4), np.uint8)
    black[..., 3] = 255
    with pytest.raises(InputError) as exc:
        load({"prompt": "x", "image_url": photo_png_uri, "static_mask_url": data_uri(png_bytes(black))})
    [item] = exc.value.errors
    assert item["loc"] == ["body", "static_mask_url"] and item["type"] == "mask_empty"
    assert "selects no pixel" in item["msg"]


def test_full_mask_is_accepted_with_a_warning(photo_png_uri: str) -> None:
    white = np.full((512, 512), 255, np.uint8)
    notes: list[str] = []
    traj = [{"x": 100, "y": 300}, {"x": 200, "y": 300}]
    inputs = load_inputs(
        parse_input(
            {
                "prompt": "x",
                "image_url": photo_png_uri,
                "static_mask_url": data_uri(mask_png(512, 512, (0, 0, 9, 9))),
                "dynamic_masks": [{"mask_url": data_uri(png_bytes(white)), "trajectories": traj}],
            }
        ),
        Fetcher(Settings()).fetch,
        max_pixels=MAX_PIXELS,
        warn=notes.append,
    )
    assert inputs.dynamic_brushes[0].mask.all()
    assert len(notes) == 1 and notes[0].startswith("dynamic_masks[0].mask_url: the mask selects every pixel")

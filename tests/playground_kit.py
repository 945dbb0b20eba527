"""Shared parts of the playground tests: Debian chromium through Playwright, the canvas mapping, inputs.

Test modules import the fixtures (``browser``, ``page``) and helpers from here.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from PIL import Image
from server import ROOT, Server

__all__ = [
    "ARTIFACTS",
    "CHROMIUM",
    "PLAY_ENGINE",
    "SUBMIT_PATH",
    "CanvasMap",
    "astronaut",
    "browser_fixture",
    "chip_meta",
    "decode_clip",
    "drag",
    "drop_file",
    "fetch_mask",
    "open_playground",
    "page_fixture",
    "save_png",
    "textured",
    "wait_uploaded",
    "skip_without_chromium",
]

CHROMIUM = Path("/usr/bin/chromium")
skip_without_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium"
)
playwright_api = pytest.importorskip("playwright.sync_api")

ARTIFACTS = ROOT / "test-artifacts"
SUBMIT_PATH = "/fal-ai/kling-video/v1/standard/image-to-video"
PLAY_ENGINE = "kinema.engines.motion:render"  # the real default engine: a 5 s clip of 512x512 takes a few seconds
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(name="page")
def page_fixture(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 1000})
    context.set_default_timeout(5_000)  # what the page shows at once; longer waits say so
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.page_errors = errors  # type: ignore[attr-defined]
    try:
        yield pg
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def save_png(array: np.ndarray, path: Path) -> Path:
    Image.fromarray(array).save(path, format="PNG")
    return path


def astronaut(tmp_path: Path, size: int | None = None) -> Path:
    from skimage import data

    img = data.astronaut()  # 512x512 RGB photo
    if size is not None:
        img = np.asarray(Image.fromarray(img).resize((size, size), Image.LANCZOS))
    return save_png(img, tmp_path / f"astronaut-{size or 512}.png")


def open_playground(page: Any, server: Server, image: Path) -> None:
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready='1']")
    page.get_by_test_id("api-key").fill(server.key)
    page.get_by_test_id("api-key").press("Tab")
    page.get_by_test_id("image-input").set_input_files(str(image))
    wait_uploaded(page)


def wait_uploaded(page: Any) -> None:
    page.wait_for_function(
        # "· uploaded", not " uploaded": the previous image's "· not uploaded" ends with that too (a race
        # that let a check run before the new image was even read)
        "document.querySelector('[data-testid=image-info]').textContent.endsWith('· uploaded')",
        timeout=15_000,
    )


class CanvasMap:
    """Image pixel <-> page position for the CSS-scaled canvas (re-read each time: the page may scroll)."""

    def __init__(self, page: Any, width: int, height: int):
        self.page, self.w, self.h = page, width, height

    def box(self) -> dict[str, float]:
        box = self.page.get_by_test_id("canvas").bounding_box()
        assert box is not None
        return box

    def scale(self) -> float:
        return self.box()["width"] / self.w

    def page_xy(self, x: float, y: float) -> tuple[float, float]:
        b = self.box()
        return b["x"] + (x + 0.5) * b["width"] / self.w, b["y"] + (y + 0.5) * b["height"] / self.h

    def image_xy(self, px: float, py: float) -> tuple[float, float]:
        b = self.box()
        return (px - b["x"]) * self.w / b["width"], (py - b["y"]) * self.h / b["height"]


def drag(page: Any, cmap: CanvasMap, points: list[tuple[int, int]]) -> None:
    page.mouse.move(*cmap.page_xy(*points[0]))
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*cmap.page_xy(*p), steps=8)
    page.mouse.up()


def fetch_mask(url: str) -> np.ndarray:
    """The mask at ``url`` as the server reads it (``decode_mask``): a PNG, True where it selects."""
    from kinema.media.images import decode_mask

    res = httpx.get(url, timeout=10)
    assert res.status_code == 200
    assert Image.open(io.BytesIO(res.content)).format == "PNG"
    return decode_mask(res.content, ["mask"])


def drop_file(page: Any, selector: str, path: Path, mime: str = "image/png") -> None:
    """Drop a file on an element the way a drag from the desktop does (a DataTransfer in a drop event)."""
    page.evaluate(
        """([sel, name, mime, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: mime }));
            const target = document.querySelector(sel);
            for (const type of ["dragenter", "dragover", "drop"]) {
                target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
            }
        }""",
        [selector, path.name, mime, base64.b64encode(path.read_bytes()).decode()],
    )


def chip_meta(page: Any, which: str) -> str:
    """The state line of a brush chip ("static" or a dynamic brush's number): "painted · 3 points"."""
    return str(page.locator(f"[data-testid=brush-chip-{which}] .chip-meta").inner_text()).strip()


def textured(tmp_path: Path, width: int = 512, height: int = 512, name: str = "texture.png") -> Path:
    """Smooth colour noise (features everywhere), so any motion shows in a frame difference."""
    import cv2

    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    img = cv2.GaussianBlur(noise, (0, 0), 2.0)
    img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)
    return save_png(img.astype(np.uint8), tmp_path / name)


def decode_clip(url: str) -> tuple[list[np.ndarray], int]:
    """The first and last frame of the MP4 at ``url`` (RGB), and the number of frames, decoded with PyAV."""
    res = httpx.get(url, timeout=30)
    assert res.status_code == 200 and res.headers["content-type"].startswith("video/mp4")
    first: np.ndarray | None = None
    last: np.ndarray | None = None
    n = 0
    with av.open(io.BytesIO(res.content)) as container:
        for frame in container.decode(video=0):
            arr = frame.to_ndarray(format="rgb24")
            if first is None:
                first = arr
            last = arr
            n += 1
    assert first is not None and last is not None
    return [first, last], n

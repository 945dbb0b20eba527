"""The playground in a real browser (Debian's chromium driven by Playwright) against a live kinema server.

Paints a static and a dynamic region, draws a trajectory, submits, waits for the clip to play, and checks
the request the page sent: mask PNGs at the image's resolution, trajectory in bottom-left-origin pixels.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import httpx
import numpy as np
import pytest
from PIL import Image

from server import ROOT, Server, running_server

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium"),
    pytest.mark.timeout(180),
]
playwright_api = pytest.importorskip("playwright.sync_api")

ARTIFACTS = ROOT / "test-artifacts"
SUBMIT_PATH = "/fal-ai/kling-video/v1/standard/image-to-video"
PLAY_ENGINE = "kinema.engines.motion:render"  # the real default engine: a 5 s clip of 512x512 takes a few seconds
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 1000})
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
    page.wait_for_function("document.querySelector('[data-testid=image-info]').textContent.includes('uploaded')",
                           timeout=15_000)


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


def test_paint_trajectory_submit_and_play(tmp_path: Path, page: Any) -> None:
    image = astronaut(tmp_path)
    with running_server(tmp_path, engine=PLAY_ENGINE) as server:
        requests: list[Any] = []
        page.on("request", lambda r: requests.append(r))
        open_playground(page, server, image)
        cmap = CanvasMap(page, 512, 512)
        assert abs(cmap.scale() - 1) > 0.05  # shown scaled: pointer mapping must convert

        # 1. Static brush over the lower left, dynamic brush over the upper right.
        page.get_by_test_id("brush-size").fill("30")
        page.get_by_test_id("brush-static").click()
        drag(page, cmap, [(60, 420), (180, 420)])
        page.get_by_test_id("brush-dynamic").click()
        assert page.get_by_test_id("active-brush").get_attribute("data-active") == "dynamic-1"
        drag(page, cmap, [(330, 120), (450, 120)])

        # 2. Trajectory: three clicked points (image coordinates, top-left origin on screen).
        page.get_by_test_id("trajectory").click()
        clicks = [(360, 110), (400, 200), (440, 330)]
        expected = []
        for x, y in clicks:
            px, py = cmap.page_xy(x, y)
            page.mouse.click(px, py)
            ix, iy = cmap.image_xy(px, py)
            expected.append((round(ix), 512 - 1 - round(iy)))
        assert "3 points" in page.get_by_test_id("brush-chip-1").inner_text()

        # 3. Submit and wait for the clip.
        page.get_by_test_id("prompt").fill("the astronaut waves")
        page.get_by_test_id("submit").click()
        page.wait_for_function(
            "(() => { const v = document.querySelector('[data-testid=video]');"
            " return v && v.src && v.readyState >= 2; })()",
            timeout=90_000,
        )
        assert page.get_by_test_id("job-status").inner_text().strip().lower() == "done"
        assert "rendering 150 frames" in page.get_by_test_id("logs").inner_text()

        # 4. The video plays: 5 s long, time advances after play().
        duration = page.evaluate("document.querySelector('[data-testid=video]').duration")
        assert abs(duration - 5.0) < 0.15, duration
        t0, t1 = page.evaluate(
            """async () => {
                const v = document.querySelector('[data-testid=video]');
                v.pause(); v.currentTime = 0.2;
                await new Promise((r) => v.addEventListener('seeked', r, { once: true }));
                await v.play();
                const t0 = v.currentTime;
                await new Promise((r) => setTimeout(r, 800));
                return [t0, v.currentTime];
            }"""
        )
        assert t1 > t0 + 0.2, (t0, t1)

        # 5. The submit request: key, static mask, one dynamic mask, bottom-left-origin trajectory.
        submits = [r for r in requests if r.method == "POST" and r.url == server.url + SUBMIT_PATH]
        assert len(submits) == 1
        sent = json.loads(submits[0].post_data)
        assert submits[0].headers["authorization"] == f"Key {server.key}"
        assert sent["prompt"] == "the astronaut waves"
        assert sent["duration"] == "5"
        assert "tail_image_url" not in sent
        assert len(sent["dynamic_masks"]) == 1
        traj = sent["dynamic_masks"][0]["trajectories"]
        assert len(traj) == 3
        for got, (ex, ey) in zip(traj, expected):
            assert isinstance(got["x"], int) and isinstance(got["y"], int)
            assert abs(got["x"] - ex) <= 1 and abs(got["y"] - ey) <= 1, (traj, expected)
        assert traj[0]["y"] > traj[2]["y"]  # clicked downwards on screen: y decreases from the bottom-left

        # 6. The masks were uploaded as PNGs at the image's resolution, white where painted.
        uploads = [r for r in requests if r.method == "POST" and r.url.endswith("/files/upload")]
        assert any(r.headers.get("content-type") == "image/png" and "x-fal-file-name" in r.headers for r in uploads)
        static = fetch_mask(sent["static_mask_url"])
        dynamic = fetch_mask(sent["dynamic_masks"][0]["mask_url"])
        for mask in (static, dynamic):
            assert mask.shape == (512, 512)
            assert set(np.unique(mask)) <= {0, 255}
        assert static[420, 60:181].min() == 255 and dynamic[120, 330:451].min() == 255
        assert static[120, 390] == 0 and dynamic[420, 120] == 0  # each only where it was painted
        assert static[40:80, 20:40].max() == 0 and dynamic[300:, :].max() == 0
        assert 3000 < (static > 0).sum() < 12000, (static > 0).sum()  # ~ a 120x30 stroke with round caps

        # 7. The API panel shows exactly the submitted body; the history lists the request.
        page.locator("#api-panel summary").click()
        snippet = page.get_by_test_id("snippet").inner_text()
        body = re.search(r"<<'JSON'\n(.*?)\nJSON\n", snippet, re.S)
        assert body is not None and json.loads(body.group(1)) == sent
        assert server.url in snippet
        if shutil.which("curl"):  # the curl snippet runs as shown: submit, wait, result
            run = subprocess.run(["bash", "-c", snippet], env={**os.environ, "FAL_KEY": server.key},
                                 capture_output=True, text=True, timeout=60)
            assert run.returncode == 0, run.stderr
            out = json.loads(run.stdout.strip().splitlines()[-1])
            assert out["video"]["url"].startswith(server.url + "/files/"), out
        page.locator(".tab[data-lang=python]").click()
        python = page.get_by_test_id("snippet").inner_text()
        assert f'os.environ["FAL_QUEUE_RUN_HOST"] = "{server.host_port}"' in python
        assert f'os.environ["FAL_RUN_HOST"] = "{server.host_port}/run"' in python
        assert sent["image_url"] in python
        page.locator(".tab[data-lang=js]").click()
        js = page.get_by_test_id("snippet").inner_text()
        assert f'const KINEMA = "{server.url}";' in js and "requestMiddleware" in js
        assert sent["dynamic_masks"][0]["mask_url"] in js
        rid = submits[0].response().json()["request_id"]
        listed = httpx.get(server.url + "/requests", headers=server.headers).json()["requests"]
        assert next(r for r in listed if r["request_id"] == rid)["input"] == sent  # the server got what was sent
        row = page.locator(f"[data-testid=history] li[data-id='{rid}']")
        row.wait_for(timeout=10_000)
        assert row.locator("img").get_attribute("src") == sent["image_url"]
        assert "done" in row.inner_text().lower()

        # 8. Live updates came from the SSE stream, read with fetch and the key (no fallback to polling).
        streams = [r for r in requests if r.url == f"{server.url}/fal-ai/kling-video/requests/{rid}/status/stream?logs=1"]
        assert len(streams) == 1 and streams[0].headers["authorization"] == f"Key {server.key}"
        assert not [r for r in requests if r.url.endswith(f"/requests/{rid}/status?logs=1")]

        # 9. Offline: every request the page made went to this server (no CDN, fonts or other hosts).
        foreign = [r.url for r in requests if not r.url.startswith((server.url + "/", "data:", "blob:"))]
        assert not foreign, foreign

        ARTIFACTS.mkdir(exist_ok=True)
        page.get_by_test_id("video").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)


def fetch_mask(url: str) -> np.ndarray:
    res = httpx.get(url, timeout=10)
    assert res.status_code == 200
    img = Image.open(io.BytesIO(res.content))
    assert img.format == "PNG"
    return np.asarray(img.convert("L"))


def test_422s_are_shown_next_to_their_fields(tmp_path: Path, page: Any) -> None:
    image = astronaut(tmp_path, size=200)  # below Kling's 300 px minimum, which only the server checks
    with running_server(tmp_path, engine="tests/engines/trivial.py:render") as server:
        open_playground(page, server, image)
        page.get_by_test_id("prompt").fill("too small")

        # 1. Refused at submit (422 answer to the POST): a seed with a fraction is not an integer.
        page.get_by_test_id("seed").fill("1.5")
        page.get_by_test_id("submit").click()
        seed_err = page.get_by_test_id("error-seed")
        seed_err.wait_for(state="visible", timeout=10_000)
        assert "integer" in seed_err.inner_text().lower()
        assert page.get_by_test_id("seed").get_attribute("aria-invalid") == "true"
        assert "422" in page.get_by_test_id("status").inner_text()
        assert page.get_by_test_id("error-image_url").is_hidden()
        assert httpx.get(server.url + "/requests", headers=server.headers).json()["requests"] == []

        # 2. Accepted, then COMPLETED with a 422 result (the image is checked once fetched): shown under the image.
        page.get_by_test_id("seed").fill("")
        page.get_by_test_id("submit").click()
        err = page.get_by_test_id("error-image_url")
        err.wait_for(state="visible", timeout=30_000)
        assert "300" in err.inner_text()
        assert page.get_by_test_id("dropzone").get_attribute("aria-invalid") == "true"
        assert page.get_by_test_id("job-status").inner_text().strip().lower() == "failed"
        assert "422" in page.get_by_test_id("status").inner_text()
        assert page.get_by_test_id("error-seed").is_hidden() and page.get_by_test_id("error-prompt").is_hidden()
        (listed,) = httpx.get(server.url + "/requests", headers=server.headers).json()["requests"]
        assert listed["status"] == "COMPLETED" and listed["error"]


def test_key_is_asked_for_once(tmp_path: Path, page: Any) -> None:
    with running_server(tmp_path, engine="tests/engines/trivial.py:render") as server:
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready='1']")
        assert page.get_by_test_id("key-hint").is_visible()  # first visit: asks for the key
        page.get_by_test_id("api-key").fill(server.key)
        page.get_by_test_id("api-key").press("Enter")
        assert page.get_by_test_id("key-hint").is_hidden()
        page.wait_for_function("document.getElementById('history-empty').textContent === 'No requests yet.'",
                               timeout=10_000)  # the key works: the history loaded

        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        assert page.get_by_test_id("key-hint").is_hidden()  # not asked again
        assert page.get_by_test_id("api-key").input_value() == server.key
        page.wait_for_function("document.getElementById('history-empty').textContent === 'No requests yet.'",
                               timeout=10_000)
        assert page.evaluate("localStorage.getItem('kinema.apiKey')") == server.key


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


def test_brush_tools_and_tail_exclusion(tmp_path: Path, page: Any) -> None:
    image = astronaut(tmp_path)
    with running_server(tmp_path, engine="tests/engines/trivial.py:render") as server:
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready='1']")
        page.get_by_test_id("api-key").fill(server.key)
        page.get_by_test_id("api-key").press("Tab")
        # 1. The image arrives by drag and drop and is uploaded.
        drop_file(page, "[data-testid=dropzone]", image)
        page.wait_for_function("document.querySelector('[data-testid=image-info]').textContent.includes('uploaded')",
                               timeout=15_000)
        assert "512×512" in page.get_by_test_id("image-info").inner_text()
        cmap = CanvasMap(page, 512, 512)

        # 2. A tail image turns the brush off, with the reason shown; removing it turns the brush back on.
        assert page.get_by_test_id("tail-remove").is_hidden()
        page.get_by_test_id("tail-input").set_input_files(str(image))
        assert page.get_by_test_id("brush-off").is_visible()
        assert page.get_by_test_id("brush-static").is_disabled()
        assert page.get_by_test_id("tail-remove").is_visible()
        page.get_by_test_id("tail-remove").click()
        assert page.get_by_test_id("brush-off").is_hidden() and page.get_by_test_id("tail-remove").is_hidden()

        # 3. Paint: now the tail picker is locked, with the reason shown; undo unlocks it.
        page.get_by_test_id("brush-static").click()
        drag(page, cmap, [(100, 100), (200, 100)])
        assert chip_meta(page, "static") == "painted"
        assert page.get_by_test_id("tail-input").is_disabled()
        assert "cannot be combined" in page.get_by_test_id("tail-note").inner_text()
        page.get_by_test_id("undo").click()
        assert chip_meta(page, "static") == "not painted"
        assert page.get_by_test_id("tail-input").is_enabled()

        # 4. Dynamic brushes get distinct colours; a dragged trajectory is resampled to 2..77 points.
        page.get_by_test_id("brush-dynamic").click()
        drag(page, cmap, [(300, 300), (380, 300)])
        page.get_by_test_id("trajectory").click()
        drag(page, cmap, [(310, 300), (400, 250), (480, 120)])
        chip = chip_meta(page, "1")
        n = int(re.fullmatch(r"painted · (\d+) points", chip).group(1))  # type: ignore[union-attr]
        assert 3 <= n <= 77, chip
        page.get_by_test_id("brush-dynamic").click()
        assert page.get_by_test_id("active-brush").get_attribute("data-active") == "dynamic-2"
        colors = page.evaluate("[...document.querySelectorAll('.chip.dynamic .swatch')].map((s) => s.style.background)")
        assert len(colors) == 2 and colors[0] != colors[1] and all(colors)

        # 5. Painting dynamic brush 2 over brush 1 takes that area; the eraser and Clear remove paint.
        page.get_by_test_id("brush-size").fill("60")
        drag(page, cmap, [(300, 300), (380, 300)])
        assert chip_meta(page, "1").startswith("not painted")
        page.get_by_test_id("eraser").click()
        drag(page, cmap, [(300, 300), (380, 300)])
        assert chip_meta(page, "2").startswith("not painted")
        page.get_by_test_id("undo").click()
        assert chip_meta(page, "2").startswith("painted")
        page.get_by_test_id("clear").click()
        assert page.get_by_test_id("clear").is_disabled()
        assert chip_meta(page, "1") == "not painted · 0 points"
        assert page.get_by_test_id("tail-input").is_enabled()

        # 6. With the API panel open, fresh paint is uploaded soon after, so the snippet shows a real mask URL.
        page.locator("#api-panel summary").click()
        assert '"static_mask_url"' not in page.get_by_test_id("snippet").inner_text()
        page.get_by_test_id("brush-static").click()
        drag(page, cmap, [(100, 400), (200, 400)])
        page.wait_for_function(f"document.querySelector('[data-testid=snippet]').textContent"
                               f".includes('\"static_mask_url\": \"{server.url}/files/')", timeout=10_000)
        url = re.search(r'"static_mask_url": "([^"]+)"', page.get_by_test_id("snippet").inner_text()).group(1)  # type: ignore[union-attr]
        mask = fetch_mask(url)
        assert mask.shape == (512, 512) and mask[400, 100:201].min() == 255 and mask[100, 150] == 0


def test_queue_position_and_cancel(tmp_path: Path, page: Any) -> None:
    image = astronaut(tmp_path)
    with running_server(tmp_path, engine="tests/engines/slow.py:render") as server:
        open_playground(page, server, image)
        page.get_by_test_id("prompt").fill("first")
        page.get_by_test_id("submit").click()
        page.wait_for_function("document.querySelector('[data-testid=job-status]').textContent === 'running'",
                               timeout=30_000)
        # Progress and logs arrive while it renders.
        page.wait_for_function("document.querySelector('[data-testid=progress]').value > 0"
                               " && document.querySelector('[data-testid=logs]').textContent.includes('slow engine at')",
                               timeout=15_000)
        # A second request waits behind the running one: the page follows it and shows its queue position.
        page.get_by_test_id("prompt").fill("second")
        page.get_by_test_id("submit").click()
        page.wait_for_selector("[data-testid=queue-position][data-position='0']", timeout=10_000)
        assert page.get_by_test_id("job-status").inner_text().strip().lower() == "queued"
        assert "next in queue" in page.get_by_test_id("queue-position").inner_text().lower()
        page.get_by_test_id("cancel").click()
        page.wait_for_function("document.querySelector('[data-testid=job-status]').textContent === 'cancelled'",
                               timeout=15_000)
        assert "cancelled" in page.get_by_test_id("status").inner_text().lower()
        assert page.get_by_test_id("cancel").is_hidden()
        listed = httpx.get(server.url + "/requests", headers=server.headers).json()["requests"]
        second = next(r for r in listed if r["input"]["prompt"] == "second")
        assert second["status"] == "COMPLETED" and second.get("error")

"""The playground in a real browser (Debian's chromium driven by Playwright) against a live kinema server.

Paints a static and a dynamic region on a textured image, draws a trajectory, submits, waits for the clip to
play, and measures the decoded clip: the dynamic region moved along the drawn path, the static region and the
unpainted rest stayed still. Also checks the request the page sent, the API snippets and the history.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from playground_kit import (  # noqa: F401 - the browser and page fixtures
    ARTIFACTS,
    PLAY_ENGINE,
    SUBMIT_PATH,
    CanvasMap,
    astronaut,
    browser_fixture,
    chip_meta,
    decode_clip,
    drag,
    drop_file,
    fetch_mask,
    open_playground,
    page_fixture,
    skip_without_chromium,
    textured,
    wait_uploaded,
)
from server import running_server

pytestmark = [skip_without_chromium, pytest.mark.timeout(180)]

OUT = 720  # the clip of a 512x512 image is 720x720
K = OUT / 512


def region_mask(points: list[tuple[float, float]], width: float, shape: tuple[int, int] = (512, 512)) -> np.ndarray:
    """The pixels a round brush of ``width`` covers along ``points`` (image pixels, top-left origin)."""
    m = np.zeros(shape, np.uint8)
    pts = np.round(np.array(points)).astype(np.int32)
    cv2.polylines(m, [pts.reshape(-1, 1, 2)], False, 1, thickness=int(width))
    for x, y in pts:
        cv2.circle(m, (int(x), int(y)), int(width // 2), 1, -1)
    return m > 0


def to_output(mask: np.ndarray) -> np.ndarray:
    return cv2.resize(mask.astype(np.uint8), (OUT, OUT), interpolation=cv2.INTER_NEAREST) > 0


def erode(mask: np.ndarray, px: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.erode(mask.astype(np.uint8), kernel) > 0


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def mean_abs_diff(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.abs(ga - gb)[where].mean())


def locate(template_frame: np.ndarray, region: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, float]:
    """Where the pixels of ``region`` in ``template_frame`` are in ``frame``: (dx, dy) and the match score."""
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    tmpl = cv2.cvtColor(template_frame[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
    hay = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    scores = cv2.matchTemplate(hay, tmpl, cv2.TM_CCOEFF_NORMED)
    _, best, _, (bx, by) = cv2.minMaxLoc(scores)
    return np.array([bx - x0, by - y0], float), float(best)


def test_paint_trajectory_submit_and_play(tmp_path: Path, page: Any) -> None:
    image = textured(tmp_path)
    with running_server(tmp_path, engine=PLAY_ENGINE) as server:
        requests: list[Any] = []
        page.on("request", lambda r: requests.append(r))
        open_playground(page, server, image)
        cmap = CanvasMap(page, 512, 512)
        assert abs(cmap.scale() - 1) > 0.05  # shown scaled: pointer mapping must convert

        # 1. Static brush over the lower left, dynamic brush over the upper right.
        page.get_by_test_id("brush-size").fill("30")
        page.get_by_test_id("brush-static").click()
        static_stroke = [(60, 420), (180, 420)]
        drag(page, cmap, static_stroke)
        page.get_by_test_id("brush-size").fill("40")
        page.get_by_test_id("brush-dynamic").click()
        assert page.get_by_test_id("active-brush").get_attribute("data-active") == "dynamic-1"
        dynamic_stroke = [(300, 120), (420, 120)]
        drag(page, cmap, dynamic_stroke)

        # 2. Trajectory: three clicked points (image coordinates, top-left origin on screen).
        page.get_by_test_id("trajectory").click()
        clicks = [(360, 110), (400, 200), (440, 330)]
        drawn = []  # where the clicks landed on the image (top-left origin): the drawn path
        for x, y in clicks:
            px, py = cmap.page_xy(x, y)
            page.mouse.click(px, py)
            drawn.append(cmap.image_xy(px, py))
        expected = [(round(ix), 512 - 1 - round(iy)) for ix, iy in drawn]
        assert "3 points" in page.get_by_test_id("brush-chip-1").inner_text()

        # 3. Submit and wait for the clip.
        page.get_by_test_id("prompt").fill("a test card")
        page.get_by_test_id("submit").click()
        page.wait_for_function(
            "(() => { const v = document.querySelector('[data-testid=video]');"
            " return v && v.src && v.readyState >= 2; })()",
            timeout=90_000,
        )
        assert page.get_by_test_id("job-status").inner_text().strip().lower() == "done"
        assert "rendering 150 frames" in str(page.get_by_test_id("logs").text_content())

        # 4. The clip itself: decode it and measure. The dynamic region moved along the drawn path (its
        # last-frame position vs the drawn end point, in output pixels); the static stroke and the
        # unpainted rest stayed still.
        video_url = page.get_by_test_id("video").get_attribute("src")
        assert video_url is not None
        (first, last), frames = decode_clip(video_url)
        assert frames == 150 and first.shape == (OUT, OUT, 3)
        dyn = np.zeros((512, 512), bool)
        dyn[106:135, 300:421] = True  # the straight part of the 40 px stroke, 6 px in from its edges
        dyn = to_output(dyn)
        moved, score = locate(first, dyn, last)
        want = (np.array(drawn[-1]) - np.array(drawn[0])) * K
        miss = float(np.linalg.norm(moved - want))
        static = to_output(erode(region_mask(static_stroke, 30), 4))
        base = dilate(region_mask(dynamic_stroke, 40), 30)  # the region, its path and a margin around them
        swept = base.copy()
        for t in np.linspace(0, 1, 24):
            pos = t * (len(drawn) - 1)  # along the drawn polyline
            k = min(int(pos), len(drawn) - 2)
            at = np.array(drawn[k]) + (pos - k) * (np.array(drawn[k + 1]) - np.array(drawn[k])) - np.array(drawn[0])
            swept |= np.roll(base, (int(at[1]), int(at[0])), axis=(0, 1))
        rest = to_output(~swept & ~dilate(region_mask(static_stroke, 30), 10))
        static_diff = mean_abs_diff(first, last, static)
        rest_diff = mean_abs_diff(first, last, rest)
        print(
            f"dynamic region moved {moved.round(1).tolist()} px, drawn {want.round(1).tolist()} px "
            f"(miss {miss:.1f} px, match {score:.3f}); static |diff| {static_diff:.2f}, "
            f"rest |diff| {rest_diff:.2f} over {rest.mean():.0%} of the frame"
        )
        assert score > 0.8 and miss < 8.0, (moved, want, score)
        assert static_diff < 1.5, static_diff
        assert rest_diff < 2.0 and rest.sum() > 0.3 * OUT * OUT, rest_diff

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
        assert sent["prompt"] == "a test card"
        assert sent["duration"] == "5"
        assert "tail_image_url" not in sent
        assert len(sent["dynamic_masks"]) == 1
        traj = sent["dynamic_masks"][0]["trajectories"]
        assert len(traj) == 3
        for got, (ex, ey) in zip(traj, expected, strict=True):
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
        assert static[420, 60:181].all() and dynamic[120, 300:421].all()
        assert not static[120, 390] and not dynamic[420, 120]  # each only where it was painted
        assert not static[40:80, 20:40].any() and not dynamic[300:, :].any()
        assert 3000 < static.sum() < 12000, static.sum()  # ~ a 120x30 stroke with round caps

        # 7. The API panel shows exactly the submitted body; the history lists the request.
        page.locator("#api-panel summary").click()
        snippet = page.get_by_test_id("snippet").inner_text()
        body = re.search(r"<<'JSON'\n(.*?)\nJSON\n", snippet, re.S)
        assert body is not None and json.loads(body.group(1)) == sent
        assert server.url in snippet
        if shutil.which("curl"):  # the curl snippet runs as shown: submit, wait, result
            run = subprocess.run(
                ["bash", "-c", snippet],
                env={**os.environ, "FAL_KEY": server.key},
                capture_output=True,
                text=True,
                timeout=60,
            )
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
        streams = [
            r for r in requests if r.url == f"{server.url}/fal-ai/kling-video/requests/{rid}/status/stream?logs=1"
        ]
        assert len(streams) == 1 and streams[0].headers["authorization"] == f"Key {server.key}"
        assert not [r for r in requests if r.url.endswith(f"/requests/{rid}/status?logs=1")]

        # 9. Offline: every request the page made went to this server (no CDN, fonts or other hosts).
        foreign = [r.url for r in requests if not r.url.startswith((server.url + "/", "data:", "blob:"))]
        assert not foreign, foreign

        ARTIFACTS.mkdir(exist_ok=True)
        page.get_by_test_id("video").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)


def test_422s_are_shown_next_to_their_fields(tmp_path: Path, page: Any) -> None:
    image = astronaut(tmp_path)
    # A pixel limit below 512x512: only the worker knows it, so the page cannot refuse the image itself.
    with running_server(
        tmp_path, engine="tests/engines/trivial.py:render", env={"KINEMA_MAX_IMAGE_PIXELS": "100000"}
    ) as server:
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
        assert "512x512" in err.inner_text() and "100000" in err.inner_text()
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
        page.wait_for_function(
            "document.getElementById('history-empty').textContent === 'No requests yet.'", timeout=10_000
        )  # the key works: the history loaded

        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        assert page.get_by_test_id("key-hint").is_hidden()  # not asked again
        assert page.get_by_test_id("api-key").input_value() == server.key
        page.wait_for_function(
            "document.getElementById('history-empty').textContent === 'No requests yet.'", timeout=10_000
        )
        assert page.evaluate("localStorage.getItem('kinema.apiKey')") == server.key


def test_brush_tools_and_tail_exclusion(tmp_path: Path, page: Any) -> None:
    image = astronaut(tmp_path)
    with running_server(tmp_path, engine="tests/engines/trivial.py:render") as server:
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready='1']")
        page.get_by_test_id("api-key").fill(server.key)
        page.get_by_test_id("api-key").press("Tab")
        # 1. The image arrives by drag and drop and is uploaded.
        drop_file(page, "[data-testid=dropzone]", image)
        page.wait_for_function(
            "document.querySelector('[data-testid=image-info]').textContent.includes('uploaded')", timeout=15_000
        )
        assert "512×512" in page.get_by_test_id("image-info").inner_text()
        cmap = CanvasMap(page, 512, 512)

        # 2. A tail image turns the brush off, with the reason shown; removing it turns the brush back on.
        assert page.get_by_test_id("tail-remove").is_hidden()
        page.get_by_test_id("tail-input").set_input_files(str(image))
        page.get_by_test_id("brush-off").wait_for(state="visible", timeout=5_000)  # once the file is decoded
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
        assert chip_meta(page, "static") == "not painted"
        assert page.locator(".chip.dynamic").count() == 0  # Clear leaves no empty dynamic brush behind
        assert page.get_by_test_id("tail-input").is_enabled()

        # 6. With the API panel open, fresh paint is uploaded soon after, so the snippet shows a real mask URL.
        page.locator("#api-panel summary").click()
        assert '"static_mask_url"' not in page.get_by_test_id("snippet").inner_text()
        page.get_by_test_id("brush-static").click()
        drag(page, cmap, [(100, 400), (200, 400)])
        page.wait_for_function(
            f"document.querySelector('[data-testid=snippet]').textContent"
            f'.includes(\'"static_mask_url": "{server.url}/files/\')',
            timeout=10_000,
        )
        url = re.search(r'"static_mask_url": "([^"]+)"', page.get_by_test_id("snippet").inner_text()).group(1)  # type: ignore[union-attr]
        mask = fetch_mask(url)
        assert mask.shape == (512, 512) and mask[400, 100:201].all() and not mask[100, 150]


def test_queue_position_and_cancel(tmp_path: Path, page: Any) -> None:
    image = astronaut(tmp_path)
    with running_server(tmp_path, engine="tests/engines/slow.py:render") as server:
        open_playground(page, server, image)
        page.get_by_test_id("prompt").fill("first")
        page.get_by_test_id("submit").click()
        page.wait_for_function(
            "document.querySelector('[data-testid=job-status]').textContent === 'running'", timeout=30_000
        )
        # Progress and logs arrive while it renders.
        page.wait_for_function(
            "document.querySelector('[data-testid=progress]').value > 0"
            " && document.querySelector('[data-testid=logs]').textContent.includes('slow engine at')",
            timeout=15_000,
        )
        # A second request waits behind the running one: the page follows it and shows its queue position.
        page.get_by_test_id("prompt").fill("second")
        page.get_by_test_id("submit").click()
        page.wait_for_selector("[data-testid=queue-position][data-position='0']", timeout=10_000)
        assert page.get_by_test_id("job-status").inner_text().strip().lower() == "queued"
        assert "next in queue" in page.get_by_test_id("queue-position").inner_text().lower()
        page.get_by_test_id("cancel").click()
        page.wait_for_function(
            "document.querySelector('[data-testid=job-status]').textContent === 'cancelled'", timeout=15_000
        )
        assert "cancelled" in page.get_by_test_id("status").inner_text().lower()
        assert page.get_by_test_id("cancel").is_hidden()
        listed = httpx.get(server.url + "/requests", headers=server.headers).json()["requests"]
        second = next(r for r in listed if r["input"]["prompt"] == "second")
        assert second["status"] == "COMPLETED" and second.get("error")

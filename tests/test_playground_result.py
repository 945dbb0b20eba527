"""The playground's result and history in Chromium: full request ids with copy buttons, a copy button for the
video URL, "Reuse these inputs", the seed placeholder (issue 7, point 8); the video in view without scrolling
at 1440x900 once it is ready (point 9)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playground_kit import (  # noqa: F401 - the browser fixture
    SUBMIT_PATH,
    CanvasMap,
    browser_fixture,
    chip_meta,
    drag,
    fetch_mask,
    open_playground,
    skip_without_chromium,
    textured,
    wait_uploaded,
)
from server import running_server

pytestmark = [skip_without_chromium, pytest.mark.timeout(150)]


@pytest.fixture
def big_page(browser: Any) -> Iterator[Any]:
    """A 1440x900 window that may read the clipboard (to check what the copy buttons copied)."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    context.set_default_timeout(5_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield pg
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def clipboard(page: Any) -> str:
    return str(page.evaluate("navigator.clipboard.readText()"))


def test_ids_copy_reuse_and_video_in_view(tmp_path: Path, big_page: Any) -> None:
    page = big_page
    image = textured(tmp_path)
    with running_server(tmp_path, engine="tests/engines/trivial.py:render") as server:
        # 1. The seed field says what happens without a seed.
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready='1']")
        placeholder = str(page.get_by_test_id("seed").get_attribute("placeholder"))
        assert "seed 0" in placeholder and "same video" in placeholder, placeholder
        fits = page.evaluate("""() => {
            const i = document.querySelector('[data-testid=seed]');
            const cs = getComputedStyle(i);
            const ctx = document.createElement('canvas').getContext('2d');
            ctx.font = cs.font;
            return ctx.measureText(i.placeholder).width
                <= i.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
        }""")
        assert fits, "the seed placeholder is cut off"

        # 2. A request with a static brush, a dynamic brush and its trajectory, a prompt and a seed.
        open_playground(page, server, image)
        cmap = CanvasMap(page, 512, 512)
        drag(page, cmap, [(60, 420), (180, 420)])
        page.get_by_test_id("brush-dynamic").click()
        drag(page, cmap, [(300, 120), (420, 120)])
        page.get_by_test_id("trajectory").click()
        for x, y in [(360, 110), (400, 200), (440, 330)]:
            page.mouse.click(*cmap.page_xy(x, y))
        page.get_by_test_id("prompt").fill("reuse me")
        page.get_by_test_id("seed").fill("42")
        page.locator("label:has([data-testid=duration-10])").click()
        with page.expect_response(lambda r: r.url == server.url + SUBMIT_PATH) as answer:
            page.get_by_test_id("submit").click()
        rid = answer.value.json()["request_id"]
        sent = json.loads(answer.value.request.post_data)

        # 3. Once ready, the video is in view at 1440x900 without the user scrolling.
        page.wait_for_function(
            "(() => { const v = document.querySelector('[data-testid=video]');"
            " return v && v.src && v.readyState >= 2; })()",
            timeout=60_000,
        )
        box = page.get_by_test_id("video").bounding_box()
        assert box is not None and box["height"] > 200
        assert 0 <= box["y"] and box["y"] + box["height"] <= 900, box

        # 4. The full request id with a copy button; the video URL with a copy button.
        assert page.get_by_test_id("job-id").inner_text() == rid
        page.get_by_test_id("copy-job-id").click()
        assert clipboard(page) == rid
        video_url = str(page.get_by_test_id("video").get_attribute("src"))
        assert page.get_by_test_id("video-url").inner_text() == video_url
        page.get_by_test_id("copy-video-url").click()
        assert clipboard(page) == video_url
        assert rid not in page.get_by_test_id("status").inner_text()  # ids are shown only where they can be copied

        # 5. History: the full id and its copy button, the video URL's copy button.
        row = page.locator(f"[data-testid=history] li[data-id='{rid}']")
        row.wait_for()
        assert row.get_by_test_id("history-id").inner_text() == rid
        row.get_by_test_id("history-copy-id").click()
        assert clipboard(page) == rid
        row.get_by_test_id("history-copy-url").click()
        assert clipboard(page) == video_url

        # 6. Reuse these inputs on a fresh page: the form and the brushes come back; Generate sends the same
        # request (the masks uploaded again select the same pixels).
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        row.wait_for()
        row.get_by_test_id("history-reuse").click()
        wait_uploaded(page)
        page.wait_for_function(
            "document.querySelector('[data-testid=status]').textContent.includes('back in the form')"
        )
        assert page.get_by_test_id("prompt").input_value() == "reuse me"
        assert page.get_by_test_id("seed").input_value() == "42"
        assert page.get_by_test_id("duration-10").is_checked()
        assert chip_meta(page, "static") == "painted"
        assert chip_meta(page, "1") == "painted · 3 points"
        with page.expect_response(lambda r: r.url == server.url + SUBMIT_PATH) as again:
            page.get_by_test_id("submit").click()
        resent = json.loads(again.value.request.post_data)
        assert resent["image_url"] == sent["image_url"]  # the uploaded image is reused, not uploaded again
        assert resent["dynamic_masks"][0]["trajectories"] == sent["dynamic_masks"][0]["trajectories"]
        for key in ("prompt", "seed", "duration", "negative_prompt", "cfg_scale"):
            assert resent[key] == sent[key], key
        assert (fetch_mask(resent["static_mask_url"]) == fetch_mask(sent["static_mask_url"])).all()
        assert (
            fetch_mask(resent["dynamic_masks"][0]["mask_url"]) == fetch_mask(sent["dynamic_masks"][0]["mask_url"])
        ).all()

"""The playground's messages in Chromium: each belongs to its moment (issue 7, point 5); the page checks what
it knows in the server's words, Generate cannot start two jobs, and errors in history read as sentences
(point 7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playground_kit import (  # noqa: F401 - the browser and page fixtures
    SUBMIT_PATH,
    CanvasMap,
    browser_fixture,
    drag,
    open_playground,
    page_fixture,
    save_png,
    skip_without_chromium,
    textured,
    wait_uploaded,
)
from server import running_server

from kinema.errors import InputError
from kinema.media.images import check_input_image

pytestmark = [skip_without_chromium, pytest.mark.timeout(150)]


def server_words(w: int, h: int) -> str:
    """What the server says about a w×h input image (kinema.media.images.check_input_image)."""
    with pytest.raises(InputError) as exc:
        check_input_image(np.zeros((h, w, 3), np.uint8), ["body", "image_url"])
    return str(exc.value.errors[0]["msg"])


def status(page: Any) -> str:
    return str(page.get_by_test_id("status").inner_text())


def test_hints_disappear_when_fixed_and_image_change_asks(tmp_path: Path, page: Any) -> None:
    with running_server(tmp_path, engine="tests/engines/trivial.py:render") as server:
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready='1']")
        page.get_by_test_id("api-key").fill(server.key)
        page.get_by_test_id("api-key").press("Tab")
        # 1. Generate without an image: the hint shows; choosing an image removes it and the status line.
        page.get_by_test_id("submit").click()
        err = page.get_by_test_id("error-image_url")
        assert "Choose an image first" in err.inner_text()
        assert "Fix the highlighted fields" in status(page)
        page.get_by_test_id("image-input").set_input_files(str(textured(tmp_path)))
        wait_uploaded(page)
        assert err.is_hidden() and status(page) == ""

        # 2. A dynamic brush without a trajectory: the hint goes once the trajectory is drawn.
        cmap = CanvasMap(page, 512, 512)
        page.get_by_test_id("brush-dynamic").click()
        drag(page, cmap, [(300, 300), (380, 300)])
        page.get_by_test_id("submit").click()
        traj_err = page.get_by_test_id("error-trajectory")
        assert "draw its trajectory" in traj_err.inner_text()
        page.get_by_test_id("trajectory").click()
        page.mouse.click(*cmap.page_xy(320, 300))
        assert traj_err.is_visible()  # one point is not a trajectory yet: the hint stays true
        page.mouse.click(*cmap.page_xy(420, 200))
        assert traj_err.is_hidden() and status(page) == ""

        # 3. A server 422 on a field goes when that field changes.
        page.get_by_test_id("seed").fill("1.5")
        page.get_by_test_id("submit").click()
        seed_err = page.get_by_test_id("error-seed")
        seed_err.wait_for(state="visible")
        assert "422" in status(page)
        page.get_by_test_id("seed").fill("7")
        assert seed_err.is_hidden() and page.get_by_test_id("seed").get_attribute("aria-invalid") is None
        assert status(page) == ""

        # 4. Changing the image with painted brushes asks first; declining keeps image and brushes.
        other = save_png(
            np.asarray(Image.open(textured(tmp_path)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
            tmp_path / "other.png",
        )
        asked: list[str] = []
        page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
        page.get_by_test_id("image-input").set_input_files(str(other))
        page.wait_for_function("document.querySelector('[data-testid=image-input]').value === ''")
        assert asked and "clears the motion brush" in asked[0]
        assert page.get_by_test_id("image-info").inner_text().startswith("texture.png")
        assert page.locator("[data-testid=brush-chip-1] .chip-meta").inner_text() == "painted · 2 points"

        # 5. Accepting: the new image, and the reset is said and stays said after the upload finishes.
        page.once("dialog", lambda d: d.accept())
        page.get_by_test_id("image-input").set_input_files(str(other))
        note = page.get_by_test_id("image-note")
        note.wait_for(state="visible")
        assert "reset for the new image" in note.inner_text()
        wait_uploaded(page)
        page.wait_for_timeout(300)
        assert note.is_visible() and page.get_by_test_id("image-info").inner_text().startswith("other.png")
        assert page.locator(".chip.dynamic").count() == 0


def test_older_job_never_overwrites_a_newer_error(tmp_path: Path, page: Any) -> None:
    with running_server(tmp_path, engine="tests/engines/slow.py:render") as server:  # 150 frames x 0.05 s
        open_playground(page, server, textured(tmp_path))
        page.get_by_test_id("prompt").fill("first")
        page.get_by_test_id("submit").click()
        page.wait_for_function(
            "document.querySelector('[data-testid=job-status]').textContent === 'running'", timeout=30_000
        )
        # A newer submission is refused by the server while the first job still renders.
        page.get_by_test_id("seed").fill("2.5")
        page.get_by_test_id("submit").click()
        page.get_by_test_id("error-seed").wait_for(state="visible")
        refused = status(page)
        assert "422" in refused
        # The first job finishes: its panel says so, but the newer error stays in the status line and field.
        page.wait_for_function(
            "document.querySelector('[data-testid=job-status]').textContent === 'done'", timeout=30_000
        )
        page.wait_for_timeout(500)  # the result fetch and history refresh that follow completion
        assert status(page) == refused
        assert page.get_by_test_id("error-seed").is_visible()


def test_page_checks_in_the_servers_words_and_one_job_per_click(tmp_path: Path, page: Any) -> None:
    small = save_png(np.full((200, 240, 3), 90, np.uint8), tmp_path / "small.png")
    wide = save_png(np.full((320, 1000, 3), 90, np.uint8), tmp_path / "wide.png")
    with running_server(
        tmp_path, engine="tests/engines/trivial.py:render", env={"KINEMA_MAX_IMAGE_PIXELS": "200000"}
    ) as server:
        posts: list[Any] = []
        page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready='1']")
        page.get_by_test_id("api-key").fill(server.key)
        page.get_by_test_id("api-key").press("Tab")
        err = page.get_by_test_id("error-image_url")

        # 1. Too small and too wide: refused at once with the server's own sentence; nothing is uploaded.
        page.get_by_test_id("image-input").set_input_files(str(small))
        err.wait_for(state="visible")
        assert err.inner_text().strip() == server_words(240, 200)
        page.get_by_test_id("image-input").set_input_files(str(wide))
        page.wait_for_function("document.querySelector('[data-testid=error-image_url]').textContent.includes('aspect')")
        assert err.inner_text().strip() == server_words(1000, 320)  # the old sentence went with the old image
        page.get_by_test_id("prompt").fill("x")
        page.get_by_test_id("submit").click()
        assert err.inner_text().strip() == server_words(1000, 320) and "Fix the highlighted" in status(page)
        # A tail image is checked the same way.
        page.get_by_test_id("tail-input").set_input_files(str(wide))
        tail_err = page.get_by_test_id("error-tail_image_url")
        tail_err.wait_for(state="visible")
        assert tail_err.inner_text().strip() == "Tail image: " + server_words(1000, 320)
        page.get_by_test_id("tail-remove").click()
        assert tail_err.is_hidden()
        assert posts == []  # no upload, no submit

        # 2. A good image: the error goes. Two clicks in one go give one submission; the button is off meanwhile.
        page.get_by_test_id("image-input").set_input_files(str(textured(tmp_path, 500, 500)))
        wait_uploaded(page)
        assert err.is_hidden()
        disabled = page.evaluate("""() => {
            const b = document.querySelector('[data-testid=submit]');
            b.click();
            const off = b.disabled;
            b.click();
            return off;
        }""")
        assert disabled is True
        page.wait_for_function(
            "document.querySelector('[data-testid=job-status]').textContent === 'failed'", timeout=30_000
        )
        assert len([r for r in posts if r.url == server.url + SUBMIT_PATH]) == 1
        assert page.get_by_test_id("submit").is_enabled()

        # 3. That job failed in the worker (500x500 is over this server's pixel limit): the history reads it
        # as a sentence naming the field, not as JSON.
        row = page.locator("[data-testid=history] li").first
        row.wait_for()
        text = row.get_by_test_id("history-error").inner_text()
        assert text.startswith("Image: The image declares 500x500"), text
        assert "{" not in text and "[" not in text and '"loc"' not in text
        (listed,) = page.request.get(server.url + "/requests", headers=server.headers).json()["requests"]
        assert json.loads(listed["error"])[0]["loc"] == ["body", "image_url"]  # the server's raw form

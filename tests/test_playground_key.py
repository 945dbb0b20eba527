"""The playground's API key field in Chromium: "rejected" when the server refuses the key (never a green
state for a failing key), and a failed upload is retried once the key is fixed (issue 7, point 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playground_kit import (  # noqa: F401 - the browser and page fixtures
    SUBMIT_PATH,
    browser_fixture,
    page_fixture,
    skip_without_chromium,
    textured,
    wait_uploaded,
)
from server import running_server

pytestmark = [skip_without_chromium, pytest.mark.timeout(120)]

# Every state the key field shows, in order (a MutationObserver installed before the page's scripts run).
RECORD_KEY_STATES = """
window.__keyStates = [];
document.addEventListener("DOMContentLoaded", () => {
  const s = document.querySelector("[data-testid=key-state]");
  new MutationObserver(() => window.__keyStates.push([s.dataset.state || "", s.textContent]))
    .observe(s, { attributes: true, childList: true, characterData: true, subtree: true });
});
"""


def key_state(page: Any) -> tuple[str, str]:
    s = page.get_by_test_id("key-state")
    return str(s.get_attribute("data-state")), str(s.inner_text())


def test_wrong_key_is_rejected_and_the_upload_retried_once_fixed(tmp_path: Path, page: Any) -> None:
    image = textured(tmp_path)
    with running_server(tmp_path, engine="tests/engines/trivial.py:render") as server:
        uploads: list[tuple[str, int]] = []
        page.on(
            "response",
            lambda r: (
                uploads.append((r.request.headers.get("authorization", ""), r.status))
                if r.url.endswith("/files/upload")
                else None
            ),
        )
        page.add_init_script(RECORD_KEY_STATES)
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready='1']")

        # 1. A wrong key: the server is asked, and the field says "rejected".
        wrong = server.key[:-4] + ("0000" if not server.key.endswith("0000") else "1111")
        page.get_by_test_id("api-key").fill(wrong)
        page.get_by_test_id("api-key").press("Tab")
        page.wait_for_function("document.querySelector('[data-testid=key-state]').dataset.state === 'bad'")
        state, text = key_state(page)
        assert "rejected" in text, text
        assert page.get_by_test_id("key-hint").is_visible()  # asks for a key again

        # 2. An image chosen with the wrong key: the upload fails, and the page says why.
        page.get_by_test_id("image-input").set_input_files(str(image))
        err = page.get_by_test_id("error-image_url")
        err.wait_for(state="visible")
        assert "Upload failed" in err.inner_text() and "rejected the API key" in err.inner_text()
        assert page.get_by_test_id("image-info").inner_text().endswith("upload failed")
        assert "rejected" in key_state(page)[1]
        assert uploads == [(f"Key {wrong}", 401)]

        # 3. Generate with the wrong key: refused with the reason, nothing submitted.
        page.get_by_test_id("prompt").fill("x")
        page.get_by_test_id("submit").click()
        page.wait_for_function("document.querySelector('[data-testid=status]').textContent.includes('refused the key')")
        assert page.get_by_test_id("submit").is_enabled()
        assert uploads == [(f"Key {wrong}", 401)] * 2  # Generate tried the upload again, with the same key

        # 4. The key fixed: accepted by the server, and the image is uploaded again without being chosen again.
        page.get_by_test_id("api-key").fill(server.key)
        page.get_by_test_id("api-key").press("Enter")
        page.wait_for_function("document.querySelector('[data-testid=key-state]').dataset.state === 'ok'")
        assert "accepted" in key_state(page)[1]
        wait_uploaded(page)
        assert err.is_hidden()  # the upload error is over
        assert uploads == [(f"Key {wrong}", 401)] * 2 + [(f"Key {server.key}", 200)], uploads

        # 5. Generate now works.
        with page.expect_response(lambda r: r.url == server.url + SUBMIT_PATH) as submitted:
            page.get_by_test_id("submit").click()
        assert submitted.value.status == 200
        page.wait_for_function(
            "document.querySelector('[data-testid=job-status]').textContent === 'done'", timeout=30_000
        )

        # 6. The field never showed a good state while the wrong key was in it.
        states = page.evaluate("window.__keyStates")
        first_ok = next(i for i, (s, _) in enumerate(states) if s == "ok")
        assert all(s != "ok" for s, _ in states[:first_ok])
        assert any("rejected" in t for _, t in states[:first_ok])
        assert not [t for _, t in states if "saved" in t]

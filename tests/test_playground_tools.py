"""The motion-brush tools in Chromium: undo/redo and keyboard shortcuts (issue 7, point 4); "+ Dynamic brush"
only adds, selecting is its own control, Clear drops empty brushes and leaves trajectory mode (point 6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playground_kit import (  # noqa: F401 - the browser fixture
    CanvasMap,
    browser_fixture,
    chip_meta,
    drag,
    open_playground,
    page_fixture,
    skip_without_chromium,
    textured,
)
from server import Server, running_server

pytestmark = [skip_without_chromium, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("tools"), engine="tests/engines/trivial.py:render") as s:
        yield s


@pytest.fixture
def ready(page: Any, server: Server, tmp_path: Path) -> Any:
    open_playground(page, server, textured(tmp_path))
    page.locator("body").click(position={"x": 5, "y": 5})  # focus out of the key field: shortcuts act
    return page


def active(page: Any) -> str:
    return str(page.get_by_test_id("active-brush").get_attribute("data-active"))


def tool_active(page: Any, testid: str) -> bool:
    return "active" in str(page.get_by_test_id(testid).get_attribute("class"))


def test_undo_redo_and_shortcuts(ready: Any) -> None:
    page = ready
    cmap = CanvasMap(page, 512, 512)
    # 1. The shortcuts are shown next to the tools.
    shown = page.get_by_test_id("shortcuts").inner_text()
    for key in ["S", "N", "T", "Esc", "E", "[", "]", "Ctrl+Z", "Ctrl+Shift+Z", "Ctrl+Y"]:
        assert key in shown, key
    assert "Redo" in page.get_by_test_id("redo").get_attribute("title") and "Ctrl+Y" in page.get_by_test_id(
        "redo"
    ).get_attribute("title")
    assert page.get_by_test_id("trajectory").locator("kbd").inner_text() == "T"

    # 2. Paint, undo with Ctrl+Z, redo with Ctrl+Shift+Z, undo again, redo with Ctrl+Y.
    drag(page, cmap, [(100, 100), (200, 100)])
    assert chip_meta(page, "static") == "painted"
    assert page.get_by_test_id("redo").is_disabled()
    page.keyboard.press("Control+z")
    assert chip_meta(page, "static") == "not painted"
    assert page.get_by_test_id("redo").is_enabled()
    page.keyboard.press("Control+Shift+Z")
    assert chip_meta(page, "static") == "painted"
    page.keyboard.press("Control+z")
    assert chip_meta(page, "static") == "not painted"
    page.keyboard.press("Control+y")
    assert chip_meta(page, "static") == "painted"
    page.get_by_test_id("undo").click()
    page.get_by_test_id("redo").click()
    assert chip_meta(page, "static") == "painted"
    # A new edit after an undo: nothing left to redo.
    page.keyboard.press("Control+z")
    drag(page, cmap, [(100, 300), (200, 300)])
    assert page.get_by_test_id("redo").is_disabled()

    # 3. [ and ] change the brush size (shown next to the slider).
    size = int(page.get_by_test_id("brush-size").input_value())
    page.keyboard.press("]")
    bigger = int(page.get_by_test_id("brush-size").input_value())
    assert bigger > size and page.locator("#brush-size-out").inner_text() == f"{bigger} px"
    page.keyboard.press("[")
    page.keyboard.press("[")
    assert int(page.get_by_test_id("brush-size").input_value()) < size

    # 4. N adds a dynamic brush, T enters trajectory mode, Esc leaves it; S and 1 select brushes, E erases.
    page.keyboard.press("n")
    assert active(page) == "dynamic-1"
    drag(page, cmap, [(300, 300), (380, 300)])
    page.keyboard.press("t")
    assert tool_active(page, "trajectory")
    assert "Esc" in page.get_by_test_id("tool-hint").inner_text()
    page.keyboard.press("Escape")
    assert not tool_active(page, "trajectory") and tool_active(page, "brush-dynamic") is False
    assert active(page) == "dynamic-1"  # still the same brush, painting again
    assert "paint what should move" in page.get_by_test_id("tool-hint").inner_text()
    page.keyboard.press("s")
    assert active(page) == "static"
    page.keyboard.press("1")
    assert active(page) == "dynamic-1"
    page.keyboard.press("e")
    assert tool_active(page, "eraser")
    # Typing in a field is not a shortcut.
    page.get_by_test_id("prompt").fill("")
    page.get_by_test_id("prompt").type("sent")
    assert page.get_by_test_id("prompt").input_value() == "sent" and active(page) == "dynamic-1"
    assert page.locator(".chip.dynamic").count() == 1


def test_dynamic_brush_button_only_adds_and_clear_drops_empty_brushes(ready: Any) -> None:
    page = ready
    cmap = CanvasMap(page, 512, 512)
    add = page.get_by_test_id("brush-dynamic")
    # 1. Each press adds one brush and selects it; at six the button is off and says why.
    for n in range(1, 7):
        add.click()
        assert page.locator(".chip.dynamic").count() == n and active(page) == f"dynamic-{n}"
    assert add.is_disabled() and "6" in str(add.get_attribute("title"))
    assert "6/6" in add.inner_text()

    # 2. Selecting is a separate control: the brush list. Selecting does not add.
    page.get_by_test_id("brush-select-2").click()
    assert active(page) == "dynamic-2" and page.locator(".chip.dynamic").count() == 6
    assert page.get_by_test_id("brush-select-2").get_attribute("aria-pressed") == "true"
    drag(page, cmap, [(300, 300), (380, 300)])
    page.get_by_test_id("brush-select-static").click()
    assert active(page) == "static"

    # 3. Clear: paint, trajectories and the (now empty) dynamic brushes go; trajectory mode ends.
    page.get_by_test_id("brush-select-2").click()
    page.get_by_test_id("trajectory").click()
    assert tool_active(page, "trajectory")
    page.get_by_test_id("clear").click()
    assert page.locator(".chip.dynamic").count() == 0
    assert not tool_active(page, "trajectory") and active(page) == "static"
    assert chip_meta(page, "static") == "not painted"
    assert add.is_enabled() and "0/6" in add.inner_text()
    # Undo brings the six brushes back, with brush 2's paint.
    page.get_by_test_id("undo").click()
    assert page.locator(".chip.dynamic").count() == 6 and chip_meta(page, "2").startswith("painted")

    # 4. Brushes that were added but never painted are removed by Clear too.
    page.get_by_test_id("clear").click()
    add.click()
    add.click()
    assert page.get_by_test_id("clear").is_enabled()
    page.get_by_test_id("clear").click()
    assert page.locator(".chip.dynamic").count() == 0

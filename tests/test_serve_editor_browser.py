"""The editor's tools in real headless Chromium: select, rectangle, lasso, grow/shrink, progress and
cancel, the model list, history, keyboard help, the toolbar's width and the original's bytes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared_data import shared_file
from test_serve_browser import CHROMIUM, FLAGS, download, paint, server, settings  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow
STATUS = "document.querySelector('[data-testid=status]').textContent"


@pytest.fixture(scope="module")
def page(server):  # noqa: F811
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
        yield page
        browser.close()


def open_photo(page, url: str, path: Path) -> tuple[int, int]:
    page.goto(url)
    page.wait_for_function("document.querySelector('#model option') !== null")
    page.get_by_test_id("file-input").set_input_files(str(path))
    page.wait_for_function(f"{STATUS}.startsWith('opened')")
    with Image.open(path) as image:
        return image.size


def screen(page, size: tuple[int, int], x: float, y: float) -> tuple[float, float]:
    """Where image pixel (x, y) is on the page after "fit" (the photo centred at 95 % of the canvas)."""
    box = page.get_by_test_id("canvas").bounding_box()
    zoom = min(box["width"] / size[0], box["height"] / size[1]) * 0.95
    left = box["x"] + (box["width"] - size[0] * zoom) / 2
    top = box["y"] + (box["height"] - size[1] * zoom) / 2
    return left + x * zoom, top + y * zoom


def drag(page, size, points: list[tuple[float, float]]) -> None:
    spots = [screen(page, size, x, y) for x, y in points]
    page.mouse.move(*spots[0])
    page.mouse.down()
    for spot in spots[1:]:
        page.mouse.move(*spot, steps=6)
    page.mouse.up()


def mask_of(page) -> np.ndarray:
    return download(page, "download-mask")[..., 0] > 127


def test_select_by_click_marks_the_object(server, page, tmp_path):  # noqa: F811
    url, _ = server
    source = shared_file("photos_more", "gcompris-qt-data__erase_kingfisher.jpg")
    size = open_photo(page, url, source)
    page.keyboard.press("s")
    x, y = screen(page, size, 440, 280)  # the bird's breast
    page.mouse.click(x, y)
    page.wait_for_function(f"{STATUS}.startsWith('selected')", timeout=30_000)
    mask = mask_of(page)
    rows, cols = np.nonzero(mask)
    # the bird lies within x 280..660, y 40..520 of the 1024x576 photo (drawn by hand)
    assert (
        cols.min() >= 280 - 10 and cols.max() <= 660 + 10 and rows.min() >= 40 - 10 and rows.max() <= 520 + 10
    )
    assert 0.08 < mask.mean() < 0.2 and mask[280, 440]
    page.keyboard.press("-")  # shrink: a mask inside the first; grow twice: one around the shrunk one
    shrunk = mask_of(page)
    page.keyboard.press("+")
    page.keyboard.press("+")
    grown = mask_of(page)
    assert shrunk.sum() < mask.sum() < grown.sum() and (shrunk <= mask).all() and (shrunk <= grown).all()


def test_rectangle_and_lasso_draw_their_shapes(server, page, tmp_path):  # noqa: F811
    url, _ = server
    path = tmp_path / "flat.png"
    Image.fromarray(np.full((300, 400, 3), 128, np.uint8)).save(path)
    size = open_photo(page, url, path)
    page.get_by_test_id("tool-rect").click()
    drag(page, size, [(40, 50), (120, 100), (200, 150)])
    mask = mask_of(page)
    expected = np.zeros((300, 400), bool)
    expected[50:150, 40:200] = True
    assert (mask & expected).sum() / (mask | expected).sum() > 0.95
    page.get_by_test_id("clear").click()
    page.keyboard.press("l")
    assert "active" in page.get_by_test_id("tool-lasso").get_attribute("class")
    triangle = [(250, 50), (380, 250), (250, 250), (250, 52)]
    drag(page, size, triangle)
    mask = mask_of(page)
    rows, cols = np.mgrid[:300, :400]
    inside = (cols >= 250) & (rows <= 250) & ((rows - 50) >= (cols - 250) * 200 / 130)
    assert (mask & inside).sum() / (mask | inside).sum() > 0.9
    page.keyboard.press("Control+z")
    assert "undo" in page.get_by_test_id("status").text_content()  # undo says what it did


def test_progress_and_cancel_free_the_queue(server, page, tmp_path):  # noqa: F811
    url, _ = server
    rng = np.random.default_rng(0)
    path = tmp_path / "big.png"
    Image.fromarray(rng.integers(0, 256, (1200, 1600, 3), dtype=np.uint8)).save(path)
    size = open_photo(page, url, path)
    page.get_by_test_id("model").select_option("patchmatch")  # a slow fill: many windows
    page.keyboard.press("r")
    for index in range(24):
        x, y = 60 + (index % 6) * 250, 60 + (index // 6) * 280
        drag(page, size, [(x, y), (x + 120, y + 140)])
    page.get_by_test_id("inpaint").click()
    page.wait_for_function(f"{STATUS}.includes('filling')", timeout=30_000)
    assert page.get_by_test_id("progress").is_visible()
    page.keyboard.press("Escape")
    page.wait_for_function(f"{STATUS} === 'cancelled'", timeout=10_000)
    assert page.get_by_test_id("progress").is_hidden()
    page.get_by_test_id("model").select_option("telea")  # the server takes the next job at once
    with page.expect_response("**/api/v1/inpaint") as answer:
        page.get_by_test_id("inpaint").click()
    assert answer.value.status == 200 and answer.value.headers["x-lbam-model"] == "telea"
    page.wait_for_function(f"{STATUS}.startsWith('done')", timeout=60_000)
    assert "telea" in page.get_by_test_id("status").text_content()


def test_history_original_bytes_download_format_help_and_one_toolbar_row(server, page, tmp_path):  # noqa: F811
    url, _ = server
    path = tmp_path / "photo.jpg"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(path, quality=90)
    held = []  # the format list arrives only after the photo is open: the download must still be a JPEG
    page.route("**/api/v1/options", lambda route: held.append(route))
    size = open_photo(page, url, path)
    held[0].continue_()
    page.unroute("**/api/v1/options")
    page.wait_for_function("document.querySelector('#strategy option') !== null")
    assert page.locator("nav.toolbar").bounding_box()["height"] < 48  # one row at 1280 px
    page.keyboard.press("r")
    drag(page, size, [(40, 40), (100, 100)])
    page.evaluate(  # note the bytes of the image the page sends
        """() => { const send = window.fetch; window.sentImages = [];
        window.fetch = async (url, options) => {
          const image = options?.body instanceof FormData ? options.body.get("image") : null;
          if (image) window.sentImages.push(Array.from(new Uint8Array(await image.arrayBuffer())));
          return send(url, options); }; }"""
    )
    page.keyboard.press("Enter")
    page.wait_for_function("window.sentImages.length === 1")
    assert bytes(page.evaluate("window.sentImages[0]")) == path.read_bytes()  # the original's own bytes
    page.wait_for_function(f"{STATUS}.startsWith('done')", timeout=60_000)
    drag(page, size, [(200, 120), (260, 200)])
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('#history img').length === 3", timeout=60_000)
    assert bytes(page.evaluate("window.sentImages[1]")) != path.read_bytes()  # then the server's PNG
    with page.expect_download() as info:
        page.get_by_test_id("download").click()
    assert info.value.suggested_filename == "photo_inpainted.jpg"
    data = Path(info.value.path()).read_bytes()
    assert Image.open(io.BytesIO(data)).format == "JPEG"
    page.get_by_test_id("history-0").click()  # back to the photo as opened: its own bytes again
    with page.expect_download() as info:
        page.get_by_test_id("download").click()
    assert Path(info.value.path()).read_bytes() == path.read_bytes()
    page.keyboard.press("?")
    assert page.get_by_test_id("help").is_visible()
    page.get_by_test_id("help-close").click()
    assert page.get_by_test_id("help").is_hidden()

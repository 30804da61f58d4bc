"""The editor page in real headless Chromium (Debian's ``chromium``, driven by Playwright).

``lbam serve`` runs in a child process on a free localhost port with a tiny model; the test opens
a real photo, paints a stroke with the mouse, inpaints, downloads and checks the file, then undo
and the eraser. Without Chromium the tests skip locally; in CI (``CI=true``) they fail.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lbam.imaging.io import load_rgb
from lbam.model.lbam import LBAMGenerator
from lbam.model.loading import save_model
from lbam.server import CHROMIUM_FLAGS
from shared_data import shared_file

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = list(CHROMIUM_FLAGS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).is_file():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright", reason="playwright is in the dev extra")
    folder = tmp_path_factory.mktemp("serve")
    torch.manual_seed(0)
    save_model(LBAMGenerator(width=1 / 16), folder / "tiny.safetensors")
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "lbam",
        "serve",
        "--model",
        str(folder / "tiny.safetensors"),
        "--port",
        str(port),
        "--device",
        "cpu",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "api/v1/health", timeout=1)
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"lbam serve exited: {process.stdout.read()}")
            time.sleep(0.1)
    yield url, folder
    process.send_signal(signal.SIGINT)  # Ctrl-C
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and "Traceback" not in output, output
    assert f"lbam serve: {url}" in output


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 760}, accept_downloads=True)
        yield page
        browser.close()


def real_photo(folder: Path) -> tuple[Path, np.ndarray]:
    source = shared_file("photos", "val", "scikit-learn__china.jpg")
    pixels = np.asarray(load_rgb(source).resize((480, 320)))
    path = folder / "china.png"
    Image.fromarray(pixels).save(path)
    return path, pixels


def paint(page, points: list[tuple[float, float]]) -> None:
    box = page.get_by_test_id("canvas").bounding_box()
    xs = [box["x"] + box["width"] * px for px, _ in points]
    ys = [box["y"] + box["height"] * py for _, py in points]
    page.mouse.move(xs[0], ys[0])
    page.mouse.down()
    for x, y in zip(xs[1:], ys[1:], strict=True):
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def settings(page, **values: str) -> None:
    """Open the settings panel and set its fields (inputs filled, lists chosen)."""
    panel = page.get_by_test_id("settings")
    if panel.get_attribute("open") is None:
        panel.locator("summary").click()
    for name, value in values.items():
        field = page.get_by_test_id(name)
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)


def download(page, test_id: str) -> np.ndarray:
    with page.expect_download() as info:
        page.get_by_test_id(test_id).click()
    return np.asarray(Image.open(io.BytesIO(Path(info.value.path()).read_bytes())))


def test_open_paint_inpaint_download_undo_and_erase(server, page):
    url, folder = server
    path, original = real_photo(folder)
    page.goto(url)
    page.get_by_test_id("file-input").set_input_files(str(path))
    page.wait_for_function("document.querySelector('[data-testid=status]').textContent.startsWith('opened')")
    settings(page, dilate="0")  # the hole exactly as painted: known pixels are checked below
    page.get_by_test_id("brush-size").fill("30")
    paint(page, [(0.35, 0.45), (0.5, 0.5), (0.62, 0.55)])
    mask = download(page, "download-mask")[..., 0] > 127  # white = hole, the lbam convention
    assert mask.shape == original.shape[:2] and 0.005 < mask.mean() < 0.2

    page.get_by_test_id("inpaint").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=status]').textContent.startsWith('done')", timeout=60000
    )
    with page.expect_download() as info:
        page.get_by_test_id("download").click()
    assert info.value.suggested_filename == "china_inpainted.png"
    result = np.asarray(Image.open(info.value.path()).convert("RGB"))
    assert result.shape == original.shape
    np.testing.assert_array_equal(result[~mask], original[~mask])  # PNG: known pixels bit-exact
    assert (result[mask] != original[mask]).any(axis=1).mean() > 0.8

    page.get_by_test_id("undo").click()  # back to the photo before, with its mask
    np.testing.assert_array_equal(download(page, "download")[..., :3], original)
    np.testing.assert_array_equal(download(page, "download-mask")[..., 0] > 127, mask)

    paint(page, [(0.2, 0.2), (0.3, 0.25)])
    assert (download(page, "download-mask")[..., 0] > 127).sum() > mask.sum()
    page.get_by_test_id("tool-eraser").click()
    page.get_by_test_id("brush-size").fill("80")
    paint(page, [(0.2, 0.2), (0.3, 0.25)])  # the eraser takes the new stroke away again
    np.testing.assert_array_equal(download(page, "download-mask")[..., 0] > 127, mask)


def test_errors_from_the_api_are_shown(server, page):
    url, folder = server
    page.goto(url)
    page.get_by_test_id("inpaint").click()  # no photo: nothing happens, no error
    path, _ = real_photo(folder)
    page.get_by_test_id("file-input").set_input_files(str(path))
    page.wait_for_function("document.querySelector('[data-testid=status]').textContent.startsWith('opened')")
    page.get_by_test_id("inpaint").click()  # an empty mask
    assert "paint over" in page.get_by_test_id("status").text_content()
    settings(page, dilate="-5")
    paint(page, [(0.4, 0.4), (0.5, 0.5)])
    page.get_by_test_id("inpaint").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=status]').textContent.startsWith('inpainting failed')"
    )
    assert (
        "dilate: Input should be greater than or equal to 0" in page.get_by_test_id("status").text_content()
    )
    settings(page, dilate="0", blend="paste")  # the editor sends the settings it shows
    with page.expect_response("**/api/v1/inpaint") as answer:
        page.get_by_test_id("inpaint").click()
    assert answer.value.status == 200 and answer.value.headers["x-lbam-blend"] == "paste"
    page.wait_for_function("document.querySelector('[data-testid=status]').textContent.startsWith('done')")


def test_api_docs_render_offline_and_the_page_has_a_favicon(server, page):
    url, _ = server
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(url + "docs")
    page.wait_for_selector(".swagger-ui .information-container", timeout=20_000)
    assert "POST" in page.content() and "/api/v1/inpaint" in page.content()
    assert requested and all(r.startswith(url) for r in requested), [
        r for r in requested if not r.startswith(url)
    ]
    assert urllib.request.urlopen(url + "favicon.ico", timeout=5).status == 200

    requested.clear()
    blocked = []  # ReDoc's footer asks a CDN for its logo: the page's policy must stop it unsent
    page.on(
        "requestfailed", lambda request: blocked.append(request.url) if request.failure == "csp" else None
    )
    page.goto(url + "redoc")
    page.get_by_text("/api/v1/select").first.wait_for(timeout=20_000)
    local = (url, "blob:" + url)  # ReDoc runs its search in a worker made from a blob
    assert requested and all(r.startswith(local) or r in blocked for r in requested), [
        r for r in requested if not r.startswith(local)
    ]

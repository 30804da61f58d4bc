"""The HTTP API of ``lbam serve``: every endpoint, every error status, IOPaint's JSON request."""

from __future__ import annotations

import asyncio
import base64
import io
import threading

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from lbam.imaging.io import load_rgb
from lbam.imaging.masks import dilate_hole
from lbam.model.card import Generator
from lbam.model.lbam import LBAMGenerator
from lbam.options import DEFAULT_DILATE
from lbam.server.app import ServerSettings, create_app
from shared_data import SHARED_DATA

LOCAL = "http://127.0.0.1:8080"  # the Host a browser on this machine sends
PHOTO = SHARED_DATA / "photos" / "val" / "scikit-learn__flower.jpg"


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def photo(height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def hole(height: int = 96, width: int = 128) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[20:50, 30:80] = 255
    return mask


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LBAMGenerator(width=1 / 32).eval()


@pytest.fixture()
def client(model, tmp_path):
    settings = ServerSettings(
        "tiny", max_upload_mb=1, max_pixels=200_000, output_dir=tmp_path / "kept", queue_size=1
    )
    (tmp_path / "kept").mkdir()
    with TestClient(create_app(model, "cpu", settings), base_url=LOCAL) as test_client:
        yield test_client


def post(client, image: bytes, mask: bytes, **fields):
    """POST /api/v1/inpaint; the hole as drawn unless ``dilate`` is given (tests check exact pixels)."""
    fields.setdefault("dilate", 0)
    files = {"image": ("p.png", image, "image/png"), "mask": ("m.png", mask, "image/png")}
    return client.post("/api/v1/inpaint", files=files, data={k: str(v) for k, v in fields.items()})


def test_health_and_model(client):
    assert client.get("/api/v1/health").json() == {"status": "ok"}
    facts = client.get("/api/v1/model").json()
    assert facts["name"] == "tiny" and facts["architecture"] == "lbam"
    assert facts["settings"]["width"] == 1 / 32 and facts["settings"]["attention"] == "bidirectional"
    assert facts["parameters"] > 0 and facts["device"] == "cpu" and facts["train_size"] == 256
    assert facts["size_multiple"] == 128 and facts["precision"] == "fp32" and facts["compiled"] is False
    assert facts["backend"] == "eager"
    assert "/" not in facts["name"] and "file" not in facts  # the page never learns where the file is


def test_inpaint_keeps_known_pixels_and_size_and_reports_headers(client, tmp_path):
    image, mask = photo(), hole()
    response = post(client, png(image), png(mask), strategy="full", dilate=0)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    result = np.asarray(Image.open(io.BytesIO(response.content)))
    assert result.shape == image.shape
    known = mask == 0
    np.testing.assert_array_equal(result[known], image[known])
    assert (result[~known] != image[~known]).any(axis=1).mean() > 0.9
    assert response.headers["X-Lbam-Strategy"] == "full"
    assert float(response.headers["X-Lbam-Hole-Fraction"]) == pytest.approx((mask > 0).mean(), abs=1e-6)
    assert float(response.headers["X-Lbam-Seconds"]) > 0
    assert len(list((tmp_path / "kept").iterdir())) == 1  # --output-dir keeps it, under a unique name


def test_format_and_dilate_options(client):
    response = post(client, png(photo()), png(hole()), format="jpeg", quality=80, dilate=3)
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert float(response.headers["X-Lbam-Hole-Fraction"]) > (hole() > 0).mean()


def test_real_photo_contract(model, tmp_path):
    if not PHOTO.is_file():
        pytest.skip("shared photos are not beside the repo")
    image = np.asarray(load_rgb(PHOTO))
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[100:180, 200:330] = 255
    settings = ServerSettings("tiny")
    with TestClient(create_app(model, "cpu", settings), base_url=LOCAL) as client:
        response = post(client, png(image), png(mask))
    result = np.asarray(Image.open(io.BytesIO(response.content)))
    assert response.status_code == 200 and result.shape == image.shape
    np.testing.assert_array_equal(result[mask == 0], image[mask == 0])


def test_iopaint_json_request(client):
    image, mask = photo(), hole()
    body = {
        "image": "data:image/png;base64," + base64.b64encode(png(image)).decode(),
        "mask": base64.b64encode(png(mask)).decode(),
        "hd_strategy": "Crop",
        "hd_strategy_crop_margin": 32,
        "hd_strategy_crop_trigger_size": 800,  # IOPaint fields lbam has no use for are ignored
        "sd_steps": 50,
    }
    response = client.post("/api/v1/inpaint", json=body)
    assert response.status_code == 200 and response.headers["X-Lbam-Strategy"] == "crop"
    result = np.asarray(Image.open(io.BytesIO(response.content)))
    grown = dilate_hole(mask > 0, DEFAULT_DILATE)  # the default growth of the hole applies here too
    np.testing.assert_array_equal(result[~grown], image[~grown])
    assert (result[grown & (mask == 0)] != image[grown & (mask == 0)]).any()


@pytest.mark.parametrize(
    ("make", "status", "message"),
    [
        (lambda c: post(c, b"not an image", png(hole())), 415, "not an image"),
        (lambda c: post(c, png(photo())[:200], png(hole())), 400, "cannot decode"),
        (lambda c: post(c, png(photo()), png(hole(50, 50))), 400, "is 50x50 but the image is 128x96"),
        (lambda c: post(c, png(photo()), png(np.full((96, 128), 255, np.uint8))), 400, "whole image as hole"),
        (lambda c: post(c, png(photo(500, 500)), png(hole(500, 500))), 413, "above the limit"),
        (lambda c: post(c, png(photo()), png(hole()), strategy="magic"), 422, "strategy: Input should be"),
        (lambda c: post(c, png(photo()), png(hole()), blend="poisson"), 422, "blend: Input should be"),
        (
            lambda c: post(c, png(photo()), png(hole()), dilate="lots"),
            422,
            "dilate: Input should be a valid integer",
        ),
        (lambda c: post(c, png(photo()), png(hole()), colour="red"), 422, "unknown option 'colour'"),
        (lambda c: post(c, png(photo()), png(hole()), format="gif"), 422, "format: Input should be"),
        (
            lambda c: c.post("/api/v1/inpaint", files={"image": ("p.png", png(photo()), "image/png")}),
            400,
            "'mask'",
        ),
        (
            lambda c: c.post("/api/v1/inpaint", content=b"x", headers={"content-type": "text/plain"}),
            415,
            "multipart",
        ),
        (lambda c: c.post("/api/v1/inpaint", json={"image": "!!", "mask": "x"}), 400, "not valid base64"),
        (lambda c: c.post("/api/v1/inpaint", json=[1]), 400, "must be an object"),
        (
            lambda c: c.post(
                "/api/v1/inpaint", content=b"x" * (2 << 20), headers={"content-type": "application/json"}
            ),
            413,
            "over the limit",
        ),
        (lambda c: c.get("/api/v1/nothing"), 404, "Not Found"),
    ],
)
def test_errors_are_json_with_the_right_status(client, make, status, message):
    response = make(client)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert list(response.json()) == ["error"] and message in response.json()["error"]
    assert "\n" not in response.json()["error"]


class Gated(Generator):
    """``model`` behind a gate: each call is recorded and waits until ``gate`` is set (at most 20 s)."""

    size_multiple = 128

    def __init__(self, model, gate: threading.Event) -> None:
        super().__init__()
        self.model, self.gate, self.config, self.calls = model, gate, model.config, []

    def forward(self, image, known_mask):
        self.calls.append(image.shape)
        self.gate.wait(20)
        return self.model(image, known_mask)


def test_a_full_queue_answers_503_with_retry_after(model):
    gate = threading.Event()
    app = create_app(Gated(model, gate), "cpu", ServerSettings("slow", queue_size=0))
    worker = app.state.worker
    with TestClient(app, base_url=LOCAL) as client:
        loop = asyncio.new_event_loop()
        running = loop.run_in_executor(None, lambda: post(client, png(photo()), png(hole()), refine="none"))
        for _ in range(200):  # wait until the first request holds the only slot
            if worker._slots._value == 0:
                break
            threading.Event().wait(0.01)
        busy = post(client, png(photo()), png(hole()))
        gate.set()
        first = loop.run_until_complete(running)
        loop.close()
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "2" and "busy" in busy.json()["error"]
    assert first.status_code == 200


def test_the_blend_option_reaches_the_pipeline(client):
    image, mask = photo(), hole()
    known = mask == 0
    results = {}
    for blend in ("harmonic", "paste"):
        response = post(client, png(image), png(mask), strategy="full", blend=blend)
        assert response.status_code == 200 and response.headers["X-Lbam-Blend"] == blend
        results[blend] = np.asarray(Image.open(io.BytesIO(response.content)))
        np.testing.assert_array_equal(results[blend][known], image[known])
    assert (results["harmonic"][~known] != results["paste"][~known]).any()


def test_the_refine_header_says_which_texture_stage_ran(client):
    from lbam.imaging import exemplar

    image, mask = png(photo()), png(hole())
    default = post(client, image, mask)
    assert default.status_code == 200
    assert default.headers["X-Lbam-Refine"] == ("texture" if exemplar.available() else "none")
    assert post(client, image, mask, refine="none").headers["X-Lbam-Refine"] == "none"
    telea = post(client, image, mask, model="telea")  # a classical fill is its own fill
    assert telea.status_code == 200 and telea.headers["X-Lbam-Refine"] == "none"


def test_openapi_documents_the_options(client):
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/api/v1/inpaint"]["post"]["requestBody"]["content"]
    fields = body["multipart/form-data"]["schema"]["properties"]
    assert {"image", "mask", "dilate", "strategy", "context", "blend", "format"} <= set(fields)
    assert "hd_strategy" in body["application/json"]["schema"]["properties"]
    assert client.get("/").status_code == 200 and "data-testid" in client.get("/").text
    assert "Access-Control-Allow-Origin" not in client.get("/api/v1/health").headers


def test_model_facts_say_how_the_model_runs(model):
    from lbam.inference.optimize import bf16_supported, optimize
    from lbam.server.inpainting import model_facts

    facts = model_facts(optimize(model, "bf16", compile=False), "tiny", "cpu")
    assert facts["precision"] == ("bf16" if bf16_supported(torch.device("cpu")) else "fp32")
    assert facts["compiled"] is False and facts["settings"]["width"] == model.config.width

"""The editor's endpoints: smart select, job progress and cancel, the model list and switch."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lbam.server.app import ServerSettings, create_app
from lbam.server.models import ModelShelf
from test_serve_api import LOCAL, Gated, hole, model, photo, png, post  # noqa: F401 (fixture)


def disc_photo(height: int = 240, width: int = 320) -> tuple[np.ndarray, np.ndarray]:
    """A red disc on a noisy green field, and the disc's map."""
    rng = np.random.default_rng(1)
    image = np.zeros((height, width, 3), np.uint8)
    image[...] = (40, 150, 60)
    image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
    rows, cols = np.mgrid[:height, :width]
    disc = (rows - 110) ** 2 + (cols - 170) ** 2 <= 50**2
    image[disc] = (210, 40, 40)
    return image, disc


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture()
def client(model):  # noqa: F811
    with TestClient(
        create_app(model, "cpu", ServerSettings("tiny", max_pixels=200_000)), base_url=LOCAL
    ) as c:
        yield c


def select(client, image: bytes, **fields):
    data = {key: json.dumps(value) for key, value in fields.items()}
    return client.post("/api/v1/select", files={"image": ("p.png", image, "image/png")}, data=data)


def test_select_by_click_by_box_and_as_json(client):
    image, disc = disc_photo()
    by_click = select(client, png(image), points=[[170, 110, 1]])
    by_box = select(client, png(image), box=[110, 50, 230, 170])
    encoded = base64.b64encode(png(image)).decode()
    by_json = client.post(
        "/api/v1/select", json={"image": encoded, "box": [110, 50, 230, 170], "points": None}
    )
    for response in (by_click, by_box, by_json):
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        selected = np.asarray(Image.open(io.BytesIO(response.content))) > 127
        assert selected.shape == disc.shape and iou(selected, disc) > 0.95


def test_select_refuses_bad_hints_with_json_errors(client):
    image, _ = disc_photo()
    cases = [
        ({}, 400, "box or at least one point"),
        ({"points": [[170, 110, 0]]}, 400, "box or at least one point"),
        ({"points": [[900, 110, 1]]}, 400, "outside"),
        ({"points": [[1, 2, 7]]}, 422, "points"),
        ({"box": [230, 50, 110, 170]}, 400, "x0 < x1"),
        ({"box": [1, 2, 3]}, 422, "box"),
    ]
    for fields, status, words in cases:
        response = select(client, png(image), **fields)
        assert response.status_code == status and words in response.json()["error"], (fields, response.text)
    response = client.post("/api/v1/select", files={"image": ("p.png", png(image))}, data={"points": "[[1,"})
    assert response.status_code == 422 and "not valid JSON" in response.json()["error"]
    response = select(client, b"not an image", points=[[1, 1, 1]])
    assert response.status_code == 415
    foreign = client.post(
        "/api/v1/select", files={"image": ("p.png", png(image))}, headers={"Origin": "http://evil.example"}
    )
    assert foreign.status_code == 403


def test_a_job_reports_progress_and_a_cancel_frees_its_slot_at_once(model):  # noqa: F811
    gate = threading.Event()
    gated = Gated(model, gate)
    app = create_app(gated, "cpu", ServerSettings("slow", queue_size=0))
    mask = np.zeros((96, 400), np.uint8)
    mask[20:40, 20:40] = mask[20:40, 300:340] = 255  # two regions: two windows
    with TestClient(app, base_url=LOCAL) as client:
        loop = asyncio.new_event_loop()
        headers = {"X-Lbam-Job": "job-0001"}
        running = loop.run_in_executor(
            None,
            lambda: client.post(
                "/api/v1/inpaint",
                files={"image": ("p.png", png(photo(96, 400))), "mask": ("m.png", png(mask))},
                data={"strategy": "crop", "refine": "none"},  # the gated network fills
                headers=headers,
            ),
        )
        state = {}
        for _ in range(500):
            state = client.get("/api/v1/jobs/job-0001").json()
            if state.get("stage") == "filling":
                break
            threading.Event().wait(0.01)
        assert state["stage"] == "filling" and state["total"] == 2 and state["seconds"] >= 0
        cancelled = client.delete("/api/v1/jobs/job-0001")
        answer = loop.run_until_complete(running)
        gate.set()  # the window in progress ends; the job stops before the next one
        after = post(
            client, png(photo()), png(hole()), refine="none"
        )  # the only slot was freed by the cancel
        loop.close()
    assert cancelled.json()["cancelled"] is True
    assert answer.status_code == 499 and "cancelled" in answer.json()["error"]
    assert after.status_code == 200
    assert len(gated.calls) == 2  # one window of the cancelled job, one of the next request
    assert client.get("/api/v1/jobs/job-0001").status_code == 404


def test_job_ids_are_checked(client):
    response = post(client, png(photo()), png(hole()))
    assert response.status_code == 200
    bad = client.post(
        "/api/v1/inpaint",
        files={"image": ("p.png", png(photo())), "mask": ("m.png", png(hole()))},
        headers={"X-Lbam-Job": "no spaces!"},
    )
    assert bad.status_code == 400 and "X-Lbam-Job" in bad.json()["error"]
    assert client.delete("/api/v1/jobs/nosuchjob1").status_code == 404


def test_models_are_listed_and_switched_per_request(model):  # noqa: F811
    loaded = []

    def loader(name):
        loaded.append(name)
        return model

    shelf = ModelShelf("/somewhere/tiny.safetensors", model, ("tiny.safetensors", "other"), loader)
    app = create_app(model, "cpu", ServerSettings("tiny"), shelf)
    with TestClient(app, base_url=LOCAL) as client:
        listing = client.get("/api/v1/models").json()
        names = [entry["name"] for entry in listing["models"]]
        assert names == ["tiny.safetensors", "other", "telea", "ns", "patchmatch"]
        assert listing["default"] == "tiny.safetensors"
        answers = {
            name: post(client, png(photo()), png(hole()), model=name) for name in ("telea", "other", "other")
        }
        default = post(client, png(photo()), png(hole()))
        unknown = post(client, png(photo()), png(hole()), model="nope")
    for name, response in answers.items():
        assert response.status_code == 200 and response.headers["X-Lbam-Model"] == name
        result = np.asarray(Image.open(io.BytesIO(response.content)))
        known = hole() == 0
        assert np.array_equal(result[known], photo()[known])
    assert default.headers["X-Lbam-Model"] == "tiny.safetensors"
    assert loaded == ["other"]  # loaded once, kept for the next request
    assert unknown.status_code == 422 and "telea" in unknown.json()["error"]

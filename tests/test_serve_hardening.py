"""lbam serve under hostile or careless clients: bounded uploads, one schema, same-site only."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import threading
from collections.abc import Iterator

import pytest
import starlette.formparsers
import torch
from fastapi.testclient import TestClient

from lbam.model.lbam import LBAMGenerator
from lbam.server import inpainting
from lbam.server.app import ServerSettings, create_app
from test_serve_api import LOCAL, Gated, hole, photo, png, post


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LBAMGenerator(width=1 / 32).eval()


def _client(model, **settings) -> TestClient:
    base = {"max_upload_mb": 1, "max_pixels": 200_000, "queue_size": 1}
    return TestClient(
        create_app(model, "cpu", ServerSettings("tiny", **{**base, **settings})), base_url=LOCAL
    )


@contextlib.contextmanager
def live_server(app, **config) -> Iterator[int]:
    """``app`` served by uvicorn on a free loopback port in a thread; yields the port."""
    import time

    from lbam.server import listen

    sock = listen.bind("127.0.0.1", 0)
    server = listen.uvicorn.Server(listen.uvicorn.Config(app, log_level="error", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


def _multipart(image: bytes, mask: bytes, boundary: str = "b0undary", **fields: str) -> bytes:
    parts = []
    for name, data in (("image", image), ("mask", mask)):
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.png"\r\n'
        parts.append(head.encode() + b"Content-Type: image/png\r\n\r\n" + data + b"\r\n")
    for name, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(head.encode() + value.encode() + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def test_a_chunked_upload_is_counted_as_it_arrives_and_never_spooled_to_disk(model, monkeypatch):
    rolled = []

    class Spool(starlette.formparsers.SpooledTemporaryFile):
        def rollover(self) -> None:
            rolled.append(True)
            super().rollover()

    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", Spool)
    sent = []

    def chunks(body: bytes):  # a generator body: httpx sends it chunked, without Content-Length
        for start in range(0, len(body), 64 * 1024):
            sent.append(start)
            yield body[start : start + 64 * 1024]

    big = _multipart(b"x" * (3 << 20), png(hole()))
    headers = {"content-type": "multipart/form-data; boundary=b0undary"}
    with _client(model) as client:
        response = client.post("/api/v1/inpaint", content=chunks(big), headers=headers)
        assert response.status_code == 413 and "over the limit of 1 MB" in response.json()["error"]
        small = _multipart(png(photo()), png(hole()))
        ok = client.post("/api/v1/inpaint", content=chunks(small), headers=headers)
        assert ok.status_code == 200, ok.text
    assert not rolled  # parts of up to the upload limit stay in memory


def test_a_full_queue_answers_503_without_reading_the_upload(model):
    gate = threading.Event()
    read = []

    def body():
        read.append(True)
        yield _multipart(png(photo()), png(hole()))

    app = create_app(Gated(model, gate), "cpu", ServerSettings("slow", queue_size=0))
    with TestClient(app, base_url=LOCAL) as client:
        loop = asyncio.new_event_loop()
        running = loop.run_in_executor(None, lambda: post(client, png(photo()), png(hole()), refine="none"))
        for _ in range(200):  # until the first request holds the only slot
            if app.state.worker._slots._value == 0:
                break
            threading.Event().wait(0.01)
        busy = client.post(
            "/api/v1/inpaint",
            content=body(),
            headers={"content-type": "multipart/form-data; boundary=b0undary"},
        )
        gate.set()
        assert loop.run_until_complete(running).status_code == 200
        loop.close()
    assert busy.status_code == 503 and not read


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"format": 5}, "format"),
        ({"format": ["png"]}, "format"),
        ({"hd_strategy": ["Crop"]}, "hd_strategy"),
        ({"quality": 1000}, "quality"),
        ({"quality": -5}, "quality"),
        ({"hd_strategy_resize_limit": "big"}, "hd_strategy_resize_limit"),
    ],
)
def test_wrong_json_types_are_422_naming_the_field(model, payload, field):
    import base64

    body = {"image": base64.b64encode(png(photo())).decode(), "mask": base64.b64encode(png(hole())).decode()}
    with _client(model) as client:
        response = client.post("/api/v1/inpaint", json={**body, **payload})
    assert response.status_code == 422 and response.json()["error"].startswith(f"{field}:")


def test_deeply_nested_json_is_a_json_error(model):
    nested = "[" * 100_000 + "]" * 100_000
    shallow_deep = json.dumps({"image": "eA==", "mask": "eA==", "extra": json.loads("[" * 50 + "]" * 50)})
    with _client(model, max_upload_mb=2) as client:
        for text in ('{"image": ' + nested + "}", shallow_deep):
            response = client.post(
                "/api/v1/inpaint", content=text, headers={"content-type": "application/json"}
            )
            assert response.status_code in (400, 422) and "error" in response.json()


@pytest.mark.parametrize(("quality", "status"), [("1000", 422), ("-5", 422), ("0", 422), ("100", 200)])
def test_quality_is_checked_as_the_command_line_checks_it(model, quality, status):
    with _client(model) as client:
        response = post(client, png(photo()), png(hole()), format="jpeg", quality=quality, strategy="full")
    assert response.status_code == status
    if status == 422:
        assert response.json()["error"].startswith("quality:")


def test_foreign_origins_and_hosts_are_refused(model):
    with _client(model) as client:
        foreign = post_with(client, {"origin": "http://evil.example"})
        assert foreign.status_code == 403 and "Origin" in foreign.json()["error"]
        rebinding = client.get("/api/v1/model", headers={"host": "attacker.example:8080"})
        assert rebinding.status_code == 403 and "Host" in rebinding.json()["error"]
        own = post_with(client, {"origin": LOCAL})
        assert own.status_code == 200
        assert client.get("/api/v1/health", headers={"host": "localhost:8080"}).status_code == 200
        assert client.get("/api/v1/health", headers={"host": "[::1]:8080"}).status_code == 200
    with _client(model, allow_origins=("http://my.site",), allow_hosts=("box.lan",)) as client:
        assert post_with(client, {"origin": "http://my.site"}).status_code == 200
        assert client.get("/api/v1/health", headers={"host": "box.lan:8080"}).status_code == 200
    with _client(model, host="0.0.0.0") as client:  # every address: IP literals, never other names
        assert client.get("/api/v1/health", headers={"host": "192.0.2.7:8080"}).status_code == 200
        assert client.get("/api/v1/health", headers={"host": "rebind.example"}).status_code == 403


def post_with(client: TestClient, headers: dict[str, str]):
    files = {"image": ("p.png", png(photo()), "image/png"), "mask": ("m.png", png(hole()), "image/png")}
    return client.post("/api/v1/inpaint", files=files, data={"strategy": "full"}, headers=headers)


def test_head_works_where_get_does(model):
    with _client(model) as client:
        for path in ("/", "/api/v1/health", "/api/v1/model", "/api/v1/options", "/static/app.js"):
            assert client.head(path).status_code == 200, path


def test_options_endpoint_gives_the_page_its_choices(model):
    with _client(model) as client:
        listing = client.get("/api/v1/options").json()
    options = {o["name"]: o for o in listing["options"]}
    assert options["strategy"]["choices"] == ["auto", "fit", "full", "crop", "resize"]
    assert options["blend"]["choices"] == ["harmonic", "paste"] and options["dilate"]["minimum"] == 0
    assert "max_pixels" not in options  # a server setting, not a request's
    assert [f["name"] for f in listing["formats"]] == ["png", "jpeg", "webp"]
    assert listing["quality"] == {"minimum": 1, "maximum": 100, "default": 95}


def test_a_full_disk_under_output_dir_still_answers_the_result(model, tmp_path, monkeypatch, capsys):
    def full(folder, result):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("lbam.server.app.save_output", full)
    with _client(model, output_dir=tmp_path) as client:
        response = post(client, png(photo()), png(hole()), strategy="full")
    assert response.status_code == 200 and response.headers["X-Lbam-Saved"] == "false"
    assert "No space left" in capsys.readouterr().err


def test_a_cancelled_job_stops_at_the_next_window(model):
    job = inpainting.Job()
    job.progress(0, 3)
    assert job.to_dict()["stage"] == "filling" and job.to_dict()["total"] == 3
    job.stop.set()
    with pytest.raises(inpainting.Cancelled, match="stopped after 1 of 3"):
        job.progress(1, 3)


@pytest.mark.slow
def test_a_real_server_answers_413_before_an_endless_chunked_upload_ends(model):
    """Over a socket: the server answers once the limit is passed, while the client still sends."""
    import socket

    app = create_app(model, "cpu", ServerSettings("tiny", max_upload_mb=1, host="127.0.0.1"))
    with live_server(app) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(
                b"POST /api/v1/inpaint HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                b"Content-Type: multipart/form-data; boundary=b0undary\r\n\r\n"
            )
            head = b'--b0undary\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
            connection.sendall(b"%x\r\n" % len(head) + head + b"\r\n")
            chunk = b"x" * 65536
            for _ in range(24):  # 1.5 MB of an upload that never ends
                connection.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            answer = b""
            while b"over the limit" not in answer and (part := connection.recv(4096)):
                answer += part
        assert answer.startswith(b"HTTP/1.1 413") and b"over the limit" in answer


def test_start_up_failures_are_one_line_and_exit_2(tmp_path, capsys):
    import socket

    from lbam.cli.main import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
        error = capsys.readouterr().err
        assert error.startswith(f"lbam: error: cannot listen on 127.0.0.1:{port}") and error.count("\n") == 1
    assert main(["serve", "--host", "192.0.2.1", "--port", "0"]) == 2  # an address this machine lacks
    assert capsys.readouterr().err.startswith("lbam: error: cannot listen on 192.0.2.1:0")
    (tmp_path / "file").write_text("x")
    assert main(["serve", "--output-dir", str(tmp_path / "file")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err


@pytest.mark.slow
def test_connections_that_never_finish_their_headers_are_closed(model, monkeypatch):
    import socket
    import time

    from lbam.server import listen

    monkeypatch.setattr(listen, "HEADER_SECONDS", 0.5)
    app = create_app(model, "cpu", ServerSettings("tiny"))
    with live_server(app, http=listen.HeaderDeadlineProtocol) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as slow:
            slow.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never ends its headers
            start = time.perf_counter()
            assert slow.recv(100) == b""  # closed by the server
            assert time.perf_counter() - start < 3
        with socket.create_connection(("127.0.0.1", port), timeout=5) as fine:
            fine.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert fine.recv(100).startswith(b"HTTP/1.1 200")


@pytest.mark.slow
def test_a_queued_request_whose_client_leaves_never_runs(model):
    """Over real sockets: while one request runs, a second waits; its client hangs up; it never runs."""
    import socket
    import time

    gate = threading.Event()
    slow = Gated(model, gate)
    body = _multipart(png(photo()), png(hole()), refine="none")  # the gated network fills
    head = (
        f"POST /api/v1/inpaint HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        "Content-Type: multipart/form-data; boundary=b0undary\r\n\r\n"
    ).encode()
    try:
        with live_server(create_app(slow, "cpu", ServerSettings("slow", queue_size=2))) as port:
            first = socket.create_connection(("127.0.0.1", port), timeout=30)
            first.sendall(head + body)
            for _ in range(200):  # until the first is inside the model
                if slow.calls:
                    break
                time.sleep(0.05)
            second = socket.create_connection(("127.0.0.1", port), timeout=30)
            second.sendall(head + body)
            time.sleep(1.0)  # the second is parsed and waiting for the worker
            second.close()  # its client goes away
            time.sleep(1.0)  # the server notices (it polls every 0.2 s)
            gate.set()
            answer = first.recv(100)
            first.close()
            time.sleep(1.0)
        assert answer.startswith(b"HTTP/1.1 200")
        assert len(slow.calls) == 1  # the abandoned request never reached the model
    finally:
        gate.set()

"""Load on ``lbam serve``: concurrent clients on localhost, latency, throughput, 503s, peak memory.

    python benchmarks/serve.py                       # 1, 4 and 16 clients, 512 px photos, eager then auto
    python benchmarks/serve.py --write-docs          # also the serve region of docs/benchmarks.md
    python benchmarks/serve.py --screenshot docs/images/serve.png   # the README's picture
    python benchmarks/serve.py --soak 30             # 32 clients for 30 s, then memory after a 12 Mpx photo

The server runs in a child process with the packaged model on the CPU and the default queue (one
inference at a time, 4 waiting). Each client sends ``--requests`` photos (512x512 crops of the
bundled demo photo with a 64x160 hole), one after the other; a 503 is counted, not retried. Every
run is bounded in requests and in time, and only 127.0.0.1 is contacted. Requests ask for
``refine=none``, the network's fill alone: this measures the model and the server; the default
texture stage adds PatchMatch's time (docs/benchmarks.md, "lbam inpaint end to end").
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from docs_region import write_benchmark_section  # noqa: E402  (a script beside this one)
from lbam.demo import demo_inputs
from lbam.server import CHROMIUM_FLAGS

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
TIME_LIMIT_S = 300
REFINE = "none"  # the network's fill alone (see the module doc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, backend: str = "auto") -> subprocess.Popen:
    command = [sys.executable, "-m", "lbam", "serve", "--port", str(port), "--device", "cpu"]
    process = subprocess.Popen(
        [*command, "--backend", backend], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(3000):  # auto may measure the backends first (once per machine and model)
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("lbam serve did not start")


def request_body() -> tuple[bytes, str]:
    """A multipart body: a 512 px photo and a mask with a 64x160 hole."""
    photo, _ = demo_inputs()
    image = Image.fromarray(photo).resize((512, 512))
    mask = np.zeros((512, 512), np.uint8)
    mask[220:284, 180:340] = 255
    parts = []
    boundary = uuid.uuid4().hex
    for name, picture in (("image", image), ("mask", Image.fromarray(mask))):
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.png"\r\n'
            f"Content-Type: image/png\r\n\r\n".encode()
            + buffer.getvalue()
            + b"\r\n"
        )
    return b"".join(parts) + refine_field(boundary) + f"--{boundary}--\r\n".encode(), boundary


def refine_field(boundary: str) -> bytes:
    return f'--{boundary}\r\nContent-Disposition: form-data; name="refine"\r\n\r\n{REFINE}\r\n'.encode()


def client(url: str, body: bytes, boundary: str, count: int, deadline: float, out: list) -> None:
    for _ in range(count):
        if time.perf_counter() > deadline:
            return
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                response.read()
                out.append(("ok", time.perf_counter() - start))
        except urllib.error.HTTPError as error:
            out.append((str(error.code), time.perf_counter() - start))


def peak_rss_mb(pid: int, key: str = "VmHWM:") -> float:
    """The process's peak (VmHWM) or current (VmRSS) resident memory in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return float("nan")


def large_body() -> tuple[bytes, str]:
    """A 4000x3000 photo (the demo photo, upscaled) with five small holes, as a multipart body."""
    photo, _ = demo_inputs()
    image = Image.fromarray(photo).resize((4000, 3000))
    mask = np.zeros((3000, 4000), np.uint8)
    for k in range(5):
        mask[400 + 500 * k : 480 + 500 * k, 600 + 600 * k : 700 + 600 * k] = 255
    boundary = uuid.uuid4().hex
    parts = []
    for name, picture, fmt in (("image", image, "JPEG"), ("mask", Image.fromarray(mask), "PNG")):
        buffer = io.BytesIO()
        picture.save(buffer, format=fmt)
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n\r\n'.encode()
            + buffer.getvalue()
            + b"\r\n"
        )
    return b"".join(parts) + refine_field(boundary) + f"--{boundary}--\r\n".encode(), boundary


def soak(port: int, pid: int, seconds: float, clients: int) -> str:
    """``clients`` clients for ``seconds``; the statuses, health afterwards, memory before and after."""
    idle = peak_rss_mb(pid, "VmRSS:")
    row = measure(port, clients, 10_000, seconds)
    health = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=10).status
    after_load = peak_rss_mb(pid, "VmRSS:")
    body, boundary = large_body()
    results: list = []
    client(f"http://127.0.0.1:{port}/api/v1/inpaint", body, boundary, 1, time.perf_counter() + 300, results)
    time.sleep(1)
    after_large = peak_rss_mb(pid, "VmRSS:")
    return (
        f"{clients} clients for {seconds:.0f} s: {row['sent']} requests, {row['ok']} answered 200, "
        f"{row['busy']} 503, {row['other']} other ({row['throughput']:.2f} req/s); health afterwards "
        f"{health}. Resident memory of the server: {idle:.0f} MB idle, {after_load:.0f} MB after the "
        f"load, {after_large:.0f} MB after one 4000x3000 photo with five holes "
        f"({results[0][0] if results else 'no answer'}, {results[0][1] if results else 0:.1f} s), "
        f"peak {peak_rss_mb(pid):.0f} MB."
    )


def measure(port: int, clients: int, requests: int, seconds: float = TIME_LIMIT_S) -> dict:
    body, boundary = request_body()
    url = f"http://127.0.0.1:{port}/api/v1/inpaint"
    results: list = []
    deadline = time.perf_counter() + seconds
    threads = [
        threading.Thread(target=client, args=(url, body, boundary, requests, deadline, results))
        for _ in range(clients)
    ]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    ok = sorted(t for kind, t in results if kind == "ok")
    return {
        "clients": clients,
        "sent": len(results),
        "ok": len(ok),
        "busy": sum(kind == "503" for kind, _ in results),
        "other": sum(kind not in ("ok", "503") for kind, _ in results),
        "p50": statistics.median(ok) if ok else float("nan"),
        "p95": ok[min(len(ok) - 1, int(0.95 * len(ok)))] if ok else float("nan"),
        "throughput": len(ok) / seconds,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| backend | clients | requests | 200 | 503 | other | p50 latency (s) | p95 latency (s) | throughput (req/s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['clients']} | {r['sent']} | {r['ok']} | {r['busy']} | {r['other']} | "
            f"{r['p50']:.2f} | {r['p95']:.2f} | {r['throughput']:.2f} |"
        )
    peaks = ", ".join(
        f"{backend} {rss:.0f} MB" for backend, rss in dict((r["backend"], r["rss"]) for r in rows).items()
    )
    lines.append(f"\nPeak memory of the server process over each backend's runs (VmHWM): {peaks}.")
    return "\n".join(lines)


def sweep(backend: str, clients: list[int], requests: int) -> list[dict]:
    """The client counts against one server started with ``--backend backend``."""
    port = free_port()
    server = start_server(port, backend)
    try:
        facts = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/model", timeout=10).read().decode()
        chosen = json.loads(facts)["backend"]
        rows = [{"backend": chosen, **measure(port, n, requests)} for n in clients]
        for row in rows:
            row["rss"] = peak_rss_mb(server.pid)
        return rows
    finally:
        server.terminate()
        server.wait(10)


def screenshot(port: int, path: Path) -> None:
    from playwright.sync_api import sync_playwright

    photo, known = demo_inputs()
    folder = Path(os.environ.get("TMPDIR", "/tmp"))
    Image.fromarray(photo).save(folder / "demo_photo.png")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=list(CHROMIUM_FLAGS))
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_test_id("file-input").set_input_files(str(folder / "demo_photo.png"))
        page.wait_for_function(
            "document.querySelector('[data-testid=status]').textContent.startsWith('opened')"
        )
        box = page.get_by_test_id("canvas").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.62, box["y"] + box["height"] * 0.28)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.35, steps=10)
        page.mouse.up()
        page.get_by_test_id("inpaint").click()
        page.wait_for_function(
            "document.querySelector('[data-testid=status]').textContent.startsWith('done')"
        )
        page.get_by_test_id("compare").click()
        page.screenshot(path=str(path))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--requests", type=int, default=6, help="requests per client")
    parser.add_argument("--backends", default="eager,auto", help="one server per backend, in this order")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--screenshot", type=Path)
    parser.add_argument("--soak", type=float, metavar="SECONDS", help="32 clients for this long instead")
    args = parser.parse_args()
    if args.screenshot or args.soak:
        port = free_port()
        server = start_server(port)
        try:
            if args.screenshot:
                screenshot(port, args.screenshot)
            else:
                print(soak(port, server.pid, min(args.soak, TIME_LIMIT_S), 32))
        finally:
            server.terminate()
            server.wait(10)
        return
    clients = [int(n) for n in args.clients.split(",")]
    rows = [row for backend in args.backends.split(",") for row in sweep(backend, clients, args.requests)]
    text = table(rows)
    print(text)
    if args.write_docs:
        write_benchmark_section(
            "serve",
            "lbam serve under load (CPU)",
            "python benchmarks/serve.py --write-docs",
            "protocol in its docstring: 512 px photos, the packaged model (`refine=none`: the network's fill "
            "alone), one inference at a time with 4 "
            "waiting; a client that finds the queue full gets 503 and does not retry; one server per "
            "backend (`--backend eager`, then `--backend auto`, whose choice is shown).\n\n" + text,
        )


if __name__ == "__main__":
    main()

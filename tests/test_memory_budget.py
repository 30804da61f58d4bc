"""Bounded work: a request's peak memory is estimated from its header and refused over the budget."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from lbam.cli.main import main
from lbam.inference import budget
from lbam.inference.budget import estimate_bytes
from lbam.model.lbam import LBAMGenerator
from lbam.model.loading import load_model, save_model
from lbam.options import InpaintOptions
from lbam.server.app import ServerSettings, create_app
from test_serve_api import LOCAL, hole, png, post


def test_the_estimate_grows_with_what_the_strategy_feeds_the_model():
    card = load_model("lbam-compact").card
    full, fit = InpaintOptions(strategy="full", refine="none"), InpaintOptions(refine="none")
    assert estimate_bytes(4000, 3000, full, card) > 5 * estimate_bytes(4000, 3000, fit, card)
    # fit's windows do not grow with the photo: only its copies of the photo do
    small, large = estimate_bytes(1000, 1000, fit, card), estimate_bytes(4000, 3000, fit, card)
    assert large - small == budget.BYTES_PER_PHOTO_PIXEL * (12_000_000 - 1_000_000)
    wide = LBAMGenerator(width=1.0).card
    assert estimate_bytes(1000, 1000, full, wide) > 2.5 * estimate_bytes(1000, 1000, full, card)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["full", "fit"])
@pytest.mark.parametrize("refine", ["none", "texture"])
def test_the_estimate_covers_the_measured_peak(strategy, refine):
    code = textwrap.dedent(f"""
        import numpy as np, torch, lbam
        from lbam.inference.pipeline import get_model

        def status(key):
            line = next(l for l in open("/proc/self/status") if l.startswith(key))
            return int(line.split()[1]) * 1024

        torch.set_num_threads(1)
        model = get_model("lbam-compact", "cpu")
        image = np.random.default_rng(0).integers(0, 256, (1000, 1000, 3), dtype=np.uint8)
        hole = np.zeros((1000, 1000), bool); hole[250:500, 250:500] = True
        lbam.inpaint(image[:300, :300], hole[:300, :300], model, strategy="{strategy}", refine="{refine}")  # warm
        open("/proc/self/clear_refs", "w").write("5")  # the high-water mark starts again from here
        before = status("VmRSS:")
        lbam.inpaint(image, hole, model, strategy="{strategy}", refine="{refine}")
        print(status("VmHWM:") - before)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    measured = int(done.stdout.split()[-1])
    options = InpaintOptions(strategy=strategy, refine=refine)
    estimated = estimate_bytes(1000, 1000, options, load_model("lbam-compact").card)
    print(f"{strategy}, {refine}: measured {measured / 2**20:.0f} MB, estimated {estimated / 2**20:.0f} MB")
    assert measured <= estimated
    if strategy == "full":  # and not absurdly above it (fit's own peak is within the noise)
        assert estimated <= 4 * measured + budget.FIXED_BYTES


def test_the_server_refuses_work_over_its_budget_before_decoding(monkeypatch):
    torch.manual_seed(0)
    model = LBAMGenerator(width=1 / 32).eval()
    settings = ServerSettings("tiny", max_pixels=10_000_000, max_memory_mb=300)
    photo = np.zeros((1500, 1500, 3), np.uint8)  # 2.25 Mpx: fine with fit, too much with full
    mask = np.zeros((1500, 1500), np.uint8)
    mask[100:200, 100:200] = 255
    decoded = []
    monkeypatch.setattr("lbam.server.inpainting.read_image", lambda *a: decoded.append(1))
    with TestClient(create_app(model, "cpu", settings), base_url=LOCAL) as client:
        refused = post(client, png(photo), png(mask), strategy="full")
        assert refused.status_code == 413 and "over the budget of 300 MB" in refused.json()["error"]
        assert "strategy fit" in refused.json()["error"] and not decoded
    monkeypatch.undo()
    with TestClient(create_app(model, "cpu", settings), base_url=LOCAL) as client:
        assert post(client, png(photo[:96, :128]), png(hole()), strategy="full").status_code == 200


def test_the_command_line_refuses_a_full_pass_that_would_not_fit(tmp_path, monkeypatch, capsys):
    model = save_model(LBAMGenerator(width=1 / 32), tmp_path / "tiny.safetensors")
    Image.fromarray(np.zeros((800, 800, 3), np.uint8)).save(tmp_path / "photo.png")
    mask = np.zeros((800, 800), np.uint8)
    mask[10:50, 10:50] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    monkeypatch.setattr(budget, "machine_memory_bytes", lambda: 256 << 20)
    args = [
        "inpaint",
        str(tmp_path / "photo.png"),
        str(tmp_path / "mask.png"),
        "-o",
        str(tmp_path / "out.png"),
    ]
    args += ["--model", str(model), "--device", "cpu"]
    assert main([*args, "--strategy", "full"]) == 2
    error = capsys.readouterr().err
    assert (
        error.startswith("lbam: error: a 800x800 photo with strategy full needs about")
        and "--strategy fit" in error
    )
    assert not (tmp_path / "out.png").exists()
    assert main(args) == 0  # fit, the default, fits

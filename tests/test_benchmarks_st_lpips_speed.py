"""benchmarks/st_lpips_speed.py: its former layout computes the same distance, and it runs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import torch

from lbam.features.stlpips import load_st_lpips

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "st_lpips_speed.py"
spec = importlib.util.spec_from_file_location("st_lpips_speed", SCRIPT)
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)


def test_the_former_layout_gives_the_same_distances():
    metric = load_st_lpips()
    generator = torch.Generator().manual_seed(3)
    x, y = torch.rand(2, 2, 3, 64, 96, generator=generator)
    with torch.no_grad():
        torch.testing.assert_close(script.separate_nchw(metric)(x, y), metric(x, y), rtol=1e-5, atol=1e-7)


def test_the_script_prints_both_layouts_and_the_ratio():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--size", "64", "--repeats", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "| one channels-last batch (now) |" in done.stdout and "| two NCHW calls (before) |" in done.stdout
    assert "speed-up:" in done.stdout

"""benchmarks/grid_artifacts.py: the grid amplitude of known patterns, and one run on a real photo."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from shared_data import shared_file

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("grid_artifacts", REPO / "benchmarks" / "grid_artifacts.py")
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)

Y, X = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")


def test_a_checkerboard_has_its_amplitude_at_its_period_and_its_multiples():
    board = 0.5 + ((Y + X) % 2 * 2 - 1).double() * (3 / 255)  # +-3 grey levels
    for period in (2, 4, 8, 16):
        # within 3 %: the 9x9 blur keeps a little of the board, more of it in the border rows
        assert script.grid_amplitude(board, period) == pytest.approx(3, rel=0.03)


def test_an_8px_lattice_shows_at_8_not_at_2():
    lattice = 0.5 + ((Y % 8 == 0) | (X % 8 == 0)).double() * (4 / 255)
    at = {p: script.grid_amplitude(lattice, p) for p in (2, 8)}
    assert at[8] > 1.5 and at[2] < 0.6 * at[8]


def test_smooth_shading_and_noise_stay_low():
    ramp = (X / 127.0).double()
    noise = 0.5 + (torch.rand(128, 128, generator=torch.Generator().manual_seed(0)).double() - 0.5) * (
        10 * 12**0.5 / 255
    )  # uniform noise of RMS 10 levels
    assert script.grid_amplitude(ramp, 8) < 0.3
    assert script.grid_amplitude(noise, 8) < 1.0


def test_sides_must_be_multiples_of_the_period():
    with pytest.raises(ValueError, match="multiples of 8"):
        script.grid_amplitude(torch.zeros(12, 16), 8)


def test_runs_on_a_real_photo_with_the_packaged_model(tmp_path, capsys):
    photo = shared_file("photos", "val", "scikit-image__chelsea.jpg")
    (tmp_path / photo.name).symlink_to(photo)
    script.main(["--models", "lbam-compact", "--images", str(tmp_path)])
    row = capsys.readouterr().out.strip().splitlines()[-1]
    values = [float(v) for v in row.strip("|").split("|")[1:]]
    assert row.startswith("| lbam-compact |") and len(values) == 4 and all(0 <= v < 5 for v in values)

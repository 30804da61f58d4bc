"""`lbam demo`: the bundled photo and mask, the picture, the comparison table."""

from __future__ import annotations

import numpy as np
from PIL import Image

from lbam.cli.main import main
from lbam.demo import demo_inputs
from lbam.model.lbam import LBAMGenerator
from lbam.model.loading import save_model


def test_bundled_inputs_are_the_documented_ones():
    photo, known = demo_inputs()
    assert photo.shape == (300, 451, 3) and photo.dtype == np.uint8
    assert known.shape == (300, 451) and known.dtype == bool
    assert 0.13 < 1 - known.mean() < 0.14


def test_demo_writes_picture_and_prints_scores(tmp_path, capsys):
    model = save_model(LBAMGenerator(width=0.0625), tmp_path / "tiny.safetensors")
    out = tmp_path / "demo.png"
    assert main(["demo", "--model", str(model), "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == ["method", "PSNR", "(dB)", "SSIM"]
    rows = {
        name: [float(psnr_db), float(ssim_value)]
        for name, psnr_db, ssim_value in (line.rsplit(maxsplit=2) for line in printed[1:5])
    }
    assert set(rows) == {"tiny", "texture (default)", "telea", "navier-stokes"}
    for psnr_db, ssim_value in rows.values():
        assert 10 < psnr_db < 60 and 0 < ssim_value <= 1
    picture = Image.open(out)
    # 3 x 2 tiles of 451 x 300 with labels and gaps: input, truth, network, texture, Telea, NS
    assert picture.width == 3 * 451 + 2 * 4 and picture.height == 2 * (300 + 16) + 4


def test_demo_with_missing_model_is_one_line_error(tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert main(["demo", "--model", str(tmp_path / "absent.safetensors"), "--out", str(out)]) == 2
    assert "model not found" in capsys.readouterr().err
    assert not out.exists()


def test_demo_default_output_is_the_documented_file(tmp_path, monkeypatch, capsys):
    model = save_model(LBAMGenerator(width=0.0625), tmp_path / "tiny.safetensors")
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--model", str(model), "--device", "cpu"]) == 0
    assert (tmp_path / "lbam_demo.png").is_file() and "wrote lbam_demo.png" in capsys.readouterr().out
    assert main(["demo", "--model", str(model), "--device", "cpu", "-o", "elsewhere.png"]) == 0
    assert (tmp_path / "elsewhere.png").is_file()

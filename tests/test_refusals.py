"""Remaining bad inputs are one line and exit 2, before anything is written."""

from __future__ import annotations

import warnings

import pytest
import torch

from lbam.cli.main import main
from lbam.errors import LbamError
from lbam.model.lbam import LBAMGenerator
from lbam.model.loading import load_model
from test_evaluation_protocol import write_binned_masks, write_images


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--radius", "inf"], "--radius must be"),
        (["--radius", "nan"], "--radius must be"),
        (["--grid-tile", "60000"], "--grid-tile must be"),
        (["--seed", "-1"], "--seed must be"),
        (["--size", "60000"], "--size must be"),
        (["--pairs", "0"], "--pairs must be"),
    ],
)
def test_bad_evaluate_settings_write_nothing(tmp_path, capsys, extra, message):
    write_images(tmp_path / "images", 2)
    write_binned_masks(tmp_path / "masks", per_bin=1, size=32)
    out = tmp_path / "out"
    code = main(
        [
            "evaluate",
            "--images",
            str(tmp_path / "images"),
            "--masks",
            str(tmp_path / "masks"),
            "--out",
            str(out),
            *extra,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("size", ["100000x100000", "0", "9000"])
def test_masks_generate_refuses_sizes_before_writing(tmp_path, capsys, size):
    code = main(
        [
            *["masks", "generate", "--kind", "noise:1", "--count", "1", "--size"],
            size,
            "--out",
            str(tmp_path / "m"),
        ]
    )
    assert code == 2 and "--size" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_a_torchscript_file_is_refused_without_a_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(
            LBAMGenerator(width=1 / 32).eval(), (torch.rand(1, 3, 128, 128), torch.ones(1, 1, 128, 128))
        )
    traced.save(tmp_path / "model.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(LbamError, match="TorchScript program"):
            load_model(tmp_path / "model.pt")

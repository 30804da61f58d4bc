"""lbam.evaluation.lpips: weights file layout, distance properties, use inside a run."""

from __future__ import annotations

import csv

import pytest
import torch

from lbam.errors import LbamError
from lbam.evaluation.evaluate import EvaluationSettings, evaluate
from lbam.evaluation.lpips import LINEAR_KEYS, LPIPS_CHANNELS, load_lpips, read_linear_weights
from test_evaluation_protocol import write_binned_masks, write_images

pytestmark = pytest.mark.filterwarnings("ignore:VGG16 weights not loaded")


@pytest.fixture
def lpips_file(tmp_path):
    """A file with the lpips v0.1 vgg.pth layout and random non-negative weights."""
    generator = torch.Generator().manual_seed(0)
    state = {
        key: torch.rand((1, c, 1, 1), generator=generator)
        for key, c in zip(LINEAR_KEYS, LPIPS_CHANNELS, strict=True)
    }
    path = tmp_path / "vgg.pth"
    torch.save(state, path)
    return path


def test_lpips_is_zero_for_identical_images_and_grows_with_distortion(lpips_file, tmp_path):
    torch.manual_seed(0)
    lpips = load_lpips(lpips_file, tmp_path / "no-vgg.pth", allow_random_vgg=True)
    x = torch.rand(2, 3, 32, 32)
    same = lpips(x, x)
    assert same.shape == (2,) and torch.all(same == 0)
    slightly = lpips(x, (x + 0.02 * torch.randn_like(x)).clamp(0, 1))
    very = lpips(x, torch.rand_like(x))
    assert torch.all(slightly > 0)
    assert torch.all(very > slightly)
    y = torch.rand_like(x)
    assert torch.allclose(lpips(x, y), lpips(y, x))


def test_lpips_with_unit_weights_is_twice_one_minus_the_cosine_similarity(tmp_path):
    # For unit-normalised features ||a - b||^2 = 2 - 2 cos(a, b): an independent way to the same number.
    ones = {key: torch.ones(1, c, 1, 1) for key, c in zip(LINEAR_KEYS, LPIPS_CHANNELS, strict=True)}
    torch.manual_seed(1)
    lpips = load_lpips(_save(tmp_path / "ones.pth", ones), tmp_path / "no-vgg.pth", allow_random_vgg=True)
    x, y = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    taps_x = lpips.features((2 * x - 1 - shift) / scale)
    taps_y = lpips.features((2 * y - 1 - shift) / scale)
    expected = sum(
        (2 - 2 * torch.cosine_similarity(a, b, dim=1, eps=1e-20)).mean()
        for a, b in zip(taps_x, taps_y, strict=True)
    )
    assert lpips(x, y).item() == pytest.approx(expected.item(), rel=1e-4)


def test_linear_weights_are_checked_by_key_and_shape(tmp_path):
    good = {key: torch.ones(1, c, 1, 1) for key, c in zip(LINEAR_KEYS, LPIPS_CHANNELS, strict=True)}
    assert [tuple(w.shape) for w in read_linear_weights(_save(tmp_path / "ok.pth", good))] == [
        (1, c, 1, 1) for c in LPIPS_CHANNELS
    ]
    missing = dict(good)
    del missing["lin3.model.1.weight"]
    with pytest.raises(LbamError, match="key 'lin3.model.1.weight' is missing"):
        read_linear_weights(_save(tmp_path / "missing.pth", missing))
    wrong = dict(good, **{"lin0.model.1.weight": torch.ones(1, 32, 1, 1)})
    with pytest.raises(
        LbamError, match=r"'lin0.model.1.weight' has shape \(1, 32, 1, 1\), expected \(1, 64, 1, 1\)"
    ):
        read_linear_weights(_save(tmp_path / "wrong.pth", wrong))
    with pytest.raises(LbamError, match="LPIPS weights not found"):
        read_linear_weights(tmp_path / "absent.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(LbamError, match="cannot read LPIPS weights"):
        read_linear_weights(tmp_path / "junk.pth")


def _save(path, state):
    torch.save(state, path)
    return path


def test_missing_vgg_weights_is_a_clear_error(lpips_file, tmp_path):
    with pytest.raises(LbamError, match="VGG16 weights not found"):
        load_lpips(lpips_file, tmp_path / "no-vgg.pth")


def test_lpips_column_and_table_in_a_run(lpips_file, tmp_path):
    write_images(tmp_path / "images", 2, size=32)
    write_binned_masks(tmp_path / "masks", per_bin=1, size=32)
    lines: list[str] = []
    summary = evaluate(
        EvaluationSettings(
            images=tmp_path / "images",
            masks=tmp_path / "masks",
            methods=["telea"],
            out=tmp_path / "out",
            size=32,
            pairs=1,
            lpips_weights=lpips_file,
            vgg_weights=tmp_path / "no-vgg.pth",
            allow_random_vgg=True,
            st_lpips=False,
            grid_pairs=0,
            progress=False,
        ),
        log=lines.append,
    )
    with open(tmp_path / "out" / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert "lpips" in rows[0] and all(float(r["lpips"]) > 0 for r in rows)
    assert summary["metrics"] == ["psnr", "ssim", "l1", "lpips"]
    assert "**LPIPS-VGG (lower is better)**" in (tmp_path / "out" / "summary.md").read_text()
    assert not any("LPIPS not computed" in line for line in lines)

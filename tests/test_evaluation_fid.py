"""lbam.evaluation.fid: the FID Inception-v3 layout, its weights file, the Fréchet distance, FID in a run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from lbam.cli.main import main
from lbam.errors import LbamError
from lbam.evaluation.evaluate import FID_MISSING, EvaluationSettings, evaluate
from lbam.evaluation.fid import (
    FIDInceptionV3,
    _average_pool,
    feature_statistics,
    fid_from_features,
    frechet_distance,
    load_fid_inception,
)
from test_evaluation_protocol import write_binned_masks, write_images

# pytorch-fid's pt_inception-2015-12-05 file: 94 conv + batch-norm units of 5 tensors each, plus fc.
FILE_KEYS = 94 * 5 + 2
FILE_SHAPES = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_1a_3x3.bn.running_mean": (32,),
    "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_5b.branch5x5_2.conv.weight": (64, 48, 5, 5),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
    "Mixed_7b.branch3x3dbl_1.conv.weight": (448, 1280, 1, 1),
    "Mixed_7c.branch3x3_2b.conv.weight": (384, 384, 3, 1),
    "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
    "Mixed_7c.branch_pool.bn.running_var": (192,),
    "fc.weight": (1008, 2048),
    "fc.bias": (1008,),
}


def fid_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state_dict in the FID file's layout: scaled random convolutions, random batch-norm statistics.

    He-initialised convolutions keep activations of order one through the 94 layers, so features
    and distances are far from zero. No ``num_batches_tracked``, like the original file.
    """
    torch.manual_seed(seed)
    model = FIDInceptionV3()
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.1, 0.1)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    state["fc.weight"] = torch.randn(1008, 2048) * 0.01
    state["fc.bias"] = torch.zeros(1008)
    return state


@pytest.fixture(scope="module")
def fid_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("fid") / "pt_inception.pth"
    torch.save(fid_state(), path)
    return path


def save(path, state):
    torch.save(state, path)
    return path


def test_architecture_has_the_fid_file_layout():
    model = FIDInceptionV3()
    own = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert len(own) == FILE_KEYS - 2  # everything but fc
    for key, shape in FILE_SHAPES.items():
        if not key.startswith("fc."):
            assert own[key] == shape, key
    # torchvision's Inception3 has 27,161,264 parameters; without AuxLogits (3,326,696) and its
    # 1000-class fc (2,049,000) that is the trunk below.
    assert sum(p.numel() for p in model.parameters()) == 21_785_568
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(norms) == len(convs) == 94
    assert all(m.eps == 0.001 for m in norms) and all(m.bias is None for m in convs)
    # The two FID-specific pools: the last block max-pools, the others average without the padding.
    assert model.Mixed_7c.max_pool and not model.Mixed_7b.max_pool
    ones = torch.ones(1, 1, 5, 5)
    assert torch.equal(_average_pool(ones), ones)  # with the padding counted, corners would be 4/9


def test_weights_file_loads_and_gives_2048_features(fid_file):
    model = load_fid_inception(fid_file)
    expected = torch.load(fid_file, weights_only=True)
    assert torch.equal(
        model.Mixed_6c.branch7x7dbl_3.conv.weight, expected["Mixed_6c.branch7x7dbl_3.conv.weight"]
    )
    assert torch.equal(model.Conv2d_2b_3x3.bn.running_var, expected["Conv2d_2b_3x3.bn.running_var"])
    assert not model.training
    torch.manual_seed(1)
    images = torch.rand(2, 3, 48, 64)  # any size: resized to 299 x 299 inside
    with torch.inference_mode():
        features = model(images)
        single = model(images[1:])
    assert features.shape == (2, 2048) and features.dtype == torch.float32
    assert torch.all(features >= 0) and features.std() > 1e-3  # averaged ReLU outputs, not vanished
    assert torch.allclose(features[1:], single, atol=1e-5)  # eval mode: one image does not see another
    assert not torch.allclose(features[0], features[1])


def test_bad_weights_files_are_one_line_errors(fid_file, tmp_path):
    good = torch.load(fid_file, weights_only=True)
    with pytest.raises(LbamError, match=r"FID weights not found: .*absent\.pth \(pytorch-fid's pt_inception"):
        load_fid_inception(tmp_path / "absent.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(LbamError, match="cannot read FID weights"):
        load_fid_inception(tmp_path / "junk.pth")
    with pytest.raises(LbamError, match="expected a state_dict of the FID Inception-v3"):
        load_fid_inception(save(tmp_path / "list.pth", [torch.zeros(1)]))
    lpips_like = {f"lin{i}.model.1.weight": torch.ones(1, 64, 1, 1) for i in range(5)}
    with pytest.raises(LbamError, match="does not match the model: missing key 'Conv2d_1a_3x3.conv.weight'"):
        load_fid_inception(save(tmp_path / "lpips.pth", lpips_like))
    wrong = dict(good, **{"Mixed_5c.branch1x1.conv.weight": torch.zeros(64, 255, 1, 1)})
    with pytest.raises(LbamError, match=r"'Mixed_5c.branch1x1.conv.weight' has shape \[64, 255, 1, 1\]"):
        load_fid_inception(save(tmp_path / "wrong.pth", wrong))
    extra = dict(good, **{"Mixed_8a.conv.weight": torch.zeros(1)})
    with pytest.raises(LbamError, match="unexpected key 'Mixed_8a.conv.weight'"):
        load_fid_inception(save(tmp_path / "extra.pth", extra))
    classifier = dict(good, **{"AuxLogits.fc.weight": torch.zeros(1000, 768)})
    with pytest.raises(LbamError, match="ImageNet Inception-v3 classifier .*AuxLogits"):
        load_fid_inception(save(tmp_path / "torchvision.pth", classifier))
    fc1000 = dict(good, **{"fc.weight": torch.zeros(1000, 2048)})
    with pytest.raises(
        LbamError, match=r"'fc.weight' has shape \[1000, 2048\], the FID network's is \[1008, 2048\]"
    ):
        load_fid_inception(save(tmp_path / "fc1000.pth", fc1000))


def random_covariance(rng, dim: int) -> np.ndarray:
    root = rng.standard_normal((dim, dim))
    return root @ root.T / dim + 0.1 * np.eye(dim)


def test_frechet_distance_against_closed_forms():
    rng = np.random.default_rng(0)
    mu, sigma = rng.standard_normal(8), random_covariance(rng, 8)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0, abs=1e-6)
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 for standard deviations s.
    assert frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(9 + 1, abs=1e-9)
    # Diagonal covariances: the 1-D formula summed over dimensions.
    var1, var2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    got = frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    assert got == pytest.approx(expected, rel=1e-9)
    assert got == pytest.approx(frechet_distance(mu2, np.diag(var2), mu1, np.diag(var1)), rel=1e-9)
    # Singular covariances (rank 1 along one direction): finite, and the 1-D answer along it.
    u = rng.standard_normal(5)
    u /= np.linalg.norm(u)
    got = frechet_distance(np.zeros(5), 4 * np.outer(u, u), np.zeros(5), 1 * np.outer(u, u))
    assert math.isfinite(got) and got == pytest.approx((2 - 1) ** 2, abs=1e-4)
    with pytest.raises(ValueError, match="disagree"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_fid_from_features_matches_the_fitted_gaussians():
    rng = np.random.default_rng(1)
    # Fewer samples than dimensions: the exact low-rank path, checked against sqrtm of the covariances.
    a = rng.standard_normal((30, 64))
    b = 0.5 * a[::-1] + rng.standard_normal((25, 64)).repeat(2, axis=0)[:30] + 0.3
    low_rank = fid_from_features(a, b)
    assert low_rank == pytest.approx(
        frechet_distance(*feature_statistics(a), *feature_statistics(b)), rel=1e-6
    )
    assert low_rank > 1
    # More samples than dimensions: straight through sqrtm.
    c, d = rng.standard_normal((200, 16)), 2 * rng.standard_normal((150, 16)) + 1
    expected = 16 * 1 + 16 * (2 - 1) ** 2  # |mu1 - mu2|^2 + (s1 - s2)^2 per dimension, in expectation
    assert fid_from_features(c, d) == pytest.approx(expected, rel=0.25)
    # A set against itself, at the real feature size.
    features = rng.random((20, 2048))
    assert fid_from_features(features, features) == pytest.approx(0, abs=1e-9)
    with pytest.raises(ValueError, match="N >= 2"):
        fid_from_features(features[:1], features)


def test_cli_writes_fid_into_the_summary(fid_file, tmp_path, capsys):
    write_images(tmp_path / "images", 2, size=32)
    write_binned_masks(tmp_path / "masks", per_bin=1, size=32)
    out = tmp_path / "out"
    code = main(
        ["evaluate", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"), "--methods", "telea",
         "--out", str(out), "--size", "32", "--pairs", "1", "--grid-pairs", "0", "--no-progress",
         "--fid-weights", str(fid_file)]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    data = json.loads((out / "summary.json").read_text())
    assert data["metrics"] == ["psnr", "ssim", "l1", "fid"]
    telea = data["methods"]["telea"]["bins"]
    assert math.isfinite(telea["all"]["fid"]) and telea["all"]["fid"] > 0
    assert all(telea[str(k)]["fid"] is None for k in range(1, 7))  # one pair per bin: too few
    assert data["settings"]["fid_weights"] == str(fid_file)
    assert "FID on 6 pairs, fewer than the 2048 features: it is biased upwards" in " ".join(data["notes"])
    assert any(
        n.startswith("FID per bin needs 50 pairs; not computed for bins (0.01, 0.1] (1)")
        for n in data["notes"]
    )
    assert not any("FID not computed" in n for n in data["notes"])
    md = (out / "summary.md").read_text()
    assert "**FID, Inception-v3 pool features (lower is better)**" in md
    assert f"| telea | – | – | – | – | – | – | {telea['all']['fid']:.2f} |" in md
    assert "FID: features of 6 ground truths in" in printed
    assert "fid" not in (out / "results.csv").read_text().splitlines()[0]


@pytest.mark.slow
def test_fid_per_bin_and_without_weights(fid_file, tmp_path, monkeypatch):
    import lbam.evaluation.evaluate as evaluation

    write_images(tmp_path / "images", 2, size=16)
    write_binned_masks(tmp_path / "masks", per_bin=2, size=16)
    lines: list[str] = []
    settings = EvaluationSettings(
        images=tmp_path / "images", masks=tmp_path / "masks", methods=["telea"], out=tmp_path / "out",
        size=16, pairs=2, grid_pairs=0, progress=False,
    )  # fmt: skip
    summary = evaluate(settings, log=lines.append)
    assert FID_MISSING in lines and FID_MISSING in summary["notes"]
    assert "fid" not in summary["metrics"]
    assert "FID not computed: no --fid-weights given" in (tmp_path / "out" / "summary.md").read_text()

    # With the bin threshold lowered to 2 pairs every bin gets its own FID.
    monkeypatch.setattr(evaluation, "FID_MIN_BIN_PAIRS", 2)
    settings.fid_weights = fid_file
    summary = evaluate(settings, log=lines.append)
    fids = {key: entry["fid"] for key, entry in summary["methods"]["telea"]["bins"].items()}
    assert set(fids) == {"1", "2", "3", "4", "5", "6", "all"}
    assert all(math.isfinite(value) and value > 0 for value in fids.values())
    assert not any("per bin" in note for note in summary["notes"])


def test_missing_or_foreign_weights_exit_2_before_any_method(tmp_path, capsys):
    write_images(tmp_path / "images", 1, size=32)
    write_binned_masks(tmp_path / "masks", per_bin=1, size=32)
    args = ["evaluate", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"),
            "--out", str(tmp_path / "out"), "--size", "32", "--pairs", "1", "--no-progress"]  # fmt: skip
    assert main([*args, "--fid-weights", str(tmp_path / "absent.pth")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lbam: error: FID weights not found: ") and err.count("\n") == 1
    foreign = save(tmp_path / "vgg.pth", {"features.0.weight": torch.zeros(64, 3, 3, 3)})
    assert main([*args, "--fid-weights", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert "does not match the model: missing key 'Conv2d_1a_3x3.conv.weight'" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()

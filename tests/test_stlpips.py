"""ST-LPIPS in plain torch: the shift-tolerant trunks, their weight files, the distance.

Real weights come from the ``stlpips-pytorch`` wheel (``.ci/run`` installs it with --no-deps);
without it those tests skip locally and fail in CI. The reference values were computed once with
the package's own code (``stlpips.LPIPS(net=..., variant="shift_tolerant")(x, y, normalize=True)``,
torch 2.14.1, torchvision 0.29.1) on the deterministic images of :func:`pattern`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lbam.errors import LbamError
from lbam.features import stlpips
from lbam.features.stlpips import (
    ShiftTolerantTrunk,
    find_weights,
    load_st_lpips,
    load_stlpips_vgg,
    read_weights,
)
from lbam.layers.blur import BlurDownsample

REFERENCE = {
    "alex": (0.04801923, 0.0100573, 0.6581049),
    "vgg": (0.18107243, 0.046368, 0.8248688),
}


def pattern() -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A smooth 64x64 test image and three others: shifted 2 px, lower contrast, inverted."""
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    x = torch.stack([xx / 63, yy / 63, 0.5 + 0.5 * torch.sin(xx / 5) * torch.cos(yy / 7)])[None]
    return x, [x.roll(2, dims=3), (x * 0.8 + 0.1).clamp(0, 1), 1 - x]


def real_weights(network: str) -> Path:
    try:
        return find_weights(network)
    except LbamError:
        if os.environ.get("CI"):
            raise
        pytest.skip("stlpips-pytorch is not installed (pip install --no-deps stlpips-pytorch==0.0.2)")


def fake_file(tmp_path: Path, network: str, **changes: object) -> Path:
    """A weight file with the real keys and shapes and random values; ``changes`` replace entries."""
    trunk = ShiftTolerantTrunk(
        network, stlpips.VGG_LPIPS_TAPS if network == "vgg" else stlpips.ALEX_LPIPS_TAPS
    )
    generator = torch.Generator().manual_seed(0)
    state = {"scaling_layer.shift": trunk.shift.clone(), "scaling_layer.scale": trunk.scale.clone()}
    for key, value in trunk.features.state_dict().items():
        state[f"net.slice1.{key}"] = (
            value if key.endswith("filt") else torch.randn(value.shape, generator=generator) * 0.1
        )
    channels = stlpips.VGG_CHANNELS if network == "vgg" else stlpips.ALEX_CHANNELS
    for i, c in enumerate(channels):
        state[f"lin{i}.model.1.weight"] = torch.rand(1, c, 1, 1, generator=generator)
    state.update(changes)  # type: ignore[arg-type]
    path = tmp_path / f"{network}.pth"
    torch.save({k: v for k, v in state.items() if v is not None}, path)
    return path


def test_blur_downsample_by_hand():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = BlurDownsample(1)(x)
    assert out.shape == (1, 1, 3, 3)  # floor((4 + 1) / 2) + 1
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")[0, 0]
    kernel = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16
    expected = (padded[0:3, 2:5] * kernel).sum()  # output (0, 1): window rows 0..2, columns 2..4
    assert out[0, 0, 0, 1] == pytest.approx(expected.item())


def test_vgg_trunk_matches_a_hand_written_stack(tmp_path):
    path = fake_file(tmp_path, "vgg")
    state = torch.load(path, weights_only=True)
    trunk = load_stlpips_vgg(path)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    h = (x * 2 - 1 - state["scaling_layer.shift"]) / state["scaling_layer.scale"]
    h = F.relu(F.conv2d(h, state["net.slice1.0.weight"], state["net.slice1.0.bias"], padding=1))
    h = F.relu(F.conv2d(h, state["net.slice1.2.weight"], state["net.slice1.2.bias"], padding=1))
    h = F.max_pool2d(h, 2, stride=1)
    blur = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16
    pool1 = F.conv2d(F.pad(h, (2, 2, 2, 2), mode="reflect"), blur.expand(64, 1, 3, 3), stride=2, groups=64)
    taps = trunk(x)
    torch.testing.assert_close(taps[0], pool1, rtol=1e-5, atol=1e-5)
    assert [tuple(t.shape) for t in taps] == [(1, 64, 17, 17), (1, 128, 9, 9), (1, 256, 5, 5)]
    assert not any(p.requires_grad for p in trunk.parameters())
    x.requires_grad_(True)
    trunk(x)[2].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # the loss's gradient reaches the image


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lin0.model.1.weight": None}, "no tensor for 'lin0'"),
        ({"net.slice1.0.weight": torch.zeros(64, 3, 5, 5)}, r"'features.0.weight' has shape \(64, 3, 5, 5\)"),
        ({"net.slice1.0.bias": torch.full((64,), float("nan"))}, "finite floating-point"),
        ({"net.slice1.0.bias": torch.zeros(64, dtype=torch.int64)}, "finite floating-point"),
    ],
)
def test_bad_weight_files_are_one_line_errors(tmp_path, changes, message):
    with pytest.raises(LbamError, match=message):
        read_weights(fake_file(tmp_path, "alex", **changes), "alex")


def test_missing_weights_say_how_to_get_them(tmp_path, monkeypatch):
    with pytest.raises(LbamError, match="weights not found"):
        find_weights("vgg", tmp_path / "nothing.pth")
    monkeypatch.setenv("LBAM_HOME", str(tmp_path))
    monkeypatch.setattr(stlpips, "PACKAGE", "no_such_package_here")
    with pytest.raises(LbamError, match="pip install --no-deps stlpips-pytorch==0.0.2"):
        find_weights("alex")
    (tmp_path / "stlpips").mkdir()
    (tmp_path / "stlpips" / "alex_shift_tolerant.pth").write_bytes(b"x")
    assert find_weights("alex") == tmp_path / "stlpips" / "alex_shift_tolerant.pth"


@pytest.mark.parametrize("network", ["alex", "vgg"])
def test_distance_equals_the_reference_implementation(network):
    metric = load_st_lpips(real_weights(network), network=network)
    x, others = pattern()
    with torch.no_grad():
        values = [metric(x, y).item() for y in others]
    assert values == pytest.approx(REFERENCE[network], abs=1e-6)


def test_identical_images_give_zero_and_distortion_grows_it():
    metric = load_st_lpips(real_weights("alex"))
    x, _ = pattern()
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) - 0.5
    with torch.no_grad():
        values = [metric(x, (x + level * noise).clamp(0, 1)).item() for level in (0.0, 0.05, 0.2, 0.6)]
    assert values[0] == 0.0
    assert values[1] < values[2] < values[3]


def test_a_batch_gives_each_pair_its_own_distance_in_either_order():
    """forward runs x and y as one batch: its halves must not mix pairs or images."""
    metric = load_st_lpips(real_weights("alex"))
    x, others = pattern()
    first = torch.cat((x, x))
    second = torch.cat(others[:2])
    with torch.no_grad():
        batched = metric(first, second)
        alone = [metric(x, y).item() for y in others[:2]]
        swapped = metric(second, first)
    assert batched.shape == (2,) and batched[0] != batched[1]
    assert batched.tolist() == pytest.approx(alone, abs=1e-7)
    assert swapped.tolist() == pytest.approx(alone, abs=1e-7)

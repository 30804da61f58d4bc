"""VGG16 features: torchvision's key layout, loading, taps, and the errors for missing or wrong files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lbam.errors import LbamError
from lbam.features.vgg import LAYER_NAMES, LPIPS_LAYERS, VGG16Features, default_weights_path, load_vgg16

# torchvision's vgg16().features: conv indices and (out, in) channels.
TORCHVISION_CONVS = {
    0: (64, 3), 2: (64, 64),
    5: (128, 64), 7: (128, 128),
    10: (256, 128), 12: (256, 256), 14: (256, 256),
    17: (512, 256), 19: (512, 512), 21: (512, 512),
    24: (512, 512), 26: (512, 512), 28: (512, 512),
}  # fmt: skip
POOLS = (4, 9, 16, 23, 30)


def fake_torchvision_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state_dict with torchvision's VGG16 keys and shapes (classifier included), random values."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for index, (c_out, c_in) in TORCHVISION_CONVS.items():
        state[f"features.{index}.weight"] = (
            torch.randn((c_out, c_in, 3, 3), generator=g) * (2 / (9 * c_in)) ** 0.5
        )
        state[f"features.{index}.bias"] = torch.randn((c_out,), generator=g) * 0.1
    # Classifier keys exist in the real file and must be ignored (kept tiny here).
    state["classifier.0.weight"] = torch.zeros(2, 2)
    state["classifier.0.bias"] = torch.zeros(2)
    return state


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    state = fake_torchvision_state()
    path = tmp_path_factory.mktemp("vgg") / "vgg16-397923af.pth"
    torch.save(state, path)
    return path, state


def manual_vgg(x: torch.Tensor, state: dict[str, torch.Tensor], last_index: int) -> list[torch.Tensor]:
    """torchvision's features stack written out by hand; returns every module's output up to last_index."""
    outputs = []
    for index in range(last_index + 1):
        if index in TORCHVISION_CONVS:
            x = F.conv2d(x, state[f"features.{index}.weight"], state[f"features.{index}.bias"], padding=1)
        elif index in POOLS:
            x = F.max_pool2d(x, 2)
        else:
            x = F.relu(x)
        outputs.append(x)
    return outputs


def test_layer_names_follow_torchvision_indices() -> None:
    assert len(LAYER_NAMES) == 31
    assert [LAYER_NAMES[i] for i in POOLS] == ["pool1", "pool2", "pool3", "pool4", "pool5"]
    assert [LAYER_NAMES[i] for i in (3, 8, 15, 22, 29)] == list(LPIPS_LAYERS)
    assert [LAYER_NAMES[i] for i in TORCHVISION_CONVS] == [
        "conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
        "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3",
    ]  # fmt: skip


def test_state_dict_keys_are_torchvision_prefix() -> None:
    full = VGG16Features(layers=("pool5",)).state_dict()
    expected = {f"features.{i}.{p}": (c_out, c_in, 3, 3) if p == "weight" else (c_out,)
                for i, (c_out, c_in) in TORCHVISION_CONVS.items() for p in ("weight", "bias")}  # fmt: skip
    assert {k: tuple(v.shape) for k, v in full.items()} == expected
    # The default (pool1..3) builds only features[:17].
    assert max(int(k.split(".")[1]) for k in VGG16Features().state_dict()) == 14


def assert_taps_match(weights_file, layers, manual_indices, shape, seed) -> list[torch.Tensor]:
    """The loaded network's taps equal the hand-written stack's outputs at ``manual_indices``."""
    path, state = weights_file
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(seed))
    manual = manual_vgg(x, state, shape[2])
    taps = load_vgg16(path, layers=layers)(x)
    for tap, index in zip(taps, manual_indices, strict=True):
        torch.testing.assert_close(tap, manual[index], rtol=1e-5, atol=1e-5)
    return taps


def test_load_matches_manual_stack(weights_file: tuple[Path, dict[str, torch.Tensor]]) -> None:
    assert_taps_match(weights_file, ("pool1", "pool2", "pool3"), [4, 9, 16], (2, 3, 16, 24), seed=1)


def test_pool_shapes_at_64px(weights_file: tuple[Path, dict[str, torch.Tensor]]) -> None:
    vgg = load_vgg16(weights_file[0])
    shapes = [tuple(f.shape) for f in vgg(torch.rand(1, 3, 64, 64))]
    assert shapes == [(1, 64, 32, 32), (1, 128, 16, 16), (1, 256, 8, 8)]


def test_lpips_taps_and_order(weights_file: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path = weights_file[0]
    taps = assert_taps_match(weights_file, ("relu2_2", "relu1_2", "conv1_2"), [8, 3, 2], (1, 3, 8, 8), seed=2)
    # The conv tap is taken before the ReLU (no in-place ReLU corrupting it).
    assert (taps[2] < 0).any()
    shapes = [tuple(f.shape[1:]) for f in load_vgg16(path, layers=LPIPS_LAYERS)(torch.rand(1, 3, 32, 32))]
    assert shapes == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2)]


def test_frozen_but_differentiable(weights_file: tuple[Path, dict[str, torch.Tensor]]) -> None:
    vgg = load_vgg16(weights_file[0])
    assert all(not p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    sum(f.sum() for f in vgg(x)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


def test_unknown_layer_name() -> None:
    with pytest.raises(LbamError, match="pool6"):
        VGG16Features(layers=("pool6",))


def test_missing_file_names_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "vgg16-397923af.pth"
    with pytest.raises(LbamError, match="not found") as error:
        load_vgg16(missing)
    assert str(missing) in str(error.value)
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in str(error.value)


def test_default_path_uses_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # an earlier set_dir would override TORCH_HOME
    expected = tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    assert default_weights_path() == expected
    with pytest.raises(LbamError) as error:
        load_vgg16()
    assert str(expected) in str(error.value)
    # Once the file is there, the default path finds it.
    expected.parent.mkdir(parents=True)
    torch.save(fake_torchvision_state(), expected)
    assert isinstance(load_vgg16(), VGG16Features)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ("drop", "features.14.bias"),
        ("reshape", "features.10.weight"),
        ("add", "features.30.weight"),  # e.g. VGG19 has convs past index 28
    ],
)
def test_wrong_file_names_key(tmp_path: Path, change: str, key: str) -> None:
    state = fake_torchvision_state()
    if change == "drop":
        del state[key]
    elif change == "reshape":
        state[key] = torch.zeros(256, 128, 1, 1)
    else:
        state[key] = torch.zeros(512, 512, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(LbamError, match=key.replace(".", r"\.")) as error:
        load_vgg16(path, allow_random=True)  # a wrong file is an error even when random is allowed
    assert str(path) in str(error.value)


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "vgg16-397923af.pth"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(LbamError, match="cannot read"):
        load_vgg16(path)
    torch.save([1, 2, 3], path)
    with pytest.raises(LbamError, match="state_dict"):
        load_vgg16(path)


def test_allow_random_warns_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="lbam.features.vgg"),
        pytest.warns(UserWarning, match="RANDOM"),
    ):
        vgg = load_vgg16(tmp_path / "absent.pth", allow_random=True)
    assert any("meaningless" in record.getMessage() for record in caplog.records)
    assert [tuple(f.shape) for f in vgg(torch.rand(1, 3, 16, 16))][0] == (1, 64, 8, 8)

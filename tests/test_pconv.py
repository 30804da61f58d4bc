"""Partial convolution and the PConv U-Net baseline (Liu et al. 2018)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lbam.errors import LbamError
from lbam.model.pconv import PartialConv2d, PConvConfig, PConvUNet


def inputs(batch: int = 2, size: int = 128, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    known = torch.ones(batch, 1, size, size)
    known[:, :, size // 4 : size // 2, size // 8 : size // 2] = 0
    known[:, :, -size // 8 :, :] = 0
    return torch.rand(batch, 3, size, size, generator=g), known


# ---- the partial convolution ---------------------------------------------------------------------------


def test_partial_conv_renormalises_by_valid_count() -> None:
    conv = PartialConv2d(2, 1, kernel_size=3, padding=1, bias=True)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.fill_(0.5)
    x = torch.full((1, 2, 3, 3), 2.0)
    known = torch.zeros(1, 1, 3, 3)
    known[0, 0, 0, 0] = 1  # one valid pixel (both channels)
    out, new_mask = conv(x, known)
    # Centre window: 2 valid inputs of 18, each 2.0 * weight 1 -> 4 * 18 / 2 = 36, + bias.
    assert out[0, 0, 1, 1].item() == pytest.approx(36.5)
    # Window at (0, 0) with zero padding: still 2 of 18 valid (padding counts as hole): same value.
    assert out[0, 0, 0, 0].item() == pytest.approx(36.5)
    # Windows that see no valid input give 0 and a 0 mask; the others a 1.
    assert out[0, 0, 2, 2].item() == 0.0
    expected_mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert torch.equal(new_mask[0, 0], expected_mask)


def test_partial_conv_full_mask_is_plain_conv() -> None:
    conv = PartialConv2d(3, 4, kernel_size=3, padding=1)
    x = torch.rand(1, 3, 8, 8)
    out, new_mask = conv(x, torch.ones(1, 1, 8, 8))
    inner = nn.functional.conv2d(x, conv.weight, conv.bias, padding=1)
    torch.testing.assert_close(out[..., 1:-1, 1:-1], inner[..., 1:-1, 1:-1])
    # At the border the zero padding counts as missing and is renormalised away.
    torch.testing.assert_close(out[0, :, 0, 0], (inner[0, :, 0, 0] - conv.bias) * 9 / 4 + conv.bias)
    assert torch.all(new_mask == 1)


def test_partial_conv_per_channel_mask() -> None:
    conv = PartialConv2d(2, 1, kernel_size=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.tensor([3.0, 5.0]).view(1, 2, 1, 1)
    out, new_mask = conv(x, torch.tensor([1.0, 0.0]).view(1, 2, 1, 1))
    assert out.item() == pytest.approx(3.0 * 2 / 1) and new_mask.item() == 1.0


# ---- the U-Net -----------------------------------------------------------------------------------------


def test_config_and_layout() -> None:
    model = PConvUNet(width=0.0625)
    assert model.config == PConvConfig(width=0.0625, layers=7)
    assert model.size_multiple == 128
    assert [block.conv.kernel_size[0] for block in model.encoder] == [7, 5, 5, 3, 3, 3, 3]
    assert [block.conv.stride[0] for block in model.encoder] == [2] * 7
    assert [block.conv.out_channels for block in PConvUNet(width=1.0).encoder] == [
        64,
        128,
        256,
        512,
        512,
        512,
        512,
    ]
    assert isinstance(model.encoder[0].norm, nn.Identity) and isinstance(model.encoder[0].activation, nn.ReLU)
    assert all(isinstance(block.norm, nn.BatchNorm2d) for block in model.encoder[1:])
    assert len(model.decoder) == 7
    assert all(isinstance(block.activation, nn.LeakyReLU) for block in model.decoder[:-1])
    head = model.decoder[-1]
    assert head.conv.in_channels == 4 + 3 and head.conv.out_channels == 3
    assert isinstance(head.norm, nn.Identity) and isinstance(head.activation, nn.Identity)
    assert "encoder.0.conv.weight" in model.state_dict() and "decoder.6.conv.bias" in model.state_dict()
    assert PConvUNet(width=0.0625, layers=8).size_multiple == 256


@pytest.mark.parametrize("size", [(128, 128), (128, 256)])
def test_forward_shape_and_range(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = PConvUNet(width=0.0625)
    image, known = torch.rand(2, 3, *size), torch.ones(2, 1, *size)
    known[..., 10:60, 20:90] = 0
    out = model(image, known)
    assert out.shape == (2, 3, *size)
    assert out.min() >= 0 and out.max() <= 1 and torch.isfinite(out).all()


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_hole_content_never_matters(mode: str) -> None:
    torch.manual_seed(0)
    model = PConvUNet(width=0.0625)
    model.train(mode == "train")
    image, known = inputs()
    noise = torch.rand(image.shape, generator=torch.Generator().manual_seed(9)) * 100
    other = image * known + noise * (1 - known)
    with torch.no_grad():
        a, b = model(image, known), model(other, known)
    assert torch.equal(a, b)
    # ...while changing a known pixel does change the output.
    other[:, :, 0, 0] += 0.5
    with torch.no_grad():
        assert not torch.equal(model(image, known), model(other, known))


def test_mask_update_through_encoder() -> None:
    model = PConvUNet(width=0.0625).eval()  # a batch of one: the 1x1 deepest level needs eval batch norm
    known = torch.ones(1, 1, 128, 128)
    known[..., 32:96, 32:96] = 0  # a 64x64 hole
    x, mask, masks = torch.rand(1, 3, 128, 128), known, []
    for level in model.encoder:
        x, mask = level(x, mask)
        masks.append(mask)
        assert torch.all((mask == 0) | (mask == 1))
    holes = [int((m == 0).sum()) for m in masks]
    # Level 1 (7x7, stride 2, pad 3): output pixel i sees inputs 2i-3..2i+3; hole where all in 32..95.
    assert holes[0] == (46 - 18 + 1) ** 2
    assert all(later <= earlier for earlier, later in zip(holes[:-1], holes[1:], strict=True))
    assert holes[-1] == 0  # the hole has closed by the deepest level


def test_gradients_flow_and_not_into_hole_pixels() -> None:
    torch.manual_seed(0)
    model = PConvUNet(width=0.0625)
    image, known = inputs()
    image.requires_grad_(True)
    model(image, known).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert (
        model.encoder[0].conv.weight.grad.abs().sum() > 0
        and model.decoder[-1].conv.weight.grad.abs().sum() > 0
    )
    hole = (known == 0).expand_as(image)
    assert image.grad[hole].abs().max() == 0 and image.grad[~hole].abs().sum() > 0


def test_freeze_encoder_norm() -> None:
    model = PConvUNet(width=0.0625)
    model.freeze_encoder_norm()
    model.train()
    encoder_norms = [block.norm for block in model.encoder[1:]]
    assert all(not n.training and not n.weight.requires_grad for n in encoder_norms)
    assert all(block.norm.training and block.norm.weight.requires_grad for block in model.decoder[:-1])
    before = encoder_norms[0].running_mean.clone()
    model(*inputs())
    assert torch.equal(encoder_norms[0].running_mean, before)  # running statistics stay fixed
    assert model.encoder[0].conv.weight.requires_grad


def test_rejects_bad_arguments() -> None:
    with pytest.raises(LbamError, match="multiples of 128"):
        PConvUNet(width=0.0625)(torch.rand(1, 3, 100, 128), torch.ones(1, 1, 100, 128))
    with pytest.raises(ValueError, match="width"):
        PConvUNet(width=0)
    with pytest.raises(ValueError, match="layers"):
        PConvUNet(layers=2)

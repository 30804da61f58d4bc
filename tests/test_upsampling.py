"""Transposed convolutions tied to nearest upsampling + a 3x3 conv (lbam.model.upsampling)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lbam.model.lbam import LBAMGenerator
from lbam.model.pconv import PConvUNet
from lbam.model.upsampling import (
    constrain_upsampling_,
    project_to_resize_conv,
    resize_kernel_from_transposed,
    transposed_from_resize_kernel,
    upsampling_layers,
)


def _upsample(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The LBAM decoder's upsampling: 4x4 transposed conv, stride 2, padding 1; weight (in, out, 4, 4)."""
    return F.conv_transpose2d(x, weight, stride=2, padding=1)


@pytest.mark.parametrize("size", [(1, 1), (5, 8), (7, 9)])
def test_tied_kernel_is_nearest_upsampling_then_a_3x3_conv_up_to_the_borders(size):
    generator = torch.Generator().manual_seed(0)
    kernel = torch.randn(5, 6, 3, 3, generator=generator, dtype=torch.float64)  # conv2d: (out, in)
    x = torch.randn(2, 6, *size, generator=generator, dtype=torch.float64)
    expected = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), kernel, padding=1)
    tied = transposed_from_resize_kernel(kernel.transpose(0, 1))
    assert tied.shape == (6, 5, 4, 4)
    torch.testing.assert_close(_upsample(x, tied), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(
        resize_kernel_from_transposed(tied), kernel.transpose(0, 1), rtol=0, atol=1e-12
    )


def test_projection_removes_the_checkerboard_of_a_flat_input():
    weight = torch.randn(8, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    flat = torch.ones(1, 8, 6, 6)
    inner = (..., slice(1, -1), slice(1, -1))  # away from the zero padding
    free = _upsample(flat, weight)[inner]
    tied = _upsample(flat, project_to_resize_conv(weight))[inner]
    assert free.std(dim=(-2, -1)).min() > 0.5  # free phases: a checkerboard
    assert tied.std(dim=(-2, -1)).max() < 1e-5
    # and a flat input keeps its level: each channel's mean output is the 3x3 kernel's sum
    sums = resize_kernel_from_transposed(project_to_resize_conv(weight)).sum(dim=(0, -2, -1))
    torch.testing.assert_close(tied.mean(dim=(-2, -1))[0], sums, rtol=1e-5, atol=1e-5)


def test_projection_is_orthogonal_and_keeps_tied_kernels():
    generator = torch.Generator().manual_seed(2)
    weight = torch.randn(3, 2, 4, 4, generator=generator, dtype=torch.float64)
    projected = project_to_resize_conv(weight)
    torch.testing.assert_close(project_to_resize_conv(projected), projected, rtol=0, atol=1e-12)
    # least squares: what is removed is orthogonal to every tied kernel
    other = transposed_from_resize_kernel(torch.randn(3, 2, 3, 3, generator=generator, dtype=torch.float64))
    assert abs(float(((weight - projected) * other).sum())) < 1e-10
    assert float((weight - projected).abs().max()) > 0.1  # a random kernel is not tied


def test_constrain_ties_every_upsampling_layer_of_lbam_in_place():
    model = LBAMGenerator(width=1 / 16)
    before = {name: p.clone() for name, p in model.state_dict().items()}
    assert constrain_upsampling_(model) == 7  # six decoder levels and the head
    after = model.state_dict()
    assert after.keys() == before.keys() and all(after[k].shape == before[k].shape for k in after)
    tied = {id(layer.weight) for layer in upsampling_layers(model)}
    for name, parameter in model.named_parameters():
        if id(parameter) in tied:
            assert not torch.equal(parameter, before[name])
            torch.testing.assert_close(project_to_resize_conv(parameter), parameter, rtol=0, atol=1e-6)
        else:
            assert torch.equal(parameter, before[name]), name


def test_constrain_refuses_a_network_without_transposed_convolutions():
    with pytest.raises(ValueError, match="PConvUNet has no 4x4 stride-2 transposed convolutions"):
        constrain_upsampling_(PConvUNet(width=1 / 16))

"""Transposed convolutions constrained to nearest-neighbour upsampling followed by a 3x3 convolution.

A 4x4 stride-2 transposed convolution (padding 1), every upsampling layer of the LBAM decoder,
computes each of the four output phases (even/odd row x even/odd column) with its own 2x2 kernel.
When the phases' kernels sum to different values, a flat input comes out as a checkerboard (Odena
et al., "Deconvolution and Checkerboard Artifacts", Distill 2016); through the decoder's six levels a
checkerboard at the 32 px level becomes an 8 px lattice in a 256 px output.

Nearest upsampling x2 followed by a 3x3 convolution (padding 1) is the same operation with the
kernel tied: along one axis, the transposed kernel ``w[0..3]`` equals ``A @ v`` for the 3-tap kernel
``v`` (below), so both phases sum to ``v.sum()`` and a flat input stays flat. The two agree at the
borders as well (both read zeros outside the input), so the tied kernel can be written back as an
ordinary 4x4 transposed kernel: a generator trained under the constraint keeps the authors' layer
layout, weight files and export path.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# model.upsampling of a training run: the authors' free kernels, or kernels tied as described above.
UPSAMPLING = ("transposed", "resize_conv")

# Row t of the 4-tap transposed kernel as a sum of the 3x3 kernel's taps (-1, 0, +1) along one axis.
# Output 2i reads input i-1 through t=3 and input i through t=1; output 2i+1 reads i through t=2 and
# i+1 through t=0. After nearest upsampling, tap -1 of output 2i reads input i-1 and taps 0, +1 read
# input i; output 2i+1 reads input i through taps -1, 0 and input i+1 through tap +1.
_TIE = torch.tensor(
    [
        [0.0, 0.0, 1.0],
        [0.0, 1.0, 1.0],
        [1.0, 1.0, 0.0],
        [1.0, 0.0, 0.0],
    ],
    dtype=torch.float64,
)


def transposed_from_resize_kernel(kernel: Tensor) -> Tensor:
    """The 4x4 transposed-conv kernel equal to nearest upsampling x2 then a 3x3 convolution.

    Args:
        kernel: (..., 3, 3) cross-correlation kernel of the 3x3 convolution.

    Returns:
        (..., 4, 4) kernel ``w`` with ``conv_transpose2d(x, w, stride=2, padding=1)`` equal to
        ``conv2d(upsample_nearest(x, 2), kernel, padding=1)`` (channel axes as in ``kernel``).
    """
    tie = _TIE.to(kernel.device, kernel.dtype)
    return tie @ kernel @ tie.T


def resize_kernel_from_transposed(weight: Tensor) -> Tensor:
    """The 3x3 kernel whose tied 4x4 form is nearest (least squares) to ``weight`` (..., 4, 4)."""
    inverse = torch.linalg.pinv(_TIE).to(weight.device, torch.float64)
    return (inverse @ weight.double() @ inverse.T).to(weight.dtype)


def project_to_resize_conv(weight: Tensor) -> Tensor:
    """The tied kernel nearest to ``weight`` (..., 4, 4): the orthogonal projection, in float64.

    Computed as one 4x4 projector applied on both sides, so that a kernel already tied comes back
    equal to within float rounding (a few ulps), not rebuilt from its 3x3 form.
    """
    tie = _TIE.to(weight.device)
    projector = tie @ torch.linalg.pinv(tie)
    return (projector @ weight.double() @ projector.T).to(weight.dtype)


def upsampling_layers(module: nn.Module) -> list[nn.ConvTranspose2d]:
    """The 4x4, stride-2, padding-1 transposed convolutions of ``module`` (the LBAM decoder and head)."""
    return [
        layer
        for layer in module.modules()
        if isinstance(layer, nn.ConvTranspose2d)
        and layer.kernel_size == (4, 4)
        and layer.stride == (2, 2)
        and layer.padding == (1, 1)
        and layer.groups == 1
        and layer.dilation == (1, 1)
        and layer.output_padding == (0, 0)
    ]


@torch.no_grad()
def constrain_upsampling_(module: nn.Module) -> int:
    """Project every upsampling layer of ``module`` onto the tied kernels, in place.

    Call once on the initial weights and after every optimiser step: training then searches only
    the nearest-upsample + 3x3 conv networks (projected gradient descent). Returns the number of
    layers projected; ValueError when ``module`` has none (e.g. the partial-conv U-Net).
    """
    layers = upsampling_layers(module)
    if not layers:
        raise ValueError(f"{type(module).__name__} has no 4x4 stride-2 transposed convolutions to constrain")
    for layer in layers:
        layer.weight.copy_(project_to_resize_conv(layer.weight))
    return len(layers)

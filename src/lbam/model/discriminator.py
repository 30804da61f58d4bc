"""The critics trained against the generator (WGAN-GP): LBAM's two-column critic and a patch critic.

The two-column critic (Xie et al. 2019):

One column looks at the known region (``image * known_mask``), the other at the filled region
(``image * (1 - known_mask)``); their final features are concatenated and fused into one score
per sample. There is no sigmoid: the score is a Wasserstein critic value (see
:mod:`lbam.losses.adversarial`).

Normalisation: the paper's critic has batch norm after every column conv but the first
(``norm="batch"``, the default). The WGAN-GP paper advises against batch norm in the critic,
because the gradient penalty is defined per sample and batch statistics mix samples; ``"none"``
and ``"instance"`` (affine instance norm, as the WGAN-GP paper suggests instead) are offered.

The patch critic (not in LBAM; a PatchGAN as Isola et al. 2017, which DeepFill v2 and LaMa use
against inpainting blur) scores every patch of the composite and averages the scores of the
patches that overlap the hole. One score per image says little about texture; one per patch says
where the fill looks synthetic. Its downsampling is anti-aliased (a binomial blur before each
stride-2 step, Zhang 2019): with plain 4x4 stride-2 convs its input gradient repeated every 8 px,
and a generator trained against it drew an 8 px lattice into large fills (1.4 grey levels after
1,000 steps, ``benchmarks/grid_artifacts.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lbam.layers.blur import BlurDownsample

COLUMN_CHANNELS = (64, 128, 256, 512, 512, 512)
PATCH_CHANNELS = (64, 128, 256, 512)
NORMS = ("batch", "none", "instance")
CRITICS = ("two_column", "patch")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def _check_settings(width: float, norm: str) -> None:
    if not width > 0:
        raise ValueError(f"width must be positive, got {width}")
    if norm not in NORMS:
        raise ValueError(f"critic norm must be one of {', '.join(NORMS)}, got {norm!r}")


def _check_size(image: Tensor, multiple: int, min_size: int) -> None:
    height, width = image.shape[-2:]
    if height % multiple or width % multiple or min(height, width) < min_size:
        raise ValueError(
            f"the critic needs H and W to be multiples of {multiple} and at least {min_size}, "
            f"got {height}x{width}"
        )


class DownBlock(nn.Module):
    """4x4 stride-2 conv (with bias), optional normalisation, LeakyReLU 0.2; halves H and W."""

    def __init__(self, in_channels: int, out_channels: int, norm: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1)
        self.norm = _norm(norm, out_channels)
        self.activation = nn.LeakyReLU(0.2)

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.norm(self.conv(x)))


def column(width: float, norm: str) -> nn.Sequential:
    """Six :class:`DownBlock` s, 3 -> 64 -> 128 -> 256 -> 512 -> 512 -> 512 channels times ``width``."""
    channels = [3, *(max(1, round(c * width)) for c in COLUMN_CHANNELS)]
    return nn.Sequential(
        *(DownBlock(channels[i], channels[i + 1], norm if i > 0 else "none") for i in range(6))
    )


class TwoColumnDiscriminator(nn.Module):
    """LBAM's two-column critic.

    Args:
        width: multiplies every channel count (1.0 = the paper's 64..512).
        norm: ``"batch"`` (paper), ``"none"`` or ``"instance"``; never on the first conv.

    ``forward(image, known_mask) -> scores``:
        image: (B, 3, H, W) in [0, 1] (ground truth, output or composite).
        known_mask: (B, 1, H, W) or (B, 3, H, W), 1 = known pixel, 0 = hole.
        H and W: multiples of 64 (:attr:`size_multiple`), at least 128.
        scores: (B,) unbounded floats, higher = more real.

    At 256 px the columns end at 4x4 and the fusing 4x4 conv (no padding) gives exactly one value,
    as in the paper. Larger inputs give a map of values, which is averaged. At 128 px the columns
    end at 2x2, which is zero-padded to 4x4 first (generally: each side is padded up to 4).
    """

    size_multiple = 64
    min_size = 128
    sees_composite = False  # the paper's critic judges the raw output

    def __init__(self, width: float = 1.0, norm: str = "batch") -> None:
        super().__init__()
        _check_settings(width, norm)
        self.width = float(width)
        self.norm = norm
        self.known_column = column(width, norm)
        self.hole_column = column(width, norm)
        features = 2 * max(1, round(COLUMN_CHANNELS[-1] * width))
        self.fusion = nn.Conv2d(features, 1, kernel_size=4)

    def forward(self, image: Tensor, known_mask: Tensor) -> Tensor:
        _check_size(image, self.size_multiple, self.min_size)
        known_mask = known_mask.to(image.dtype)
        x = torch.cat((self.known_column(image * known_mask), self.hole_column(image * (1 - known_mask))), 1)
        pad_h, pad_w = max(0, 4 - x.shape[-2]), max(0, 4 - x.shape[-1])
        if pad_h or pad_w:
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        return self.fusion(x).mean(dim=(1, 2, 3))


class BlurDownBlock(nn.Module):
    """3x3 conv, optional normalisation, LeakyReLU 0.2, then a blurred stride-2 step; halves H and W."""

    def __init__(self, in_channels: int, out_channels: int, norm: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm = _norm(norm, out_channels)
        self.activation = nn.LeakyReLU(0.2)
        self.down = BlurDownsample(out_channels, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(self.activation(self.norm(self.conv(x))))


class PatchDiscriminator(nn.Module):
    """A PatchGAN critic that scores the hole's patches.

    Args:
        width: multiplies the channel counts 64, 128, 256, 512.
        norm: as :class:`TwoColumnDiscriminator`; never on the first conv.

    ``forward(image, known_mask) -> scores``:
        image: (B, 3, H, W) in [0, 1]: the ground truth, or the composite (known pixels from the
            ground truth: :attr:`sees_composite`), so that only the fill can tell them apart.
        known_mask: (B, 1, H, W), 1 = known pixel, 0 = hole; also an input channel, so the critic
            knows which pixels to judge.
        H and W: multiples of 8, at least 32.
        scores: (B,) unbounded floats, higher = more real: the mean of the patch scores weighted by
            how much of each patch's centre cell is hole. A sample without a hole scores 0.

    Three :class:`BlurDownBlock` s (H/8 x W/8), then two 4x4 convs at stride 1: each score sees
    about 77x77 pixels.
    """

    size_multiple = 8
    min_size = 32
    sees_composite = True

    def __init__(self, width: float = 1.0, norm: str = "none") -> None:
        super().__init__()
        _check_settings(width, norm)
        self.width = float(width)
        self.norm = norm
        channels = [4, *(max(1, round(c * width)) for c in PATCH_CHANNELS)]
        blocks = [BlurDownBlock(channels[i], channels[i + 1], norm if i > 0 else "none") for i in range(3)]
        self.layers = nn.Sequential(
            *blocks,
            nn.Conv2d(channels[3], channels[4], kernel_size=4, padding=1),
            _norm(norm, channels[4]),
            nn.LeakyReLU(0.2),
            nn.Conv2d(channels[4], 1, kernel_size=4, padding=1),
        )

    def forward(self, image: Tensor, known_mask: Tensor) -> Tensor:
        _check_size(image, self.size_multiple, self.min_size)
        known_mask = known_mask[:, :1].to(image.dtype)
        patch_scores = self.layers(torch.cat((image, known_mask), 1))
        hole_share = F.interpolate(1 - known_mask, size=patch_scores.shape[-2:], mode="area")
        weighted = (patch_scores * hole_share).sum(dim=(1, 2, 3))
        return weighted / hole_share.sum(dim=(1, 2, 3)).clamp_min(1e-6)


def build_critic(kind: str, width: float, norm: str) -> nn.Module:
    """The critic named ``kind`` (one of :data:`CRITICS`)."""
    if kind == "two_column":
        return TwoColumnDiscriminator(width=width, norm=norm)
    if kind == "patch":
        return PatchDiscriminator(width=width, norm=norm)
    raise ValueError(f"critic must be one of {', '.join(CRITICS)}, got {kind!r}")

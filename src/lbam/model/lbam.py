"""The LBAM generator: a U-Net whose encoder and decoder are re-weighted by learned attention maps.

Xie et al., "Image Inpainting with Learnable Bidirectional Attention Maps", ICCV 2019.

Two variants:

- ``released`` (default): what the authors' released Paris StreetView / Places2 weights load into:
  no normalisation, last activation ``(tanh(y) + 1) / 2``.
- ``paper``: batch norm after the attention re-weighting in encoder levels 2..7 and decoder levels
  1..6, as the paper describes; the last activation is selectable (the earliest code used ``abs(tanh)``).

``width`` scales every channel count; 1.0 is the authors' 64..512 channels.

``attention`` selects the ablations of the paper's section 4 (the authors' weights are
``bidirectional``):

- ``bidirectional`` (default): learned forward maps in the encoder, learned reverse maps from the
  hole mask in the decoder: the full model.
- ``forward``: no reverse branch; the decoder re-weights only the encoder skip by the forward map,
  the upsampled half sees an all-ones map.
- ``fixed``: both branches, but every mask convolution is a fixed box filter (the fraction of known,
  or of missing, pixels in the window) and the Gaussians keep fixed parameters: the attention is a
  hand-made function of the mask, as in partial convolution, and nothing of it is learned.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lbam.defaults import DEFAULT_TRAIN_SIZE
from lbam.model.card import Generator
from lbam.model.shapes import check_multiple

ENCODER_CHANNELS = (64, 128, 256, 512, 512, 512, 512)
GAUSSIAN_INIT_FORWARD = (1.1, 2.0, 1.0, 1.0)  # a, mu, sigma1, sigma2
GAUSSIAN_INIT_REVERSE = (1.1, 1.0, 0.5, 0.5)
MASK_UPDATE_EXPONENT = 0.8
LAST_ACTIVATIONS = ("tanh01", "abs_tanh")
VARIANTS = ("released", "paper")
ATTENTIONS = ("bidirectional", "forward", "fixed")
# The fixed Gaussian of attention="fixed": 1.01 on fully known windows, exp(-2) on empty ones.
GAUSSIAN_FIXED = (1.01, 1.0, 2.0, 2.0)
# Channel multipliers lbam builds: 1/64 (a 1-channel toy) to 2 (4x the authors' parameters).
WIDTH_RANGE = (1 / 64, 2.0)


def asymmetric_gaussian(x: Tensor, a: Tensor, mu: Tensor, sigma1: Tensor, sigma2: Tensor) -> Tensor:
    """The learnable asymmetric Gaussian ``gA`` that turns mask features into an attention map.

    ``a * exp(-sigma1 * (x - mu)^2)`` left of ``mu``, ``1 + (a - 1) * exp(-sigma2 * (x - mu)^2)`` from
    ``mu`` on. The parameters are clamped to the authors' ranges here, as a pure function: the authors
    clamp the stored values in place on every call, which has the same forward result but breaks
    tracing, compilation and export.

    Args:
        x: mask-convolution output, any shape.
        a, mu, sigma1, sigma2: scalar tensors (unclamped stored values).

    Returns:
        Tensor of ``x``'s shape, values in (0, 6].
    """
    a = a.clamp(1.01, 6.0)
    mu = mu.clamp(0.1, 3.0)
    sigma1 = sigma1.clamp(0.5, 2.0)
    sigma2 = sigma2.clamp(0.5, 2.0)
    squared = (x - mu) ** 2
    left = a * torch.exp(-sigma1 * squared)
    right = 1 + (a - 1) * torch.exp(-sigma2 * squared)
    return torch.where(x < mu, left, right)


def mask_update(x: Tensor) -> Tensor:
    """The soft mask update ``gM(x) = relu(x) ** 0.8`` (the exponent is a constant, not learned)."""
    return F.relu(x).pow(MASK_UPDATE_EXPONENT)


class AsymmetricGaussian(nn.Module):
    """Holds the four scalar parameters of :func:`asymmetric_gaussian` (frozen if not ``learnable``)."""

    def __init__(self, a: float, mu: float, sigma1: float, sigma2: float, learnable: bool = True) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a), requires_grad=learnable)
        self.mu = nn.Parameter(torch.tensor(mu), requires_grad=learnable)
        self.sigma1 = nn.Parameter(torch.tensor(sigma1), requires_grad=learnable)
        self.sigma2 = nn.Parameter(torch.tensor(sigma2), requires_grad=learnable)

    def forward(self, x: Tensor) -> Tensor:
        return asymmetric_gaussian(x, self.a, self.mu, self.sigma1, self.sigma2)


def down_conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    """4x4 stride-2 convolution without bias: every convolution of the LBAM encoder."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1, bias=False)


def mask_conv(in_channels: int, out_channels: int, learnable: bool) -> nn.Conv2d:
    """The convolution that turns a mask into attention features: learned, or a frozen box filter.

    The frozen one averages its whole 4x4 window over every input channel, so for a mask in [0, 1]
    it gives the fraction of (soft) ones in the window, in [0, 1].
    """
    conv = down_conv(in_channels, out_channels)
    if not learnable:
        nn.init.constant_(conv.weight, 1.0 / (in_channels * 16))
        conv.weight.requires_grad_(False)
    return conv


def up_conv(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """4x4 stride-2 transposed convolution without bias: every convolution of the decoder."""
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1, bias=False)


class EncoderLevel(nn.Module):
    """One forward-attention level: halves H and W.

    The feature convolution is re-weighted by an attention map computed from the (soft) known mask
    by a learned convolution and :func:`asymmetric_gaussian`; the mask moves on through
    :func:`mask_update`.
    """

    def __init__(
        self,
        in_channels: int,
        mask_channels: int,
        out_channels: int,
        batch_norm: bool,
        learnable: bool = True,
    ) -> None:
        super().__init__()
        self.conv = down_conv(in_channels, out_channels)
        self.mask_conv = mask_conv(mask_channels, out_channels, learnable)
        gaussian = GAUSSIAN_INIT_FORWARD if learnable else GAUSSIAN_FIXED
        self.attention = AsymmetricGaussian(*gaussian, learnable=learnable)
        self.norm = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()

    def forward(self, x: Tensor, known: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Returns ``(x_next, known_next, skip, attention_map)``; ``skip`` is the raw conv output."""
        features = self.conv(x)
        mask_features = self.mask_conv(known)
        attention_map = self.attention(mask_features)
        x_next = F.leaky_relu(self.norm(features * attention_map), 0.2)
        return x_next, mask_update(mask_features), features, attention_map


class ReverseLevel(nn.Module):
    """One level of the reverse branch, run on the hole mask ``1 - known``; halves H and W."""

    def __init__(self, in_channels: int, out_channels: int, learnable: bool = True) -> None:
        super().__init__()
        self.mask_conv = mask_conv(in_channels, out_channels, learnable)
        gaussian = GAUSSIAN_INIT_REVERSE if learnable else GAUSSIAN_FIXED
        self.attention = AsymmetricGaussian(*gaussian, learnable=learnable)

    def forward(self, hole: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(attention_map, hole_next)``."""
        mask_features = self.mask_conv(hole)
        return self.attention(mask_features), mask_update(mask_features)


class DecoderLevel(nn.Module):
    """One decoder level: upsample, concatenate the encoder skip, re-weight by both attention maps."""

    def __init__(self, in_channels: int, out_channels: int, concat_channels: int, batch_norm: bool) -> None:
        super().__init__()
        self.deconv = up_conv(in_channels, out_channels)
        self.norm = nn.BatchNorm2d(concat_channels) if batch_norm else nn.Identity()

    def forward(self, y: Tensor, skip: Tensor, attention_maps: Tensor) -> Tensor:
        """``attention_maps`` is ``cat(forward_map, reverse_map)``, matching ``cat(skip, deconv(y))``."""
        y = torch.cat((skip, self.deconv(y)), dim=1) * attention_maps
        return F.leaky_relu(self.norm(y), 0.2)


@dataclass(frozen=True)
class LBAMConfig:
    """Everything needed to rebuild an :class:`LBAMGenerator`; stored in our weight files."""

    architecture: ClassVar[str] = "lbam"  # the registry name; not a constructor argument
    variant: str = "released"
    width: float = 1.0
    last_activation: str = "tanh01"
    attention: str = "bidirectional"  # bidirectional | forward | fixed: see the module docstring

    def __post_init__(self) -> None:
        # Checked before any layer exists: a crafted file declaring width 40 must not allocate 7 GB.
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.last_activation not in LAST_ACTIVATIONS:
            raise ValueError(
                f"last_activation must be one of {LAST_ACTIVATIONS}, got {self.last_activation!r}"
            )
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {self.attention!r}")
        check_width(self.width)

    def to_dict(self) -> dict:
        """``{"architecture": ..., **fields}``: what weight files store (see lbam.model.registry)."""
        return {"architecture": self.architecture, **asdict(self)}


def check_width(width: float) -> None:
    """ValueError unless ``width`` is a channel multiplier in :data:`WIDTH_RANGE`."""
    low, high = WIDTH_RANGE
    if isinstance(width, bool) or not isinstance(width, int | float) or not low <= width <= high:
        raise ValueError(f"width must be a number from {low:g} to {high:g}, got {width!r}")


def scaled_channels(width: float) -> list[int]:
    """Encoder channel counts for a width multiplier (at least 1 channel each)."""
    return [max(1, round(c * width)) for c in ENCODER_CHANNELS]


class LBAMGenerator(Generator):
    """The LBAM generator.

    ``forward(image, known_mask)``:
        image: (B, 3, H, W) float in [0, 1].
        known_mask: (B, 1, H, W) float, 1 = known pixel, 0 = hole (soft values allowed).
        H and W must be multiples of :attr:`size_multiple` (128: seven stride-2 levels).

    Returns the raw generator output (B, 3, H, W) in [0, 1], not composited with the known pixels.
    """

    size_multiple = 128

    def __init__(
        self,
        variant: str = "released",
        width: float = 1.0,
        last_activation: str = "tanh01",
        attention: str = "bidirectional",
        train_size: int = DEFAULT_TRAIN_SIZE,
    ) -> None:
        super().__init__(train_size)
        self.config = LBAMConfig(
            variant=variant, width=float(width), last_activation=last_activation, attention=attention
        )
        paper = variant == "paper"
        learnable = attention != "fixed"
        c = scaled_channels(width)

        encoder_in = [4, *c[:-1]]
        mask_in = [3, *c[:-1]]
        self.encoder = nn.ModuleList(
            EncoderLevel(encoder_in[i], mask_in[i], c[i], paper and i > 0, learnable) for i in range(7)
        )
        reverse_in = [3, *c[:5]]
        levels = 0 if attention == "forward" else 6
        self.reverse = nn.ModuleList(ReverseLevel(reverse_in[i], c[i], learnable) for i in range(levels))
        # Decoder level k (0-based) pairs with encoder level 5 - k (skip and both attention maps).
        decoder = []
        in_channels = c[6]
        for k in range(6):
            skip_level = 5 - k
            out_channels = c[skip_level]
            decoder.append(DecoderLevel(in_channels, out_channels, 2 * out_channels, batch_norm=paper))
            in_channels = 2 * out_channels
        self.decoder = nn.ModuleList(decoder)
        self.head = up_conv(in_channels, 3)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The release's initialisation: N(0, 0.02) for every conv except the last transposed conv."""
        if next(self.parameters()).is_meta:
            return  # nothing to draw for a shape-only skeleton; torch's init on meta imports its compiler (2 s)
        for module in self.modules():
            # the frozen box filters of attention="fixed" keep their values
            drawn = isinstance(module, nn.Conv2d | nn.ConvTranspose2d) and module.weight.requires_grad
            if drawn and module is not self.head:
                nn.init.normal_(module.weight, 0.0, 0.02)

    def forward(self, image: Tensor, known_mask: Tensor) -> Tensor:
        check_multiple("LBAM", image, self.size_multiple)
        known = known_mask.expand(-1, 3, -1, -1)
        x = torch.cat((image * known_mask, known_mask), dim=1)

        skips, forward_maps = [], []
        for level in self.encoder:
            x, known, skip, attention_map = level(x, known)
            skips.append(skip)
            forward_maps.append(attention_map)

        reverse_maps = self._reverse_maps(known_mask, forward_maps)

        y = x  # the output of the deepest encoder level; its skip and map are not used
        for k, level in enumerate(self.decoder):
            i = 5 - k
            y = level(y, skips[i], torch.cat((forward_maps[i], reverse_maps[i]), dim=1))

        y = torch.tanh(self.head(y))
        if self.config.last_activation == "abs_tanh":
            return y.abs()
        return (y + 1) / 2

    def _reverse_maps(self, known_mask: Tensor, forward_maps: list[Tensor]) -> list[Tensor]:
        """The decoder's reverse attention maps, one per level; all ones without a reverse branch."""
        if not self.reverse:
            return [torch.ones_like(m) for m in forward_maps[:6]]
        hole = 1 - known_mask.expand(-1, 3, -1, -1)
        reverse_maps = []
        for level in self.reverse:
            reverse_map, hole = level(hole)
            reverse_maps.append(reverse_map)
        return reverse_maps

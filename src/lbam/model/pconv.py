"""The partial-convolution U-Net (Liu et al., "Image Inpainting for Irregular Holes Using Partial
Convolutions", ECCV 2018): the main baseline of the LBAM paper.

A partial convolution only looks at valid (known) inputs and rescales by how many it saw:

``out = W^T (X * M) * sum(1) / sum(M) + b`` where ``sum(M) > 0``, else 0,
``M' = 1`` where ``sum(M) > 0``, else 0 (the hard mask update),

with the sums over the kernel window *and* the input channels. LBAM's learned attention replaces
exactly this fixed rule.

Architecture (``layers`` = 7 here; Liu et al. used 8 at 512 px):

- encoder level i: partial conv, stride 2, kernels 7, 5, 5, 3, 3, 3, 3 (, 3 ...), channels
  64, 128, 256, 512, 512, 512, 512 (, 512 ...), batch norm on all levels but the first, ReLU;
- decoder level i (deepest first): nearest upsampling x2 of features *and* mask, concatenation with
  the encoder's features and mask of the same size, partial conv 3x3, batch norm, LeakyReLU 0.2;
  the last one concatenates the input image and its mask and has no norm or activation.

Liu et al.'s last layer is linear; here ``(tanh(y) + 1) / 2`` maps it to (0, 1), the same output
activation as LBAM's, so both train with the same losses and pipeline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lbam.defaults import DEFAULT_TRAIN_SIZE
from lbam.model.card import Generator
from lbam.model.lbam import check_width
from lbam.model.shapes import check_multiple

ENCODER_KERNELS = (7, 5, 5)  # then 3 for every further level
ENCODER_CHANNELS = (64, 128, 256)  # then 512 for every further level


class PartialConv2d(nn.Conv2d):
    """A convolution that sees only the valid inputs and renormalises by their count.

    ``forward(x, known_mask) -> (out, new_known_mask)``:
        x: (B, C_in, H, W).
        known_mask: (B, 1, H, W) (one mask for all input channels) or (B, C_in, H, W), values in
            {0, 1}, 1 = valid. Inputs where the mask is 0 never influence the output.
        out: (B, C_out, H', W'), zero where no valid input was seen.
        new_known_mask: (B, 1, H', W') in {0, 1}, 1 where the window saw at least one valid input.

    Zero padding counts as missing input. Only ``groups=1`` and ``padding_mode="zeros"`` are supported.
    """

    def forward(self, x: Tensor, known_mask: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        # The valid counts reach C_in * k * k (thousands): count in float32 even under autocast,
        # where fp16 / bf16 would round them.
        with torch.no_grad(), torch.autocast(device_type=x.device.type, enabled=False):
            mask = known_mask.float()
            ones = torch.ones((1, mask.shape[1], *self.kernel_size), device=mask.device)
            valid = F.conv2d(mask, ones, stride=self.stride, padding=self.padding, dilation=self.dilation)
            if mask.shape[1] == 1:
                valid = valid * x.shape[1]  # the one mask stands for every input channel
            window = x.shape[1] * self.kernel_size[0] * self.kernel_size[1]
            new_mask = (valid > 0).float()
            scale = window / valid.clamp(min=1) * new_mask
        out = F.conv2d(
            x * known_mask.to(x.dtype), self.weight, None, self.stride, self.padding, self.dilation
        )
        out = out * scale.to(out.dtype)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1) * new_mask.to(out.dtype)
        return out, new_mask.to(out.dtype)


class PConvBlock(nn.Module):
    """Partial conv, then optional batch norm, then optional activation; carries the mask along."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        batch_norm: bool,
        activation: nn.Module | None,
    ) -> None:
        super().__init__()
        # A bias right before batch norm would be cancelled by it.
        self.conv = PartialConv2d(
            in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=not batch_norm
        )
        self.norm = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()
        self.activation = activation if activation is not None else nn.Identity()

    def forward(self, x: Tensor, known_mask: Tensor) -> tuple[Tensor, Tensor]:
        x, known_mask = self.conv(x, known_mask)
        return self.activation(self.norm(x)), known_mask


@dataclass(frozen=True)
class PConvConfig:
    """Everything needed to rebuild a :class:`PConvUNet`; stored in our weight files."""

    architecture: ClassVar[str] = "pconv"  # the registry name; not a constructor argument
    width: float = 1.0
    layers: int = 7

    def __post_init__(self) -> None:
        check_width(self.width)
        if isinstance(self.layers, bool) or not isinstance(self.layers, int) or not 3 <= self.layers <= 9:
            raise ValueError(f"layers must be an integer from 3 to 9, got {self.layers!r}")

    def to_dict(self) -> dict:
        """``{"architecture": ..., **fields}``: what weight files store (see lbam.model.registry)."""
        return {"architecture": self.architecture, **asdict(self)}


def encoder_plan(layers: int, width: float) -> tuple[list[int], list[int]]:
    """(kernel sizes, channel counts) of the encoder levels for a depth and width multiplier."""
    kernels = [*ENCODER_KERNELS, *[3] * (layers - len(ENCODER_KERNELS))]
    channels = [*ENCODER_CHANNELS, *[512] * (layers - len(ENCODER_CHANNELS))]
    return kernels[:layers], [max(1, round(c * width)) for c in channels[:layers]]


def _upsample(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def _channel_mask(known_mask: Tensor, channels: int) -> Tensor:
    return known_mask.expand(-1, channels, -1, -1)


class PConvUNet(Generator):
    """Liu et al.'s partial-convolution U-Net, with LBAM's generator contract.

    ``forward(image, known_mask)``:
        image: (B, 3, H, W) float in [0, 1]; hole pixels may hold anything, they are never seen.
        known_mask: (B, 1, H, W) in {0, 1}, 1 = known pixel, 0 = hole.
        H and W must be multiples of :attr:`size_multiple` (``2 ** layers``; 128 for 7 levels).

    Returns the raw output (B, 3, H, W) in (0, 1), not composited with the known pixels.

    Parameter names: ``encoder.{i}.conv.weight``, ``encoder.{i}.norm.*`` (i = 0 is the full-size
    level) and ``decoder.{k}.*`` (k = 0 is the deepest decoder level, the last one is the image head).
    """

    def __init__(self, width: float = 1.0, layers: int = 7, train_size: int = DEFAULT_TRAIN_SIZE) -> None:
        super().__init__(train_size)
        self.config = PConvConfig(width=float(width), layers=layers)
        self.size_multiple = 2**layers
        kernels, channels = encoder_plan(layers, width)

        in_channels = [3, *channels[:-1]]
        self.encoder = nn.ModuleList(
            PConvBlock(in_channels[i], channels[i], kernels[i], 2, batch_norm=i > 0, activation=nn.ReLU())
            for i in range(layers)
        )
        decoder = []
        for i in reversed(range(1, layers)):  # output level i pairs with encoder output i - 1
            decoder.append(
                PConvBlock(
                    channels[i] + channels[i - 1],
                    channels[i - 1],
                    3,
                    1,
                    batch_norm=True,
                    activation=nn.LeakyReLU(0.2),
                )
            )
        decoder.append(PConvBlock(channels[0] + 3, 3, 3, 1, batch_norm=False, activation=None))
        self.decoder = nn.ModuleList(decoder)
        self._encoder_norm_frozen = False
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He (Kaiming) normal initialisation of every partial conv, as Liu et al.; zero biases."""
        if next(self.parameters()).is_meta:
            return  # nothing to draw for a shape-only skeleton; torch's init on meta imports its compiler (2 s)
        for module in self.modules():
            if isinstance(module, PartialConv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def freeze_encoder_norm(self) -> None:
        """Fine-tuning phase of Liu et al.: freeze the encoder's batch norm.

        The encoder's batch norm layers use their running statistics from now on (also after
        ``train()``) and their affine parameters stop training (requires_grad False), while the
        decoder's keep learning. Build the optimiser afterwards from parameters that require grad.
        Reason: hole pixels are zeros that skew the batch statistics.
        """
        self._encoder_norm_frozen = True
        for module in self.encoder.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> PConvUNet:
        super().train(mode)
        if self._encoder_norm_frozen:
            for module in self.encoder.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def forward(self, image: Tensor, known_mask: Tensor) -> Tensor:
        check_multiple("PConv", image, self.size_multiple)
        known_mask = known_mask[:, :1].to(image.dtype)
        features, masks = [image], [known_mask]
        x, mask = image, known_mask
        for level in self.encoder:
            x, mask = level(x, mask)
            features.append(x)
            masks.append(mask)

        for k, level in enumerate(self.decoder):
            skip, skip_mask = features[-k - 2], masks[-k - 2]
            x, mask = _upsample(x), _upsample(mask)
            joined_mask = torch.cat(
                (_channel_mask(mask, x.shape[1]), _channel_mask(skip_mask, skip.shape[1])), dim=1
            )
            x, mask = level(torch.cat((x, skip), dim=1), joined_mask)
        return (torch.tanh(x) + 1) / 2

"""LPIPS-VGG (Zhang et al., 2018): a learned perceptual distance, lower is more similar.

The network is the ImageNet VGG16 trunk from :mod:`lbam.features.vgg` (torchvision's
``vgg16-397923af.pth``) plus five learned 1x1 channel weightings, the ``vgg.pth`` file of the lpips
project's v0.1 weights (keys ``lin0.model.1.weight`` ... ``lin4.model.1.weight``, shapes
(1, C, 1, 1) for C = 64, 128, 256, 512, 512). Neither file ships with lbam; the user supplies both.

Distance: the inputs are mapped to [-1, 1] and standardised per channel with LPIPS's fixed shift
and scale; at each of the five taps (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3) the features are
unit-normalised along channels, their squared difference is weighted per channel, summed over
channels, averaged over pixels; the five numbers are added.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from lbam.errors import LbamError
from lbam.features.vgg import LPIPS_LAYERS, VGG16Features, load_vgg16
from lbam.utils.weights import as_state_dict, load_pth

LPIPS_CHANNELS = (64, 128, 256, 512, 512)
LINEAR_KEYS = tuple(f"lin{i}.model.1.weight" for i in range(len(LPIPS_CHANNELS)))
# LPIPS's input standardisation, for images already mapped to [-1, 1].
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10


class LPIPS(nn.Module):
    """``forward(x, y)``: x, y (B, 3, H, W) in [0, 1] -> distance (B,), 0 for identical images.

    Args:
        features: a :class:`VGG16Features` built with ``layers=LPIPS_LAYERS``.
        linear_weights: five non-trainable channel weightings, shapes (1, C, 1, 1).
    """

    def __init__(self, features: VGG16Features, linear_weights: list[Tensor]) -> None:
        super().__init__()
        if tuple(features.layers) != LPIPS_LAYERS:
            raise ValueError(f"LPIPS needs VGG16Features(layers={LPIPS_LAYERS}), got {features.layers}")
        self.features = features
        for i, weight in enumerate(linear_weights):
            self.register_buffer(f"linear{i}", weight.detach().float().clone())
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def _taps(self, images: Tensor) -> list[Tensor]:
        standardised = (images * 2 - 1 - self.shift) / self.scale
        taps = self.features(standardised)
        return [tap / (tap.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS) for tap in taps]

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape != y.shape or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(
                f"LPIPS needs two (B, 3, H, W) tensors of one shape, got {x.shape} and {y.shape}"
            )
        distance = x.new_zeros(x.shape[0])
        for i, (tap_x, tap_y) in enumerate(zip(self._taps(x), self._taps(y), strict=True)):
            weight = getattr(self, f"linear{i}")
            per_pixel = ((tap_x - tap_y).pow(2) * weight).sum(dim=1)
            distance = distance + per_pixel.flatten(1).mean(dim=1)
        return distance


def read_linear_weights(path: str | Path) -> list[Tensor]:
    """The five channel weightings from an lpips v0.1 ``vgg.pth``; LbamError naming a bad key."""
    path = Path(path).expanduser()
    loaded = load_pth(path, "LPIPS weights", hint="the lpips project's v0.1 vgg.pth")
    state = as_state_dict(loaded, path, contents="LPIPS linear layers")
    weights = []
    for key, channels in zip(LINEAR_KEYS, LPIPS_CHANNELS, strict=True):
        value = state.get(key)
        if not isinstance(value, Tensor):
            raise LbamError(f"{path}: not LPIPS-VGG v0.1 weights: key {key!r} is missing")
        if tuple(value.shape) != (1, channels, 1, 1):
            raise LbamError(
                f"{path}: not LPIPS-VGG weights: key {key!r} has shape {tuple(value.shape)}, "
                f"expected (1, {channels}, 1, 1)"
            )
        weights.append(value)
    return weights


def load_lpips(
    linear_weights_path: str | Path,
    vgg_weights_path: str | Path | None = None,
    allow_random_vgg: bool = False,
    device: str | torch.device = "cpu",
) -> LPIPS:
    """LPIPS-VGG from the lpips ``vgg.pth`` and torchvision's VGG16 file (None: torch hub cache).

    ``allow_random_vgg`` exists for tests only: the distance is meaningless without the real VGG16.
    """
    linear = read_linear_weights(linear_weights_path)
    features = load_vgg16(vgg_weights_path, allow_random=allow_random_vgg, layers=LPIPS_LAYERS)
    return LPIPS(features, linear).to(device)

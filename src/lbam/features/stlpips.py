"""Shift-tolerant VGG16 and AlexNet of ST-LPIPS (Ghildyal & Liu, ECCV 2022), in plain torch.

ST-LPIPS retrains LPIPS's networks with anti-aliased, shift-tolerant pooling: every stride-2 step
becomes a stride-1 max pool (or a stride-1 convolution) followed by a 3x3 binomial blur
``[1, 2, 1] x [1, 2, 1] / 16`` applied with stride 2 after reflection padding of 2 pixels on each
side. The weights ship in the PyPI wheel ``stlpips-pytorch==0.0.2`` (BSD-2-Clause) as
``stlpips_pytorch/weights/vST0.0/{vgg,alex}_shift_tolerant.pth``; that package imports
torchvision, so lbam rebuilds the two networks here and reads the files with
``torch.load(weights_only=True)`` without importing the package.

Uses in lbam:

- :func:`load_stlpips_vgg` -- the VGG16 trunk as the feature network of the perceptual and style
  losses (``losses.vgg_weights: stlpips``). It is *not* torchvision's ImageNet VGG16: it was
  trained for ST-LPIPS. Its taps ``pool1``..``pool3`` (after each blur-downsampling) stand where
  the paper's VGG16 pool1..pool3 stand.
- :func:`load_st_lpips` -- the ST-LPIPS distance with the AlexNet trunk, the metric ``st_lpips`` of
  ``lbam evaluate``; 0 for identical images, larger for more different ones.

Inputs are RGB in [0, 1]; both networks map them to [-1, 1] and standardise them with LPIPS's
fixed shift and scale (stored in the weight files), as ST-LPIPS does.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from lbam.errors import LbamError
from lbam.features import run_to_taps
from lbam.layers.blur import BlurDownsample
from lbam.utils.weights import as_state_dict, load_pth

PACKAGE = "stlpips_pytorch"
PACKAGE_PIN = "stlpips-pytorch==0.0.2"
WEIGHT_FILES = {"vgg": "vgg_shift_tolerant.pth", "alex": "alex_shift_tolerant.pth"}
_EPS = 1e-10
# The smallest side the trunks take: the blur's reflection padding needs 3 pixels at every level.
MIN_SIDE = 64

# Shift-tolerant VGG16, module by module (the files' indices): ("conv", in, out, kernel, padding),
# ("relu",), ("maxpool", kernel), ("blur", channels).
_VGG_PLAN: tuple[tuple, ...] = (
    ("conv", 3, 64, 3, 1), ("relu",), ("conv", 64, 64, 3, 1), ("relu",),
    ("maxpool", 2), ("blur", 64),
    ("conv", 64, 128, 3, 1), ("relu",), ("conv", 128, 128, 3, 1), ("relu",),
    ("maxpool", 2), ("blur", 128),
    ("conv", 128, 256, 3, 1), ("relu",), ("conv", 256, 256, 3, 1), ("relu",), ("conv", 256, 256, 3, 1), ("relu",),
    ("maxpool", 2), ("blur", 256),
    ("conv", 256, 512, 3, 1), ("relu",), ("conv", 512, 512, 3, 1), ("relu",), ("conv", 512, 512, 3, 1), ("relu",),
    ("maxpool", 2), ("blur", 512),
    ("conv", 512, 512, 3, 1), ("relu",), ("conv", 512, 512, 3, 1), ("relu",), ("conv", 512, 512, 3, 1), ("relu",),
)  # fmt: skip
VGG_TAPS = {"relu1_2": 3, "pool1": 5, "relu2_2": 9, "pool2": 11, "relu3_3": 17, "pool3": 19, "relu4_3": 25,
            "pool4": 27, "relu5_3": 33}  # fmt: skip
VGG_LPIPS_TAPS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
LOSS_TAPS = ("pool1", "pool2", "pool3")

# Shift-tolerant AlexNet: the first convolution has stride 1 and is followed by a blur.
_ALEX_PLAN: tuple[tuple, ...] = (
    ("conv", 3, 64, 11, 2), ("blur", 64), ("relu",),
    ("maxpool", 3), ("blur", 64), ("conv", 64, 192, 5, 2), ("relu",),
    ("maxpool", 3), ("blur", 192), ("conv", 192, 384, 3, 1), ("relu",),
    ("conv", 384, 256, 3, 1), ("relu",),
    ("conv", 256, 256, 3, 1), ("relu",),
)  # fmt: skip
ALEX_TAPS = {"relu1": 2, "relu2": 6, "relu3": 10, "relu4": 12, "relu5": 14}
ALEX_LPIPS_TAPS = ("relu1", "relu2", "relu3", "relu4", "relu5")
ALEX_CHANNELS = (64, 192, 384, 256, 256)
VGG_CHANNELS = (64, 128, 256, 512, 512)


def _build(plan: Sequence[tuple], depth: int) -> nn.Sequential:
    modules: list[nn.Module] = []
    for step in plan[:depth]:
        if step[0] == "conv":
            _, c_in, c_out, kernel, padding = step
            modules.append(nn.Conv2d(c_in, c_out, kernel, padding=padding))
        elif step[0] == "relu":
            modules.append(nn.ReLU())  # not in place: a tap must survive the next module
        elif step[0] == "maxpool":
            modules.append(nn.MaxPool2d(step[1], stride=1))
        else:
            modules.append(BlurDownsample(step[1]))
    return nn.Sequential(*modules)


class ShiftTolerantTrunk(nn.Module):
    """A frozen shift-tolerant trunk returning its activations at named taps.

    Args:
        network: "vgg" (:data:`VGG_TAPS`) or "alex" (:data:`ALEX_TAPS`).
        taps: the tap names to return, in this order; only modules up to the deepest are built.

    ``forward(x)``: x (B, 3, H, W) in [0, 1] -> list of (B, C, h, w) activations. For the VGG
    loss taps: ``pool1`` (B, 64, ~H/2, ~W/2), ``pool2`` (B, 128, ~H/4, ~W/4), ``pool3``
    (B, 256, ~H/8, ~W/8). The weights never train; gradients flow to ``x``.
    """

    def __init__(self, network: str, taps: Sequence[str]) -> None:
        super().__init__()
        plans = {"vgg": (_VGG_PLAN, VGG_TAPS), "alex": (_ALEX_PLAN, ALEX_TAPS)}
        if network not in plans:
            raise LbamError(f"unknown shift-tolerant network {network!r}; use vgg or alex")
        plan, names = plans[network]
        unknown = [tap for tap in taps if tap not in names]
        if not taps or unknown:
            raise LbamError(f"ST-LPIPS {network} taps must be among {', '.join(names)}, got {list(taps)}")
        self.network, self.taps = network, tuple(taps)
        self._index = {tap: names[tap] for tap in self.taps}
        self.features = _build(plan, max(self._index.values()) + 1)
        # LPIPS's input standardisation for images in [-1, 1] (also in the weight files).
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> ShiftTolerantTrunk:
        return super().train(False)  # a fixed measuring instrument

    def forward(self, x: Tensor) -> list[Tensor]:
        return run_to_taps(self.features, (x * 2 - 1 - self.shift) / self.scale, self._index, self.taps)


class STLPIPS(nn.Module):
    """The ST-LPIPS distance: ``forward(x, y)`` with x, y (B, 3, H, W) in [0, 1] -> (B,).

    At each tap the features are unit-normalised along channels; their squared difference is
    weighted per channel by the learned 1x1 weights, summed over channels and averaged over
    pixels; the per-tap values are added. Identical images give 0.
    """

    def __init__(self, trunk: ShiftTolerantTrunk, linear_weights: Sequence[Tensor]) -> None:
        super().__init__()
        if len(linear_weights) != len(trunk.taps):
            raise ValueError(f"{len(trunk.taps)} taps need as many linear weights, got {len(linear_weights)}")
        self.trunk = trunk.to(memory_format=torch.channels_last)  # see forward
        for i, weight in enumerate(linear_weights):
            self.register_buffer(f"linear{i}", weight.detach().float().clone())
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> STLPIPS:
        return super().train(False)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Both images go through the trunk as one channels-last batch: on a 2-core CPU that took
        0.3x to 0.7x of the time of two NCHW calls (``benchmarks/st_lpips_speed.py``)."""
        if min(x.shape[-2:]) < MIN_SIDE:
            raise ValueError(f"ST-LPIPS needs images of at least {MIN_SIDE} px, got {tuple(x.shape[-2:])}")
        if x.shape != y.shape or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(
                f"ST-LPIPS needs two (B, 3, H, W) images of one shape, got {tuple(x.shape)}, {tuple(y.shape)}"
            )
        batch = x.shape[0]
        pair = torch.cat((x, y)).contiguous(memory_format=torch.channels_last)
        total = x.new_zeros(batch)
        for i, features in enumerate(self.trunk(pair)):
            fx, fy = features[:batch], features[batch:]
            fx = fx / (fx.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)
            fy = fy / (fy.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)
            weighted = ((fx - fy) ** 2 * getattr(self, f"linear{i}")).sum(dim=1)
            total = total + weighted.mean(dim=(1, 2))
        return total


# ---- finding and reading the weight files -------------------------------------------------------


def find_weights(network: str, path: str | os.PathLike | None = None) -> Path:
    """The ST-LPIPS weight file of ``network`` ("vgg" or "alex").

    Looks at ``path`` when given, else ``$LBAM_HOME/stlpips/<file>`` (default ``~/.cache/lbam``),
    else inside an installed ``stlpips-pytorch`` wheel (found without importing it).

    Raises:
        LbamError: no file, naming the places looked at and how to get it.
    """
    name = WEIGHT_FILES[network]
    if path is not None:
        candidate = Path(path).expanduser()
        if not candidate.is_file():
            raise LbamError(f"ST-LPIPS {network} weights not found: {candidate}")
        return candidate
    home = Path(os.environ.get("LBAM_HOME", Path.home() / ".cache" / "lbam")).expanduser()
    places = [home / "stlpips" / name]
    spec = importlib.util.find_spec(PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        places += [Path(folder) / "weights" / "vST0.0" / name for folder in spec.submodule_search_locations]
    for place in places:
        if place.is_file():
            return place
    raise LbamError(
        f"ST-LPIPS {network} weights not found (looked at {', '.join(map(str, places))}): "
        f"run 'pip install --no-deps {PACKAGE_PIN}' or put {name} in {home / 'stlpips'}"
    )


def read_weights(
    path: Path, network: str, taps: Sequence[str] | None = None
) -> tuple[dict[str, Tensor], list[Tensor]]:
    """The trunk tensors (under :class:`ShiftTolerantTrunk`'s names) and the five linear weights of
    an ST-LPIPS file, checked: every expected key, its shape, finite floating-point values.

    The file names trunk tensors ``net.slice<k>.<index>.<name>``; ``<index>`` counts modules over
    the whole trunk, as ``features.<index>.<name>`` does here. With ``taps``, only the trunk up to
    them is needed and no linear weights are read (the file may hold only those layers, as
    docs/recipes/pack_data.py writes them); the list returned is then empty.
    """
    state = as_state_dict(load_pth(path, f"ST-LPIPS {network} weights"), path)
    channels: Sequence[int] = (VGG_CHANNELS if network == "vgg" else ALEX_CHANNELS) if taps is None else ()
    if taps is None:
        taps = VGG_LPIPS_TAPS if network == "vgg" else ALEX_LPIPS_TAPS
    expected = {
        key: tuple(value.shape) for key, value in ShiftTolerantTrunk(network, taps).state_dict().items()
    }
    mapped: dict[str, object] = {}
    for key, value in state.items():
        if key.startswith("net.slice") and key.count(".") >= 3:
            mapped["features." + key.split(".", 2)[2]] = value
        elif key.startswith("scaling_layer."):
            mapped[key.split(".", 1)[1]] = value
    expected.update({f"lin{i}": (1, c, 1, 1) for i, c in enumerate(channels)})
    mapped.update({f"lin{i}": state.get(f"lin{i}.model.1.weight") for i in range(len(channels))})
    for key, shape in expected.items():
        value = mapped.get(key)
        if not isinstance(value, Tensor):
            raise LbamError(f"{path}: not the ST-LPIPS {network} weights: no tensor for {key!r}")
        if tuple(value.shape) != shape:
            raise LbamError(f"{path}: {key!r} has shape {tuple(value.shape)}, expected {shape}")
        if not value.is_floating_point() or not torch.isfinite(value).all():
            raise LbamError(f"{path}: {key!r} must hold finite floating-point numbers")
    trunk = {key: mapped[key].float() for key in expected if not key.startswith("lin")}  # type: ignore[union-attr]
    return trunk, [mapped[f"lin{i}"].float() for i in range(len(channels))]  # type: ignore[union-attr]


def load_trunk(
    network: str, taps: Sequence[str], path: str | os.PathLike | None = None
) -> ShiftTolerantTrunk:
    """A shift-tolerant trunk (``network`` "vgg" or "alex") with the ST-LPIPS weights, returning ``taps``."""
    weights, _ = read_weights(find_weights(network, path), network, taps)
    trunk = ShiftTolerantTrunk(network, taps)
    trunk.load_state_dict(weights)
    return trunk


def load_stlpips_vgg(
    path: str | os.PathLike | None = None, taps: Sequence[str] = LOSS_TAPS
) -> ShiftTolerantTrunk:
    """The ST-LPIPS VGG16 trunk for the perceptual and style losses (taps pool1..pool3 by default)."""
    return load_trunk("vgg", taps, path)


def load_st_lpips(path: str | os.PathLike | None = None, network: str = "alex") -> STLPIPS:
    """The ST-LPIPS distance (AlexNet trunk by default, as ``lbam evaluate`` reports it)."""
    weights, linear = read_weights(find_weights(network, path), network)
    trunk = ShiftTolerantTrunk(network, ALEX_LPIPS_TAPS if network == "alex" else VGG_LPIPS_TAPS)
    trunk.load_state_dict(weights)
    return STLPIPS(trunk, linear)

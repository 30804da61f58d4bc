"""VGG16 feature extractor for the perceptual and style losses, in plain torch.

The layer stack mirrors torchvision's ``vgg16().features`` index for index, so torchvision's
ImageNet checkpoint ``vgg16-397923af.pth`` loads by its own keys (``features.N.weight`` / ``.bias``)
without torchvision. Only the ``features`` part is used; the classifier keys are ignored.

Inputs are RGB images in [0, 1] fed **without** ImageNet mean/std normalisation, as the LBAM
authors do in their loss. Callers that want normalised features (e.g. LPIPS) normalise first.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from lbam.errors import LbamError
from lbam.features import run_to_taps
from lbam.utils.weights import as_state_dict, load_pth

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "vgg16-397923af.pth"
WEIGHTS_URL = f"https://download.pytorch.org/models/{WEIGHTS_FILE}"

# (in, out) channels of the 13 convolutions; "M" is a 2x2 max-pool. Same order as torchvision.
_CONFIG: tuple[tuple[int, int] | str, ...] = (
    (3, 64), (64, 64), "M",
    (64, 128), (128, 128), "M",
    (128, 256), (256, 256), (256, 256), "M",
    (256, 512), (512, 512), (512, 512), "M",
    (512, 512), (512, 512), (512, 512), "M",
)  # fmt: skip


def _layer_names() -> tuple[str, ...]:
    """Names of the 31 modules of ``features`` in order: conv1_1, relu1_1, ..., pool5."""
    names: list[str] = []
    block, index = 1, 1
    for item in _CONFIG:
        if item == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            index += 1
    return tuple(names)


LAYER_NAMES: tuple[str, ...] = _layer_names()
"""Tap names accepted by :class:`VGG16Features`; ``LAYER_NAMES[i]`` is the output of ``features[i]``."""

DEFAULT_LAYERS: tuple[str, ...] = ("pool1", "pool2", "pool3")
"""The LBAM perceptual/style layers (torchvision's features[:5], [5:10], [10:17])."""

LPIPS_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")


def _expected_shapes() -> dict[str, tuple[int, ...]]:
    """torchvision's ``features.*`` keys and shapes for VGG16 (13 convs, 26 tensors)."""
    shapes: dict[str, tuple[int, ...]] = {}
    position = 0
    for item in _CONFIG:
        if item == "M":
            position += 1
            continue
        c_in, c_out = item
        shapes[f"features.{position}.weight"] = (c_out, c_in, 3, 3)
        shapes[f"features.{position}.bias"] = (c_out,)
        position += 2  # conv + relu
    return shapes


EXPECTED_SHAPES: dict[str, tuple[int, ...]] = _expected_shapes()


class VGG16Features(nn.Module):
    """Frozen VGG16 convolutional trunk returning the activations at named taps.

    Args:
        layers: tap names from :data:`LAYER_NAMES` (e.g. ``("pool1", "pool2", "pool3")`` for the
            LBAM losses, :data:`LPIPS_LAYERS` for LPIPS). Only the modules up to the deepest tap
            are built, so ``state_dict`` keys are a prefix of torchvision's ``features.*``.

    ``forward(x)``: x (B, 3, H, W) in [0, 1], not normalised. Returns a list with one tensor per
    tap, in the order of ``layers``; ``pool1`` is (B, 64, H/2, W/2), ``pool2`` (B, 128, H/4, W/4),
    ``pool3`` (B, 256, H/8, W/8). The weights never train (requires_grad False, always eval mode),
    but gradients flow to ``x``.
    """

    def __init__(self, layers: Sequence[str] = DEFAULT_LAYERS) -> None:
        super().__init__()
        layers = tuple(layers)
        if not layers:
            raise LbamError("VGG16Features needs at least one layer name")
        for name in layers:
            if name not in LAYER_NAMES:
                raise LbamError(f"unknown VGG16 layer {name!r}; choose from {', '.join(LAYER_NAMES)}")
        self.layers = layers
        self._tap_index = {name: LAYER_NAMES.index(name) for name in layers}
        depth = max(self._tap_index.values()) + 1

        modules: list[nn.Module] = []
        for item in _CONFIG:
            if item == "M":
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                # Not in-place: a tap on a conv output must survive the ReLU after it.
                modules += [nn.Conv2d(item[0], item[1], kernel_size=3, padding=1), nn.ReLU()]
        self.features = nn.Sequential(*modules[:depth])
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG16Features:
        # Stay in eval mode whatever the owner does: this network is a fixed measuring instrument.
        return super().train(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        return run_to_taps(self.features, x, self._tap_index, self.layers)


def default_weights_path() -> Path:
    """Where torchvision would cache the weights: ``torch.hub.get_dir()/checkpoints/vgg16-397923af.pth``.

    ``torch.hub.get_dir()`` honours ``$TORCH_HOME`` (default ``~/.cache/torch``, giving ``hub/``).
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def check_state_dict(state: Mapping[str, object], source: str) -> dict[str, Tensor]:
    """Check ``state`` holds torchvision's VGG16 ``features`` tensors; return just those.

    Every one of the 26 expected keys must be present with the right shape, and no other
    ``features.*`` key may exist (which rules out VGG11/13/19 and the batch-norm variants, whose
    indices overlap). Classifier keys are ignored. Raises LbamError naming ``source`` and the key.
    """
    for key, shape in EXPECTED_SHAPES.items():
        if key not in state:
            raise LbamError(f"{source}: not torchvision's VGG16 weights: key {key!r} is missing")
        value = state[key]
        if not isinstance(value, Tensor):
            raise LbamError(f"{source}: key {key!r} is not a tensor")
        if tuple(value.shape) != shape:
            raise LbamError(
                f"{source}: not torchvision's VGG16 weights: key {key!r} has shape "
                f"{tuple(value.shape)}, expected {shape}"
            )
    for key in state:
        if key.startswith("features.") and key not in EXPECTED_SHAPES:
            raise LbamError(f"{source}: not torchvision's VGG16 weights: unexpected key {key!r}")
    return {key: state[key].float() for key in EXPECTED_SHAPES}  # type: ignore[union-attr]


def _warn_random() -> None:
    message = (
        "VGG16 weights not loaded: using RANDOM VGG16 features because allow_random is set; "
        "perceptual and style losses are meaningless with them"
    )
    logger.warning("!" * 20 + " " + message + " " + "!" * 20)
    warnings.warn(message, UserWarning, stacklevel=3)


def load_vgg16(
    weights_path: str | Path | None = None,
    allow_random: bool = False,
    layers: Sequence[str] = DEFAULT_LAYERS,
) -> VGG16Features:
    """Build :class:`VGG16Features` and load torchvision's ImageNet weights into it.

    Args:
        weights_path: the ``vgg16-397923af.pth`` file. None: the torch hub cache
            (:func:`default_weights_path`), where torchvision itself would have saved it.
        allow_random: when the file does not exist, return randomly initialised features with a
            loud warning instead of raising. A file that exists but is wrong always raises.
        layers: the taps to return (see :class:`VGG16Features`).

    The file is read with ``torch.load(weights_only=True)``: no arbitrary unpickling.
    Raises LbamError when the file is missing (naming the path looked at and where to get it)
    or is not torchvision's VGG16 (naming the key).
    """
    path = Path(weights_path).expanduser() if weights_path is not None else default_weights_path()
    model = VGG16Features(layers)
    if not path.is_file():
        if allow_random:
            _warn_random()
            return model
        raise LbamError(
            f"VGG16 weights not found: looked at {path}; download {WEIGHTS_URL} "
            f"(torchvision's ImageNet VGG16) to {default_weights_path()} or give its path"
        )
    weights = check_state_dict(as_state_dict(load_pth(path, "VGG16 weights"), path), str(path))
    wanted = model.state_dict().keys()
    model.load_state_dict({key: value for key, value in weights.items() if key in wanted})
    logger.info("loaded VGG16 weights from %s", path)
    return model

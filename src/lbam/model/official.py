"""Read the authors' released checkpoints (Vious/LBAM_Pytorch) into :class:`LBAMGenerator`.

The release is a plain ``state_dict`` of their ``LBAMModel``, often saved from ``nn.DataParallel``
(``module.`` prefix) and on a GPU. Its names map one to one onto ours:

=================================================  =======================================
authors                                            lbam
=================================================  =======================================
``ec{l}.conv.conv.weight``                          ``encoder.{l-1}.conv.weight``
``ec{l}.conv.maskConv.weight``                      ``encoder.{l-1}.mask_conv.weight``
``ec{l}.conv.activationFuncG_A.{a,mu,sigma1,2}``    ``encoder.{l-1}.attention.*``
``ec{l}.bn.*`` (older, batch-norm layout)           ``encoder.{l-1}.norm.*``
``reverseConv{l}.reverseMaskConv.weight``           ``reverse.{l-1}.mask_conv.weight``
``reverseConv{l}.activationFuncG_A.*``              ``reverse.{l-1}.attention.*``
``dc{k}.conv.weight``                               ``decoder.{k-1}.deconv.weight``
``dc{k}.bn.*`` (older, batch-norm layout)           ``decoder.{k-1}.norm.*``
``dc7.weight``                                      ``head.weight``
=================================================  =======================================

A checkpoint with batch-norm entries is the older layout and loads into the ``paper`` variant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from lbam.errors import LbamError
from lbam.model.lbam import ENCODER_CHANNELS, LAST_ACTIVATIONS, LBAMConfig, LBAMGenerator
from lbam.utils.weights import as_state_dict, check_tensor_values, load_pth

_RULES = [
    (re.compile(r"^ec(\d)\.conv\.conv\.weight$"), "encoder.{0}.conv.weight"),
    (re.compile(r"^ec(\d)\.conv\.maskConv\.weight$"), "encoder.{0}.mask_conv.weight"),
    (re.compile(r"^ec(\d)\.conv\.activationFuncG_A\.(a|mu|sigma1|sigma2)$"), "encoder.{0}.attention.{1}"),
    (re.compile(r"^ec(\d)\.bn\.(\w+)$"), "encoder.{0}.norm.{1}"),
    (re.compile(r"^reverseConv(\d)\.reverseMaskConv\.weight$"), "reverse.{0}.mask_conv.weight"),
    (re.compile(r"^reverseConv(\d)\.activationFuncG_A\.(a|mu|sigma1|sigma2)$"), "reverse.{0}.attention.{1}"),
    (re.compile(r"^dc([1-6])\.conv\.weight$"), "decoder.{0}.deconv.weight"),
    (re.compile(r"^dc([1-6])\.bn\.(\w+)$"), "decoder.{0}.norm.{1}"),
    (re.compile(r"^dc7\.weight$"), "head.weight"),
]


def official_to_lbam_key(key: str) -> str | None:
    """Our parameter name for one of the authors' keys, or None if the key is not theirs."""
    for pattern, template in _RULES:
        match = pattern.match(key)
        if match:
            groups = list(match.groups())
            if groups and groups[0].isdigit():
                groups[0] = str(int(groups[0]) - 1)
            return template.format(*groups)
    return None


def strip_wrappers(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Drop the ``module.`` prefix that ``nn.DataParallel`` adds (possibly nested)."""
    out = {}
    for key, value in state_dict.items():
        while key.startswith("module."):
            key = key[len("module.") :]
        out[key] = value
    return out


def is_official_state_dict(state_dict: Mapping[str, object]) -> bool:
    """True when the keys look like the authors' LBAMModel (after stripping ``module.``)."""
    keys = {k.removeprefix("module.") for k in state_dict}
    return "ec1.conv.conv.weight" in keys and "dc7.weight" in keys


def infer_width(state_dict: Mapping[str, Tensor]) -> float:
    """Width multiplier from the first encoder conv (64 output channels at width 1.0)."""
    channels = state_dict["ec1.conv.conv.weight"].shape[0]
    return channels / ENCODER_CHANNELS[0]


def convert_official_state_dict(
    state_dict: Mapping[str, Tensor], last_activation: str | None = None
) -> tuple[LBAMGenerator, dict[str, str]]:
    """Build an :class:`LBAMGenerator` holding the authors' weights.

    Args:
        state_dict: the authors' generator state_dict (``module.`` prefix and CUDA tensors allowed).
        last_activation: override for the paper variant's last activation; the released layout always
            uses ``tanh01``.

    Returns:
        ``(model, info)`` where info describes what was detected (variant, width).

    Raises:
        LbamError: naming the first missing, unexpected or mis-shaped key.
    """
    state_dict = {
        k: v.detach().to("cpu") for k, v in strip_wrappers(state_dict).items() if torch.is_tensor(v)
    }
    if "ec1.conv.conv.weight" not in state_dict:
        raise LbamError("not an LBAM generator checkpoint: missing key 'ec1.conv.conv.weight'")
    has_batch_norm = any(".bn." in k for k in state_dict)
    variant = "paper" if has_batch_norm else "released"
    activation = last_activation or "tanh01"
    if activation not in LAST_ACTIVATIONS:
        raise LbamError(f"last activation must be one of {', '.join(LAST_ACTIVATIONS)}, got {activation!r}")
    width = infer_width(state_dict)
    try:
        LBAMConfig(variant=variant, width=width, last_activation=activation)
    except ValueError as error:  # before anything is allocated: a crafted first layer may imply width 40
        raise LbamError(f"not an LBAM generator lbam can build: {error}") from None
    with torch.device("meta"):  # the layer shapes, without memory
        model = LBAMGenerator(variant=variant, width=width, last_activation=activation)

    expected = model.state_dict()
    converted = _renamed_and_checked(state_dict, expected, width)
    model = LBAMGenerator(variant=variant, width=width, last_activation=activation)
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in converted.items()})
    return model, {"variant": variant, "width": f"{width:g}", "last_activation": activation}


def _renamed_and_checked(
    state_dict: Mapping[str, Tensor], expected: Mapping[str, Tensor], width: float
) -> dict[str, Tensor]:
    """The authors' tensors under our names, checked key by key against ``expected``'s shapes."""
    converted: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        ours = official_to_lbam_key(key)
        if ours is None:
            raise LbamError(f"unexpected key in LBAM checkpoint: {key!r}")
        converted[ours] = value
    official_name = {official_to_lbam_key(k): k for k in state_dict}
    for key, tensor in expected.items():
        if key not in converted:
            raise LbamError(f"missing key in LBAM checkpoint: {lbam_to_official_key(key)!r}")
        if tuple(converted[key].shape) != tuple(tensor.shape):
            raise LbamError(
                f"key {official_name[key]!r} has shape {list(converted[key].shape)}, "
                f"expected {list(tensor.shape)} for width {width:g}"
            )
    for key in converted:
        if key not in expected:
            raise LbamError(f"unexpected key in LBAM checkpoint: {official_name[key]!r}")
    check_tensor_values(converted, expected, "LBAM checkpoint")
    return converted


def lbam_to_official_key(lbam_key: str) -> str:
    """Inverse of :func:`official_to_lbam_key` (for error messages and for writing test fixtures)."""
    if lbam_key == "head.weight":
        return "dc7.weight"
    parts = lbam_key.split(".")
    group, index, rest = parts[0], int(parts[1]) + 1, parts[2:]
    if group == "encoder":
        if rest[0] == "conv":
            return f"ec{index}.conv.conv.weight"
        if rest[0] == "mask_conv":
            return f"ec{index}.conv.maskConv.weight"
        if rest[0] == "attention":
            return f"ec{index}.conv.activationFuncG_A.{rest[1]}"
        return f"ec{index}.bn.{rest[1]}"
    if group == "reverse":
        if rest[0] == "mask_conv":
            return f"reverseConv{index}.reverseMaskConv.weight"
        return f"reverseConv{index}.activationFuncG_A.{rest[1]}"
    if rest[0] == "deconv":
        return f"dc{index}.conv.weight"
    return f"dc{index}.bn.{rest[1]}"


def read_pth_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Load a foreign ``.pth`` safely (no unpickling of arbitrary objects) onto the CPU.

    Accepts a bare state_dict or the common wrappers ``{"state_dict": ...}``, ``{"model": ...}``,
    ``{"generator": ...}``, ``{"netG": ...}``.
    """
    loaded = load_pth(path, "checkpoint")
    if isinstance(loaded, Mapping):
        for wrapper in ("state_dict", "model", "generator", "netG"):
            inner = loaded.get(wrapper)
            if isinstance(inner, Mapping):
                loaded = inner
                break
    return as_state_dict(loaded, path)


def load_official_generator(path: str | Path, last_activation: str | None = None) -> LBAMGenerator:
    """The authors' generator ``.pth`` as an :class:`LBAMGenerator` (trained on 256 px crops).

    Raises:
        LbamError: the file is not the authors' LBAM_Pytorch generator, or does not fit it.
    """
    state = read_pth_state_dict(path)
    if not is_official_state_dict(state):
        first = next(iter(state), "<empty>")
        raise LbamError(
            f"{path} is not an LBAM generator checkpoint (first key {first!r}); "
            "expected the authors' LBAM_Pytorch state_dict or an lbam .safetensors file"
        )
    model, _ = convert_official_state_dict(state, last_activation)
    return model

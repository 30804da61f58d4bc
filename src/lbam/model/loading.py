"""Build, save and load generators: our safetensors files, the authors' ``.pth``, packaged names.

Our weight file is a safetensors file whose metadata holds ``format = "lbam"``, the generator's
config (``architecture``, ``variant``, ``width``, ...) as JSON, its ``train_size``, its whole
:class:`~lbam.model.card.GeneratorCard` as JSON (``card``) and ``source`` (where the weights came
from). Nothing is ever unpickled: foreign ``.pth`` files go through
``torch.load(weights_only=True)``.

Names resolve in this order: an existing path; a model packaged inside ``lbam/weights``; a file
``<name>.safetensors`` or ``<name>.pth`` in the cache folder (``$LBAM_HOME``, default
``~/.cache/lbam``). Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from lbam.defaults import DEFAULT_MODEL, DEFAULT_TRAIN_SIZE
from lbam.errors import LbamError
from lbam.model.card import Generator, card_of, check_train_size
from lbam.model.catalog import resolve_model_path
from lbam.model.official import load_official_generator
from lbam.model.registry import build_from_metadata
from lbam.utils.files import atomic_path
from lbam.utils.weights import check_tensor_values

FORMAT = "lbam"


def save_model(model: nn.Module, path: str | os.PathLike, source: str = "", half: bool = False) -> Path:
    """Write the generator's weights and config to a safetensors file, atomically.

    Args:
        model: a generator (:class:`~lbam.model.card.Generator`); DDP/compiled wrappers are unwrapped.
        path: output file, conventionally ``*.safetensors``.
        source: free text stored in the metadata (e.g. the run and step it came from).
        half: store floating-point tensors as float16 (halves the file; loads back as float32).
    """
    model = unwrap(model)
    card = card_of(model)
    state = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu").contiguous()
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        state[key] = tensor
    stored = card.to_dict() | {"precision": "fp16" if half else card.precision}
    metadata = {
        "format": FORMAT,
        "config": json.dumps({"architecture": card.architecture, **card.settings}, sort_keys=True),
        "card": json.dumps(stored, sort_keys=True),
        "source": source,
        # the side of the training crops: inpainting runs each hole at this scale (strategy fit)
        "train_size": str(card.train_size),
    }
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            save_file(state, str(tmp), metadata=metadata)
    except (SafetensorError, OSError) as error:  # a full disk or a read-only folder
        raise LbamError(f"cannot write {path}: {getattr(error, 'strerror', None) or error}") from None
    return path


def unwrap(model: nn.Module) -> nn.Module:
    """The bare generator inside DistributedDataParallel / torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def load_model(
    path_or_name: str | os.PathLike = DEFAULT_MODEL, device: str | torch.device = "cpu"
) -> Generator:
    """Load a generator in eval mode.

    Args:
        path_or_name: our ``.safetensors`` file, the authors' ``.pth`` state_dict, or a known name
            (``lbam-compact``, ``lbam-psv``, ``lbam-places2``).
        device: where to put the model.

    Returns:
        A :class:`~lbam.model.card.Generator`: ``model(image (B,3,H,W) in [0,1], known_mask
        (B,1,H,W) with 1 = known)`` gives the raw output (B,3,H,W) in [0,1]; H and W multiples of
        ``model.card.size_multiple``; ``model.card`` describes it.

    Raises:
        LbamError: missing file, unreadable file, or a checkpoint that is not an LBAM/PConv generator.
    """
    path = resolve_model_path(path_or_name)
    model = _load_safetensors(path) if _is_safetensors(path) else load_official_generator(path)
    return model.to(device).eval()


def _is_safetensors(path: Path) -> bool:
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as f:
        head = f.read(16)
    # safetensors starts with an 8-byte little-endian header length followed by '{'
    return len(head) >= 9 and head[8:9] == b"{"


def _load_safetensors(path: Path) -> Generator:
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise LbamError(f"cannot read {path} as safetensors: {error}") from None
    if metadata.get("format") != FORMAT or "config" not in metadata:
        raise LbamError(f"{path} is a safetensors file but not an lbam generator (no lbam metadata)")
    try:
        config = json.loads(metadata["config"])
    except (json.JSONDecodeError, RecursionError):  # RecursionError: a crafted, deeply nested config
        raise LbamError(f"{path} has corrupt lbam metadata") from None
    if not isinstance(config, dict):
        raise LbamError(f"{path} has corrupt lbam metadata (config is not a mapping)")
    train_size = _train_size(metadata.get("train_size"), path)
    try:
        with torch.device("meta"):  # shapes first, without memory: the file may be crafted
            skeleton = build_from_metadata(config, train_size)
    except LbamError as error:
        raise LbamError(f"{path} describes a generator this version cannot build: {error}") from None
    check_state(skeleton.state_dict(), state, str(path))
    model = build_from_metadata(config, train_size)
    model.load_state_dict(state)
    return model


def _train_size(value: str | None, path: Path) -> int:
    if value is None:
        return DEFAULT_TRAIN_SIZE
    try:
        return check_train_size(int(value) if value.isdigit() else value)
    except ValueError:
        raise LbamError(f"{path} has a bad train_size in its metadata: {value!r}") from None


def load_state_strict(module: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """``module.load_state_dict(state)`` with a one-line LbamError naming the first bad key.

    ``what`` names the source in the message (a file, or a checkpoint and which network).
    """
    check_state(module.state_dict(), state, what)
    module.load_state_dict(state)  # copies cast float16 files to the model's float32


def check_state(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], what: str) -> None:
    """LbamError unless ``state`` has exactly the keys and shapes of ``expected``, with sane values.

    ``expected`` may come from a model on the ``meta`` device: checking costs no memory then.
    """
    for key, tensor in expected.items():
        if key not in state:
            raise LbamError(f"{what} does not match the model: missing key {key!r}")
        if state[key].shape != tensor.shape:
            raise LbamError(
                f"{what} does not match the model: {key!r} has shape {list(state[key].shape)}, "
                f"the model has {list(tensor.shape)}"
            )
    extra = [key for key in state if key not in expected]
    if extra:
        raise LbamError(f"{what} does not match the model: unexpected key {extra[0]!r}")
    check_tensor_values(state, expected, what)

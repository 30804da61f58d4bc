"""Reading foreign ``.pth`` weight files safely: ``torch.load(weights_only=True)`` on the CPU, one-line errors."""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from lbam.errors import LbamError


def load_pth(path: str | os.PathLike, what: str, hint: str = "") -> object:
    """What ``torch.load`` finds in ``path``, without unpickling anything but tensors and containers.

    Args:
        path: the file.
        what: what the file is, for messages ("checkpoint", "FID weights", ...).
        hint: where such a file comes from; appended to the "not found" message.

    Raises:
        LbamError: the file is missing, is a folder, is not a PyTorch file, or holds Python objects.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise LbamError(f"{what} is a folder, not a file: {path}")
    if not path.is_file():
        raise LbamError(f"{what} not found: {path}" + (f" ({hint})" if hint else ""))
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as error:
        if "weights_only" in str(error):
            raise LbamError(
                f"cannot read {what} {path}: it holds Python objects other than tensors, "
                "which lbam refuses to unpickle"
            ) from None
        raise LbamError(f"cannot read {what} {path}: not a PyTorch checkpoint") from None
    except Exception:  # truncated zip, random bytes, text...
        raise LbamError(f"cannot read {what} {path}: not a PyTorch checkpoint") from None


def as_state_dict(loaded: object, path: str | os.PathLike, contents: str = "tensors") -> dict[str, Tensor]:
    """``loaded`` as a ``{name: tensor}`` dict; LbamError saying what was expected otherwise."""
    if not isinstance(loaded, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in loaded.items()
    ):
        raise LbamError(f"{path}: expected a state_dict of {contents}")
    return dict(loaded)

"""Reading foreign ``.pth`` weight files safely: ``torch.load(weights_only=True)`` on the CPU, one-line errors."""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from lbam.errors import LbamError

# Floating-point types a weight file may store (float8 and others cannot be checked or computed with).
WEIGHT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


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
    _check_archive(path, what)
    try:
        with warnings.catch_warnings():  # torch warns about odd archives; lbam says what it refuses
            warnings.simplefilter("ignore")
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


# torch.save stores tensors uncompressed: an archive that unpacks to much more than its own size is
# a compressed one made to exhaust memory (a 3 MB file that unpacks to 3 GB).
ZIP_SLACK_BYTES = 1 << 20


def _check_archive(path: Path, what: str) -> None:
    """Refuse, from the zip directory alone, archives that would unpack huge or are TorchScript."""
    if not zipfile.is_zipfile(path):
        return  # the legacy format is read sequentially and cannot claim more than it holds
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise LbamError(f"cannot read {what} {path}: not a PyTorch checkpoint") from None
    if any(info.filename.endswith("/constants.pkl") or "/code/" in info.filename for info in infos):
        raise LbamError(
            f"cannot read {what} {path}: it is a TorchScript program; lbam reads weights (a state_dict "
            "saved with torch.save, or an lbam .safetensors file)"
        )
    declared = sum(info.file_size for info in infos)
    size = path.stat().st_size
    if declared > size + ZIP_SLACK_BYTES:
        raise LbamError(
            f"cannot read {what} {path}: it unpacks to {declared} bytes from a {size}-byte file; "
            "PyTorch files are not compressed, so lbam refuses it"
        )


def as_state_dict(loaded: object, path: str | os.PathLike, contents: str = "tensors") -> dict[str, Tensor]:
    """``loaded`` as a ``{name: tensor}`` dict; LbamError saying what was expected otherwise."""
    if not isinstance(loaded, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in loaded.items()
    ):
        raise LbamError(f"{path}: expected a state_dict of {contents}")
    return dict(loaded)


def check_tensor_values(state: Mapping[str, Tensor], expected: Mapping[str, Tensor], what: str) -> None:
    """LbamError unless every tensor of ``state`` suits its counterpart in ``expected``.

    Floating-point slots need real, finite floating-point values (complex weights would lose their
    imaginary part, NaN would spread through every output); integer slots (batch-norm counters)
    need integers.
    """
    for key, reference in expected.items():
        value = state[key]
        if reference.is_floating_point():
            if value.dtype not in WEIGHT_DTYPES:
                raise LbamError(
                    f"{what}: {key!r} holds {value.dtype} values, expected float32, float16, bfloat16 or float64"
                )
            if not bool(torch.isfinite(value).all()):
                raise LbamError(f"{what}: {key!r} holds NaN or infinite values")
        elif value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            raise LbamError(f"{what}: {key!r} holds {value.dtype} values, expected integers")

"""The one device policy of lbam: inference, training and evaluation all pick devices here.

``auto`` means CUDA, then Apple MPS, then the CPU. Under ``torchrun`` (``LOCAL_RANK`` set) ``auto``
and a bare ``cuda`` mean ``cuda:<LOCAL_RANK>``, so one command line serves every process.
"""

from __future__ import annotations

import os

import torch

from lbam.errors import LbamError

DEVICES = ("auto", "cpu", "cuda", "mps")


def local_rank() -> int:
    """This process's rank on its node under torchrun (``LOCAL_RANK``), 0 when run alone."""
    value = os.environ.get("LOCAL_RANK", "0")
    try:
        return int(value)
    except ValueError:
        raise LbamError(f"bad torchrun environment: LOCAL_RANK={value!r} is not an integer") from None


def resolve_device(device: str | torch.device | None = "auto", rank: int | None = None) -> torch.device:
    """A torch device from ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or a ``torch.device``.

    Args:
        device: the name; None means ``auto``.
        rank: the local rank that ``auto`` and a bare ``cuda`` map to; None reads ``LOCAL_RANK``.

    Raises:
        LbamError: an unknown name, or a device this machine does not have.
    """
    if isinstance(device, torch.device):
        return device
    name = "auto" if device is None else str(device)
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank() if rank is None else rank}"
    try:
        resolved = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise LbamError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    _check_available(resolved, name)
    return resolved


def _check_available(device: torch.device, name: str) -> None:
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise LbamError(f"device {name!r} asked for but CUDA is not available here; use cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise LbamError(f"device {name!r} does not exist: {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise LbamError(f"device {name!r} asked for but Apple MPS is not available here; use cpu or auto")
    elif device.type != "cpu":
        raise LbamError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 at full speed (not emulated)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False

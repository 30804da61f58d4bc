"""How a command runs its model, shared by `lbam inpaint` and `lbam serve`: precision, compile, threads.

Measured on this project's 2-core AMD EPYC with AVX512-BF16 (docs/benchmarks.md, "lbam.optimize"
and "Threads"): bfloat16 runs the model in 0.52x (width 1) to 0.76x (lbam-compact) of float32's
time with the output within 58 to 64 dB PSNR of it, and needs no compiling; ``auto`` takes it
wherever the device computes bfloat16 natively. Making the bfloat16 copy costs 0.07 s
(lbam-compact) to 0.3 to 0.9 s (width 1) once, more than one photo's few windows save, so the
default is ``auto`` for folder runs and the server and ``fp32`` for a single photo. Compiling
costs 22 to 51 s per window shape the first time (3 to 8 s once cached) and gains 0 to 30 % more;
it pays only over thousands of windows, so it stays a choice (``--compile``).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

from lbam.defaults import DEFAULT_MODEL, PRECISIONS
from lbam.errors import LbamError

T = TypeVar("T")

if TYPE_CHECKING:  # torch loads only when a command runs, not for `lbam --help`
    from torch import nn


DEVICE_HELP = "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps"


def add_device_argument(parser: argparse.ArgumentParser, default: str | None = "auto") -> None:
    """``--device``, the same words and default in every command (None: the config file's)."""
    shown = "the config's train.device" if default is None else default
    parser.add_argument("--device", default=default, metavar="DEV", help=f"{DEVICE_HELP} (default: {shown})")


def add_model_argument(parser: argparse.ArgumentParser, default: str | None = DEFAULT_MODEL) -> None:
    """``--model``: the weights every inference command runs, a file or a name from ``lbam models``."""
    shown = default or DEFAULT_MODEL
    parser.add_argument(
        "--model", default=default, metavar="FILE|NAME", help=f"weights file or model name (default: {shown})"
    )


def add_overrides_argument(parser: argparse.ArgumentParser, what: str = "") -> None:
    """``--set KEY=VALUE``: any training-config key, repeatable (the last one wins)."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"set a config key{what}, e.g. --set losses.style=0 --set optim.g_betas=0.5,0.9 (repeatable)",
    )


def settings_from_args(cls: type[T], args: argparse.Namespace, **values: Any) -> T:
    """A settings dataclass from the parsed arguments of the same names; ``values`` win."""
    found = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    return cls(**{**found, **values})


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="auto: bfloat16 where the CPU/GPU computes it natively, else float32; fp32: the "
        "reference output (default: auto for folders and the server, fp32 for one photo)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="compile the model with torch.compile (inductor, frozen weights; cached under ~/.cache/lbam): "
        "half a minute to a minute per window shape the first time, then up to 30 %% faster",
    )
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads for the model (default: torch's choice, one per core); 1 is best on a "
        "machine busy with other work",
    )


def apply_threads(args: argparse.Namespace) -> None:
    """Set torch's thread count from ``--threads`` (validated)."""
    if args.threads is None:
        return
    if not 1 <= args.threads <= 1024:
        raise LbamError(f"--threads must be from 1 to 1024, got {args.threads}")
    import torch

    torch.set_num_threads(args.threads)


def runtime_model(model: nn.Module, args: argparse.Namespace, many: bool) -> nn.Module:
    """``model`` as ``--precision`` and ``--compile`` ask (itself for float32, uncompiled).

    ``many``: it will fill many windows (a folder, a server), where bfloat16 is the default.
    """
    from lbam.inference.optimize import optimize

    precision = args.precision or ("auto" if many else "fp32")
    return optimize(model, precision, compile=args.compile)

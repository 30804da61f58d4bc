"""How a command runs its model, shared by `lbam inpaint` and `lbam serve`: precision, compile, threads.

Measured on this project's 2-core AMD EPYC with AVX512-BF16 (docs/benchmarks.md, "lbam.optimize"
and "Threads"): bfloat16 runs the model in 0.52x (width 1) to 0.76x (lbam-compact) of float32's
time with the output within 58 to 64 dB PSNR of it, and needs no compiling, so ``auto`` (the
default) takes it wherever the device computes bfloat16 natively. Compiling costs 22 to 51 s per
window shape the first time (3 to 8 s once cached) and gains 0 to 30 % more; it pays only over
thousands of windows, so it stays a choice (``--compile``).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from lbam.errors import LbamError
from lbam.options import PRECISIONS

if TYPE_CHECKING:  # torch loads only when a command runs, not for `lbam --help`
    from torch import nn


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto (default): bfloat16 where the CPU/GPU computes it natively, else float32; fp32 "
        "gives the reference output (lbam.optimize)",
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


def runtime_model(model: nn.Module, args: argparse.Namespace) -> nn.Module:
    """``model`` as ``--precision`` and ``--compile`` ask (itself for float32, uncompiled)."""
    from lbam.inference.optimize import optimize

    return optimize(model, args.precision, compile=args.compile)

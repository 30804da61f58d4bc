"""How a command runs its model, shared by `lbam inpaint` and `lbam serve`: precision, backend, threads.

Which engine is fastest depends on the CPU (docs/benchmarks.md, "Backends"), so for folder runs and
the server ``--backend auto`` (their default) measures eager torch, inductor, ONNX Runtime and
OpenVINO (bfloat16 ones where the CPU has it natively) once per machine, model and size bucket and
keeps the fastest within tolerance (:mod:`lbam.inference.backends`). A single photo runs eagerly
unless asked: exporting or compiling costs more than its few windows save. ``--precision`` decides
whether bfloat16 may be used: ``auto`` for folder runs and the server, ``fp32`` (the reference
output) for a single photo.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import TYPE_CHECKING, Any, TypeVar

from lbam.defaults import BACKEND_CHOICES, DEFAULT_MODEL, PRECISIONS
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
        help="the same as --backend inductor: torch.compile (frozen weights; cached under ~/.cache/lbam), "
        "half a minute to a minute per window shape the first time",
    )
    parser.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default=None,
        help="the engine that runs the model: auto measures eager, inductor, onnxruntime and "
        "openvino (and bfloat16 ones where native) on first use for this machine, model and size, "
        "and keeps the fastest within tolerance (cached) (default: $LBAM_BACKEND, else auto for "
        "folders and the server, eager for one photo)",
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


def backend_choice(args: argparse.Namespace, many: bool) -> str:
    """``--backend``, else ``inductor`` for ``--compile``, else ``$LBAM_BACKEND``, else ``auto`` for
    folders and the server and ``eager`` for one photo."""
    if args.compile and args.backend not in (None, "inductor"):
        raise LbamError(f"--compile means --backend inductor; it cannot go with --backend {args.backend}")
    default = os.environ.get("LBAM_BACKEND") or ("auto" if many else "eager")
    backend = args.backend or ("inductor" if args.compile else default)
    if backend not in BACKEND_CHOICES:
        raise LbamError(f"LBAM_BACKEND must be one of {', '.join(BACKEND_CHOICES)}, got {backend!r}")
    return backend


def runtime_model(model: nn.Module, args: argparse.Namespace, many: bool, server: bool = False) -> nn.Module:
    """``model`` as ``--precision`` and ``--backend`` ask.

    ``many``: it will fill many windows (a folder, a server), where bfloat16 and the measured
    backend are the defaults. ``server``: a long-lived process, where ``auto`` may also choose a
    compiled backend (its compile, once per process, would cost a folder run more than it saves).
    """
    from lbam.inference.backends import BackendGenerator
    from lbam.inference.optimize import optimize

    precision = args.precision or ("auto" if many else "fp32")
    backend = backend_choice(args, many)
    if backend == "eager":  # torch as it is, in bfloat16 where --precision asks and the device has it
        return optimize(model, precision, compile=False)
    return BackendGenerator(model, backend, bf16=precision != "fp32", compiled=server)

"""`lbam convert`: the authors' released generator (.pth) to an lbam safetensors file."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "convert the authors' LBAM_Pytorch generator .pth into an lbam .safetensors file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="the authors' generator state_dict (.pth)")
    parser.add_argument("output", type=Path, help="where to write the .safetensors file")
    parser.add_argument(
        "--last-activation",
        choices=["tanh01", "abs_tanh"],
        default=None,
        help="last activation for the older batch-norm layout (paper variant); default tanh01",
    )
    parser.add_argument("--half", action="store_true", help="store float16 weights (half the size)")
    # Outputs are always replaced (atomically; never an input): kept so that old scripts still run.
    parser.add_argument("--force", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from lbam.errors import LbamError
    from lbam.model.loading import save_model
    from lbam.model.official import convert_official_state_dict, is_official_state_dict, read_pth_state_dict

    if args.output.resolve() == args.input.resolve():
        raise LbamError("output must differ from the input")
    state = read_pth_state_dict(args.input)
    if not is_official_state_dict(state):
        first = next(iter(state), "<empty>")
        raise LbamError(f"{args.input} is not an LBAM_Pytorch generator state_dict (first key {first!r})")
    model, info = convert_official_state_dict(state, last_activation=args.last_activation)
    save_model(model, args.output, source=f"converted from {args.input.name} (LBAM_Pytorch)", half=args.half)
    params = sum(p.numel() for p in model.parameters())
    print(
        f"wrote {args.output}: variant {info['variant']}, width {info['width']}, "
        f"last activation {info['last_activation']}, {params:,} parameters"
    )
    return 0

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
    from lbam.model.official import load_official_generator
    from lbam.utils.files import resolve_path

    if resolve_path(args.output) == resolve_path(args.input):
        raise LbamError("output must differ from the input")
    model = load_official_generator(args.input, last_activation=args.last_activation)
    save_model(model, args.output, source=f"converted from {args.input.name} (LBAM_Pytorch)", half=args.half)
    card = model.card
    print(
        f"wrote {args.output}: variant {card.settings['variant']}, width {card.settings['width']:g}, "
        f"last activation {card.settings['last_activation']}, {card.parameters:,} parameters"
    )
    return 0

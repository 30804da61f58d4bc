"""`lbam export`: the generator of a training run as a weight file for `lbam inpaint` / `lbam.load_model`."""

from __future__ import annotations

import argparse

HELP = "write the generator of a training run to a .safetensors file that lbam inpaint can use"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by lbam train")
    parser.add_argument("out", metavar="OUT.safetensors", help="the weight file to write")
    parser.add_argument(
        "--checkpoint",
        default=None,
        metavar="best|latest|STEP",
        help="which checkpoint (default: best when the run has validated, else latest)",
    )
    parser.add_argument("--fp16", action="store_true", help="store float16 weights (half the file size)")


def run(args: argparse.Namespace) -> int:
    from safetensors import safe_open

    from lbam.export.generator import export_generator

    path = export_generator(args.run_dir, args.out, which=args.checkpoint, half=args.fp16)
    with safe_open(str(path), framework="pt") as f:
        source = (f.metadata() or {}).get("source", "")
    print(f"wrote {path} ({source}); use it with: lbam inpaint PHOTO MASK -o OUT --model {path}")
    return 0

"""`lbam inpaint`: fill the holes of a photo, or of a folder of photos, with an LBAM generator.

    lbam inpaint photo.jpg mask.png -o out.png
    lbam inpaint photos/ masks/ -o results/        # masks paired by file name
    lbam inpaint photos/ mask.png -o results/      # one mask for every photo

Masks: white = hole (``--invert-mask`` for white = keep).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lbam.cli.runtime import (
    add_device_argument,
    add_model_argument,
    add_runtime_arguments,
    apply_threads,
    runtime_model,
)
from lbam.errors import LbamError
from lbam.options import add_option_arguments, options_from_args

HELP = "fill the holes of a photo (or a folder of photos) given a mask (white = hole)"


def non_empty_path(text: str) -> Path:
    """A path argument that may not be empty (``-o ''`` would mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the path must not be empty")
    return Path(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=Path, help="a photo, or a folder of photos")
    parser.add_argument(
        "mask",
        type=Path,
        help="the mask (white = hole), or for a photo folder: a folder of masks named like the photos "
        "(a.jpg -> a.png or a_mask.png), or one mask for every photo",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=non_empty_path,
        required=True,
        help="output file (its suffix picks the format), or folder",
    )
    add_model_argument(parser)
    add_device_argument(parser)
    add_option_arguments(parser)
    parser.add_argument(
        "--ext", help="folder mode: output format for every photo (png, jpg, ...); default: keep"
    )
    add_runtime_arguments(parser)
    parser.add_argument(
        "--skip-existing",
        action="store_true",
        help="folder mode: leave photos whose output already exists (to resume a batch); "
        "otherwise existing outputs are replaced, inputs never",
    )
    parser.add_argument(
        "--quality",
        "--jpeg-quality",
        dest="jpeg_quality",
        type=int,
        default=95,
        metavar="Q",
        help="JPEG/WebP quality (default: 95). JPEG and WebP re-encode every pixel: only PNG, TIFF "
        "and BMP outputs keep the known pixels bit-exact",
    )


def run(args: argparse.Namespace) -> int:
    from lbam.inference.batch import Job, inpaint_file
    from lbam.inference.pipeline import get_model

    options = options_from_args(args)
    apply_threads(args)
    if not 1 <= args.jpeg_quality <= 100:
        raise LbamError(f"--quality must be between 1 and 100, got {args.jpeg_quality}")

    def load() -> object:
        return runtime_model(get_model(args.model, args.device), args, many=args.image.is_dir())

    if args.image.is_dir():
        return run_folder(args, options, load)
    if args.ext is not None or args.skip_existing:
        raise LbamError(
            "--ext and --skip-existing are for folders; for one photo the suffix of -o picks the format"
        )
    if args.mask.is_dir():
        raise LbamError(f"mask {args.mask} is a folder but {args.image} is not: give a mask file")
    output = args.output
    if output.is_dir():
        output = output / args.image.name
    result = inpaint_file(Job(args.image, args.mask, output), load, options, jpeg_quality=args.jpeg_quality)
    for note in result.notes:
        print(f"lbam: note: {note}", file=sys.stderr)
    print(result.summary())
    return 0


def run_folder(args: argparse.Namespace, options: object, load: object) -> int:
    """A folder run (sharded across torchrun's processes when there are several); rank 0 reports."""
    from lbam.inference.batch import inpaint_folder
    from lbam.inference.shard import from_environment, merge

    shard = from_environment()
    summary = inpaint_folder(
        args.image,
        args.mask,
        args.output,
        load,
        options,
        ext=args.ext,
        jpeg_quality=args.jpeg_quality,
        skip_existing=args.skip_existing,
        progress=None if shard.count == 1 else False,
        shard=(shard.index, shard.count),
    )
    summary = merge(summary, shard)
    if shard.index != 0:  # rank 0 reports for the whole run
        return 1 if summary.failures else 0
    for result in summary.results:
        for note in result.notes:
            print(f"lbam: note: {result.image.name}: {note}", file=sys.stderr)
    if summary.unused_masks:
        names = ", ".join(p.name for p in summary.unused_masks)
        print(f"lbam: note: {len(summary.unused_masks)} masks match no photo: {names}", file=sys.stderr)
    done = len(summary.results)
    copied = sum(r.report is None for r in summary.results)
    skipped = f", skipped {len(summary.skipped)} already done" if summary.skipped else ""
    print(
        f"inpainted {done - copied} photos, copied {copied} without hole{skipped}, {len(summary.failures)} failed, "
        f"into {args.output} in {summary.seconds:.1f} s"
    )
    if summary.failures:
        print(f"lbam: {len(summary.failures)} photos failed:", file=sys.stderr)
        for image, reason in summary.failures:
            print(f"  {image}: {reason}", file=sys.stderr)
        return 1
    return 0

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

from lbam.errors import LbamError

HELP = "fill the holes of a photo (or a folder of photos) given a mask (white = hole)"

STRATEGIES = ("auto", "full", "crop", "resize")
DEVICES = ("auto", "cpu", "cuda", "mps")


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
        type=Path,
        required=True,
        help="output file (its suffix picks the format), or folder",
    )
    parser.add_argument(
        "--model", default="lbam-compact", help="weights file or model name (default: %(default)s)"
    )
    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto: cuda, then mps, then cpu")
    parser.add_argument(
        "--invert-mask", action="store_true", help="the mask is white where the photo is kept"
    )
    parser.add_argument("--dilate", type=int, default=0, metavar="N", help="grow the holes by N pixels")
    parser.add_argument(
        "--resize-mask",
        action="store_true",
        help="stretch a mask of another size to the photo (nearest neighbour)",
    )
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="auto",
        help="full: one pass; crop: one window per hole region; resize: downscale to --max-size; "
        "auto (default): full up to --max-size, else crop",
    )
    parser.add_argument(
        "--max-size",
        type=int,
        default=1024,
        metavar="PX",
        help="longest side of one model pass (default: %(default)s)",
    )
    parser.add_argument(
        "--crop-margin",
        type=int,
        default=128,
        metavar="PX",
        help="context around each hole (default: %(default)s)",
    )
    parser.add_argument(
        "--crop-min-size",
        type=int,
        default=512,
        metavar="PX",
        help="smallest crop window side (default: %(default)s)",
    )
    parser.add_argument(
        "--ext", help="folder mode: output format for every photo (png, jpg, ...); default: keep"
    )
    parser.add_argument(
        "--jpeg-quality", type=int, default=95, metavar="Q", help="JPEG/WebP quality (default: 95)"
    )


def run(args: argparse.Namespace) -> int:
    from lbam.inference.batch import inpaint_file, inpaint_folder
    from lbam.inference.pipeline import InpaintOptions, get_model

    options = InpaintOptions(
        invert_mask=args.invert_mask,
        dilate=args.dilate,
        resize_mask=args.resize_mask,
        strategy=args.strategy,
        max_size=args.max_size,
        crop_margin=args.crop_margin,
        crop_min_size=args.crop_min_size,
    )
    if not 1 <= args.jpeg_quality <= 100:
        raise LbamError(f"--jpeg-quality must be between 1 and 100, got {args.jpeg_quality}")

    def load() -> object:
        return get_model(args.model, args.device)

    if args.image.is_dir():
        summary = inpaint_folder(
            args.image, args.mask, args.output, load, options, ext=args.ext, jpeg_quality=args.jpeg_quality
        )
        for result in summary.results:
            for note in result.notes:
                print(f"lbam: note: {result.image.name}: {note}", file=sys.stderr)
        if summary.unused_masks:
            names = ", ".join(p.name for p in summary.unused_masks)
            print(f"lbam: note: {len(summary.unused_masks)} masks match no photo: {names}", file=sys.stderr)
        done = len(summary.results)
        copied = sum(r.report is None for r in summary.results)
        print(
            f"inpainted {done - copied} photos, copied {copied} without hole, {len(summary.failures)} failed, "
            f"into {args.output} in {summary.seconds:.1f} s"
        )
        if summary.failures:
            print(f"lbam: {len(summary.failures)} photos failed:", file=sys.stderr)
            for image, reason in summary.failures:
                print(f"  {image}: {reason}", file=sys.stderr)
            return 1
        return 0

    if args.ext is not None:
        raise LbamError("--ext is for folders; for one photo the suffix of -o picks the format")
    if args.mask.is_dir():
        raise LbamError(f"mask {args.mask} is a folder but {args.image} is not: give a mask file")
    output = args.output
    if output.is_dir():
        output = output / args.image.name
    result = inpaint_file(args.image, args.mask, output, load, options, jpeg_quality=args.jpeg_quality)
    for note in result.notes:
        print(f"lbam: note: {note}", file=sys.stderr)
    print(result.summary())
    return 0

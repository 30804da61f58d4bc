"""`lbam masks`: write reproducible mask sets and measure the hole ratios of mask folders.

    lbam masks generate --kind lama_thick:2,deepfill:1 --count 1000 --size 256 --seed 0 --out masks/
    lbam masks stats masks/            # hole-ratio histogram in the six NVIDIA bins

Mask files are 8-bit grayscale PNGs, white = hole. ``generate`` writes ``mask_00000.png`` ... and
``index.csv`` (file, hole_ratio, bin); mask k is drawn from ``numpy.random.default_rng((seed, k))``,
so the same arguments give byte-identical files, and a larger --count extends a smaller set.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from pathlib import Path

from lbam.errors import LbamError

HELP = "generate reproducible hole-mask sets, or print the hole-ratio histogram of a mask folder"

MASK_NAME = re.compile(r"mask_\d+\.png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="masks_command", metavar="ACTION")
    generate = sub.add_parser(
        "generate",
        help="write N masks (white = hole) and index.csv",
        description="Write N masks (8-bit PNG, white = hole) and index.csv (file, hole_ratio, bin).",
    )
    generate.add_argument(
        "--kind",
        required=True,
        help="a mask kind, or a weighted list kind[=path][:weight],... e.g. lama_thick:2,deepfill:1 or "
        "files=/data/nvidia_masks (kinds: files, noise, lama_thin, lama_medium, lama_thick, lama_boxes, deepfill, objects)",
    )
    generate.add_argument("--count", type=int, required=True, help="number of masks")
    generate.add_argument(
        "--size", default="256", help="S (square) or WxH, e.g. 256 or 384x256 (default 256)"
    )
    generate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    generate.add_argument("--out", required=True, help="output folder (created; must be empty or absent)")
    generate.add_argument(
        "--overwrite", action="store_true", help="replace a folder that holds an earlier generated set"
    )
    stats = sub.add_parser(
        "stats",
        help="hole-ratio histogram of a mask folder",
        description="Print per-bin counts and fractions of hole ratios in the six NVIDIA bins "
        "(0.01, 0.1], ..., (0.5, 0.6], plus below / above, and the mean hole ratio. White = hole.",
    )
    stats.add_argument("folder", help="folder of mask images (searched recursively)")
    stats.add_argument("--size", default=None, help="resize each mask (nearest) to S or WxH before measuring")
    parser.set_defaults(_parser=parser)


MAX_MASK_SIDE = 8192


def parse_size(text: str) -> tuple[int, int]:
    """``"S"`` or ``"WxH"`` as (height, width)."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", str(text))
    if not match:
        raise LbamError(f"--size must be S or WxH (e.g. 256 or 384x256), got {text!r}")
    width = int(match.group(1))
    height = int(match.group(2)) if match.group(2) else width
    if not (1 <= width <= MAX_MASK_SIDE and 1 <= height <= MAX_MASK_SIDE):
        raise LbamError(f"--size sides must be from 1 to {MAX_MASK_SIDE} pixels, got {text!r}")
    return height, width


def run(args: argparse.Namespace) -> int:
    if args.masks_command == "generate":
        return generate(args)
    if args.masks_command == "stats":
        return stats(args)
    args._parser.print_help()
    return 2


def generate(args: argparse.Namespace) -> int:
    from lbam.data.masks import mask_generator_from_spec, parse_kind_list
    from lbam.data.masks.sets import write_mask_set

    if not 1 <= args.count <= 1_000_000:
        raise LbamError(f"--count must be from 1 to 1000000, got {args.count}")
    if args.seed < 0:
        raise LbamError(f"--seed must be >= 0, got {args.seed}")
    size = parse_size(args.size)
    out = Path(args.out).expanduser()
    _check_out_dir(out, args.overwrite)
    generator = mask_generator_from_spec(parse_kind_list(args.kind))

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        ratios, bins = write_mask_set(staging, generator, args.count, size, args.seed)
        _move_into_place(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    print(f"wrote {args.count} masks of {size[1]}x{size[0]} (WxH) to {out}")
    print_histogram(ratios, bins)
    return 0


def _check_out_dir(out: Path, overwrite: bool) -> None:
    """An absent or empty folder is fine; a generated set only with --overwrite; anything else never."""
    from lbam.data.masks.sets import INDEX_NAME

    if out.exists() and not out.is_dir():
        raise LbamError(f"--out {str(out)!r} exists and is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise LbamError(
            f"--out folder {str(out)!r} is not empty (use --overwrite to replace a generated set)"
        )
    foreign = [p.name for p in out.iterdir() if not (p.name == INDEX_NAME or MASK_NAME.fullmatch(p.name))]
    if foreign:
        raise LbamError(
            f"--out folder {str(out)!r} holds files that 'lbam masks generate' did not write "
            f"(e.g. {foreign[0]!r}); refusing to replace it"
        )


def _move_into_place(staging: Path, out: Path) -> None:
    """Swap the finished staging folder in, so ``out`` is never seen half written."""
    if not out.exists():
        staging.rename(out)
        return
    old = out.with_name(f".{out.name}.old-{staging.name}")
    out.rename(old)
    try:
        staging.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def stats(args: argparse.Namespace) -> int:

    from lbam.imaging.files import list_images
    from lbam.imaging.masks import hole_ratio_bin, read_mask, resize_hole

    size = parse_size(args.size) if args.size is not None else None
    files = list_images(args.folder, what="mask")
    ratios, bins, unreadable = [], [], []
    for path in files:
        try:
            hole = read_mask(path)
        except LbamError as error:
            unreadable.append(f"{path.name} ({error})")
            continue
        if size is not None:
            hole = resize_hole(hole, size)
        ratios.append(float(hole.mean()))
        bins.append(hole_ratio_bin(hole))
    if not ratios:
        raise LbamError(f"no mask in {args.folder!r} could be read ({len(files)} files)")
    resized = f", resized to {size[1]}x{size[0]} (WxH)" if size is not None else ""
    print(f"{len(ratios)} masks in {args.folder}{resized}")
    if unreadable:
        print(f"skipped {len(unreadable)} unreadable files: {', '.join(unreadable[:5])}")
    print_histogram(ratios, bins)
    return 0


def print_histogram(ratios: list[float], bins: list[int]) -> None:
    """Counts and fractions per NVIDIA hole-ratio bin (0 = below, 1..6, 7 = above) and the mean."""
    from lbam.imaging.masks import NVIDIA_BIN_EDGES, bin_label

    counts = [0] * (len(NVIDIA_BIN_EDGES) + 1)
    for index in bins:
        counts[index] += 1
    print(f"{'bin':<6} {'hole ratio':<13} {'count':>7} {'fraction':>9}")
    for index, count in enumerate(counts):
        name = "below" if index == 0 else "above" if index == len(counts) - 1 else str(index)
        print(f"{name:<6} {bin_label(index):<13} {count:>7} {count / len(ratios):>9.3f}")
    print(f"mean hole ratio: {sum(ratios) / len(ratios):.4f}")

"""Regenerate the evaluation section of docs/benchmarks.md (rerun whenever a shipped model changes).

Runs ``lbam evaluate``'s protocol on Kodak24 (``../shared/data/eval/kodak24``) with the NVIDIA
irregular test masks (``../shared/data/masks/nvidia_irregular_test``) at 256 px for the classical
baselines plus any ``--methods`` given, then rewrites only the region of docs/benchmarks.md between
``<!-- evaluate:start -->`` and ``<!-- evaluate:end -->`` (other sections are kept; the region is
appended if the markers are missing) and puts one small contact sheet per bin in docs/images/.

    python benchmarks/evaluate_kodak.py                          # classical baselines
    python benchmarks/evaluate_kodak.py --methods lbam:lbam-compact

The contact sheets show NVIDIA mask shapes (CC BY-NC-SA 4.0, research only) on Kodak images: they
belong in docs/ only, never in the package.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from lbam.errors import LbamError
from lbam.evaluation.evaluate import EvaluationSettings, evaluate
from lbam.evaluation.methods import CLASSICAL, parse_method_list
from lbam.evaluation.report import format_tables
from lbam.utils.files import atomic_write_bytes, atomic_write_text

REPO = Path(__file__).resolve().parents[1]
IMAGES = "../shared/data/eval/kodak24"
MASKS = "../shared/data/masks/nvidia_irregular_test"
DOCS = REPO / "docs" / "benchmarks.md"
START = "<!-- evaluate:start -->"
END = "<!-- evaluate:end -->"
SIZE = 256
PAIRS = 100
SEED = 0
GRID_TILE = 128


def replace_region(text: str, region: str) -> str:
    """``text`` with the part between START and END (markers included) replaced by ``region``.

    ``region`` must start with START and end with END. Without markers it is appended; a START
    without END (or END before START) is an error, so a half-edited file is never clobbered.
    """
    start, end = text.find(START), text.find(END)
    if start == -1 and end == -1:
        separator = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        return f"{text}{separator}{region}\n"
    if start == -1 or end == -1 or end < start:
        raise LbamError(f"docs/benchmarks.md has a broken {START} ... {END} region; fix the markers by hand")
    return text[:start] + region + text[end + len(END) :]


def render_region(summary: dict, methods: list[str], grids: list[str]) -> str:
    """The Markdown between the markers: how to reproduce, the tables, notes and contact sheets."""
    settings = summary["settings"]
    versions = summary["versions"]
    machine = summary["machine"]
    command = (
        f"lbam evaluate --images {IMAGES} --masks {MASKS} --methods {','.join(methods)} "
        f"--size {settings['size']} --pairs {settings['pairs']} --seed {settings['seed']} --out OUT"
    )
    lines = [
        START,
        "## Evaluation: Kodak24 × NVIDIA irregular test masks, 256 px",
        "",
        "Written by `python benchmarks/evaluate_kodak.py`; do not edit by hand. Rerun it whenever a shipped",
        "model changes. The same numbers come from:",
        "",
        f"    {command}",
        "",
        f"Protocol (details in `lbam evaluate --help`): the 24 Kodak images, center-cropped and resized to "
        f"{settings['size']} px (Lanczos); the 1,200 NVIDIA test masks of `shared/data` (white = hole), resized "
        "with nearest-neighbour and binned by the hole ratio measured after the resize; "
        f"{settings['pairs']} masks per bin drawn with seed {settings['seed']}, each paired with a Kodak image "
        "in a seeded cycling order; every method sees the same pairs with the holes zeroed. Metrics are "
        "computed on the whole 8-bit composited image (known pixels included), means over pairs.",
        "",
        f"Machine: {machine['cpus']} CPU cores, {machine['torch_threads']} torch threads; lbam "
        f"{versions['lbam']}, torch {versions['torch']}, OpenCV {versions['opencv']}, scikit-image "
        f"{versions['scikit-image']}. Times depend on the machine and its load.",
        "",
    ]
    notes = [n for n in summary.get("notes", []) if not n.startswith("FID")]
    lines += [f"- {note}" for note in notes]
    lines += ["", format_tables(summary).rstrip("\n"), ""]
    if grids:
        lines += [
            "One pair per bin (input with the hole in white, each method, ground truth). The hole shapes are",
            "NVIDIA's irregular test masks (Liu et al. 2018, CC BY-NC-SA 4.0, research use only); the",
            "photos are Kodak's.",
            "",
        ]
        lines += [f"![{Path(g).stem}]({g})" for g in grids]
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--methods", default="", help="extra methods after telea,ns,biharmonic (e.g. lbam:lbam-compact)"
    )
    parser.add_argument("--pairs", type=int, default=PAIRS, help=f"pairs per bin (default {PAIRS})")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the Markdown file to update")
    parser.add_argument("--out", type=Path, help="keep the full run here (default: a temporary folder)")
    parser.add_argument(
        "--images", type=Path, default=REPO / IMAGES, help=f"Kodak24 folder (default {IMAGES})"
    )
    parser.add_argument(
        "--masks", type=Path, default=REPO / MASKS, help=f"NVIDIA test masks (default {MASKS})"
    )
    args = parser.parse_args(argv)

    images, masks = args.images.resolve(), args.masks.resolve()
    methods = list(CLASSICAL) + (parse_method_list(args.methods) if args.methods.strip() else [])
    with tempfile.TemporaryDirectory(prefix="lbam-evaluate-") as scratch:
        out = args.out or Path(scratch)
        try:
            summary = evaluate(
                EvaluationSettings(
                    images=images,
                    masks=masks,
                    methods=methods,
                    out=out,
                    size=SIZE,
                    pairs=args.pairs,
                    seed=args.seed,
                    device=args.device,
                    grid_pairs=1,
                    grid_tile=GRID_TILE,
                )
            )
        except LbamError as error:
            print(f"evaluate_kodak: error: {error}", file=sys.stderr)
            return 2
        docs = args.docs.resolve()
        grids = []
        for grid in sorted(out.glob("grid_bin*.png")):
            target = docs.parent / "images" / f"evaluate_{grid.name}"
            atomic_write_bytes(target, grid.read_bytes())
            grids.append(target.relative_to(docs.parent).as_posix())
    old = docs.read_text(encoding="utf-8") if docs.exists() else "# Benchmarks\n\n"
    atomic_write_text(docs, replace_region(old, render_region(summary, methods, grids)))
    print(f"updated {docs} and {len(grids)} contact sheets in {docs.parent / 'images'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

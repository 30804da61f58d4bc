"""Object removal on Kodak24 at its own resolution: the protocol of docs/benchmarks.md "Object removal".

Each of the 24 Kodak photos (768x512 or 512x768) gets two holes a person would paint to remove
something: an ``objects`` mask (object-shaped blobs, half of them cut by the border) and,
alternately, a LaMa thick-stroke or a LaMa box mask, all drawn with seed (0, photo index, k), so
the 48 pairs never change. Every method fills the same pairs; the table gives PSNR, SSIM and
ST-LPIPS of the composited result over all pairs and over those whose hole touches the border,
and the seconds per pair. Contact sheets at full resolution go to docs/images/.

    python benchmarks/object_removal.py                               # the anchors and lbam-compact
    python benchmarks/object_removal.py --methods lbam:new.safetensors@fit --write-docs
    python benchmarks/object_removal.py --fit-grid                    # measures fit's settings
    python benchmarks/object_removal.py --images DIR --region NAME --write-docs   # another photo set
    python benchmarks/object_removal.py --picture                     # the README's picture

With ``--images`` and ``--region`` the same protocol runs on any folder of photos (at their own
resolution) and goes to a region of its own, with contact sheets named after it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lbam.data.masks import build_mask_generator
from lbam.evaluation.evaluate import MethodRun, run_methods
from lbam.evaluation.methods import make_methods, parse_method_list
from lbam.evaluation.protocol import Pair, PreparedPair
from lbam.evaluation.report import labelled_sheet, make_grid, show_hole
from lbam.features.stlpips import load_st_lpips
from lbam.imaging.files import list_images
from lbam.imaging.io import load_rgb
from lbam.imaging.pixels import shrink, to_uint8
from lbam.imaging.png import write_png
from lbam.inference import pipeline

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO.parent / "shared" / "data" / "eval" / "kodak24"
DOCS = REPO / "docs" / "benchmarks.md"
REGION = "object_removal"
DEFAULT_METHODS = (
    "telea,ns,patchmatch,lbam:lbam-compact@fit+paste,lbam:lbam-compact@fit,lbam:lbam-compact@fit+texture"
)
SECOND_KINDS = ("lama_thick", "lama_boxes")
SHEET_PAIRS = (1, 14, 30, 45)  # shown on the contact sheets
PICTURE_PAIRS = (24, 21)  # the README's picture: bushes by a river, a jetty's posts (both landscape)
PICTURE = REPO / "docs" / "images" / "object_removal.png"


def make_pairs(images: Path) -> list[PreparedPair]:
    """The 48 fixed (photo, hole) pairs; ``pair.bin`` is 1 when the hole touches the border, else 0."""
    objects = build_mask_generator("objects", border=0.5)
    others = {kind: build_mask_generator(kind) for kind in SECOND_KINDS}
    prepared = []
    for index, path in enumerate(list_images(images)):
        photo = np.asarray(load_rgb(path))
        size = photo.shape[:2]
        for k, generator in enumerate((objects, others[SECOND_KINDS[index % 2]])):
            known = generator(size, np.random.default_rng((0, index, k))) > 0.5
            touches = not (known[0].all() and known[-1].all() and known[:, 0].all() and known[:, -1].all())
            pair = Pair(len(prepared), path, Path(f"{path.stem}_mask{k}"), int(touches))
            prepared.append(PreparedPair(pair, photo, known, float(1 - known.mean())))
    return prepared


def table(runs: dict[str, MethodRun], prepared: Sequence[PreparedPair]) -> str:
    """Markdown: per method, the means over all pairs and over the border-touching ones."""
    border = {item.pair.pair_id for item in prepared if item.pair.bin == 1}
    metrics = [
        key
        for key in ("psnr", "ssim", "st_lpips", "st_lpips_hole")
        if key in next(iter(runs.values())).rows[0]
    ]
    head = " | ".join(f"{m} (all)" for m in metrics) + " | " + " | ".join(f"{m} (border)" for m in metrics)
    lines = [f"| method | {head} | s/pair |", "|---" + "|---:" * (2 * len(metrics) + 1) + "|"]
    for name, run in runs.items():
        cells = [np.mean([r[m] for r in run.rows]) for m in metrics]
        cells += [np.mean([r[m] for r in run.rows if r["pair_id"] in border]) for m in metrics]
        seconds = np.mean([r["seconds"] for r in run.rows])
        shown = " | ".join(
            f"{v:.4f}" if m != "psnr" else f"{v:.2f}" for v, m in zip(cells, metrics * 2, strict=True)
        )
        lines.append(f"| {name} | {shown} | {seconds:.2f} |")
    return "\n".join(lines)


def hole_crop(known_mask: np.ndarray) -> tuple[slice, slice]:
    """The hole's bounding box grown by half its size each side (at least 48 px), within the
    photo: what a viewer looks at, at full resolution."""
    rows, cols = np.nonzero(~known_mask)
    height, width = known_mask.shape
    grow_y = max(48, (rows.max() - rows.min()) // 2)
    grow_x = max(48, (cols.max() - cols.min()) // 2)
    return (
        slice(max(0, rows.min() - grow_y), min(height, rows.max() + 1 + grow_y)),
        slice(max(0, cols.min() - grow_x), min(width, cols.max() + 1 + grow_x)),
    )


def contact_sheets(
    runs: dict[str, MethodRun], prepared: Sequence[PreparedPair], out: Path, region: str, shown: Sequence[int]
) -> list[Path]:
    """One sheet per shown pair, cropped around the hole at full resolution: input, every method,
    ground truth."""
    written = []
    for pair_id in shown:
        item = prepared[pair_id]
        crop = hole_crop(item.known_mask)
        tiles = [
            show_hole(item.image, item.known_mask)[crop],
            *(run.kept[pair_id][crop] for run in runs.values()),
            item.image[crop],
        ]
        columns = ["input (hole white)", *runs, "ground truth"]
        sheet = make_grid(
            columns, [(f"{item.pair.image.stem} ({item.hole_ratio:.2f})", tiles)], max(tiles[0].shape[:2])
        )
        path = out / f"{region}_{item.pair.image.stem}_{pair_id}.png"
        write_png(path, sheet)
        written.append(path)
    return written


def readme_picture(prepared: Sequence[PreparedPair], out: Path) -> None:
    """Per pair of ``PICTURE_PAIRS``, at half size: the input, the network alone, lbam's default
    (the network, then texture) and the ground truth."""
    network, default = make_methods(["lbam:lbam-compact@fit", "lbam:lbam-compact@fit+texture"])
    tiles = []
    for pair_id in PICTURE_PAIRS:
        item = prepared[pair_id]
        unit = item.image.astype(np.float32) / 255
        row = [
            ("input (hole in white)", show_hole(item.image, item.known_mask)),
            ("the network alone (--refine none)", to_uint8(network.inpaint(unit, item.known_mask))),
            ("lbam's default: network + texture", to_uint8(default.inpaint(unit, item.known_mask))),
            ("ground truth", item.image),
        ]
        tiles += [(label, shrink(image, (image.shape[1] // 2, image.shape[0] // 2))) for label, image in row]
    write_png(out, labelled_sheet(tiles, per_row=4))


def evaluate_methods(
    specs: Sequence[str], prepared: Sequence[PreparedPair], keep: set[int]
) -> dict[str, MethodRun]:
    methods = make_methods(list(specs))
    return run_methods(methods, prepared, {"st_lpips": load_st_lpips()}, None, keep, True, print)


def fit_grid(prepared: Sequence[PreparedPair]) -> str:
    """lbam-compact with fit at several context sizes and zoom limits: the measurement behind the defaults.

    PSNR and SSIM only: ST-LPIPS at 768x512 costs several times the model on this CPU.
    """
    lines = ["| context | zoom | PSNR | SSIM | s/pair |", "|---:|---:|---:|---:|---:|"]
    for zoom in (1.0, 1.5, 2.0):
        pipeline.FIT_ZOOM = zoom
        for context in (0.5, 1.0, 2.0):
            [method] = make_methods(["lbam:lbam-compact@fit"])
            method.options = pipeline.InpaintOptions(strategy="fit", context=context)
            rows = run_methods([method], prepared, {}, None, set(), False, print)[method.name].rows
            psnr, ssim, seconds = (np.mean([r[k] for r in rows]) for k in ("psnr", "ssim", "seconds"))
            lines.append(f"| {context:g} | {zoom:g} | {psnr:.2f} | {ssim:.4f} | {seconds:.2f} |")
            print(lines[-1], flush=True)
    return "\n".join(lines)


def write_docs(text: str, region: str) -> None:
    spec = importlib.util.spec_from_file_location("docs_region", Path(__file__).with_name("docs_region.py"))
    assert spec is not None and spec.loader is not None
    docs_region = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(docs_region)
    docs_region.update_region(DOCS, region, text)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=IMAGES)
    parser.add_argument("--methods", default=DEFAULT_METHODS, help=f"(default: {DEFAULT_METHODS})")
    parser.add_argument("--fit-grid", action="store_true", help="measure fit's context and zoom instead")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md and docs/images")
    parser.add_argument(
        "--region", default=REGION, help=f"the docs region and sheet prefix (default: {REGION})"
    )
    parser.add_argument("--sheets", type=int, default=len(SHEET_PAIRS), help="contact sheets to write")
    parser.add_argument("--picture", action="store_true", help=f"write only {PICTURE.relative_to(REPO)}")
    args = parser.parse_args(argv)
    prepared = make_pairs(args.images)
    if args.picture:
        readme_picture(prepared, PICTURE)
        print(f"wrote {PICTURE}", file=sys.stderr)
        return
    if args.fit_grid:
        print(fit_grid(prepared))
        return
    shown = sheet_pairs(len(prepared), args.sheets)
    runs = evaluate_methods(parse_method_list(args.methods), prepared, set(shown))
    text = table(runs, prepared)
    print(text)
    if args.write_docs:
        sheets = contact_sheets(runs, prepared, REPO / "docs" / "images", args.region, shown)
        body = docs_body(args.images, args.region, args.methods, prepared, text, sheets)
        write_docs(body, args.region)
        print(f"updated {DOCS} and {len(sheets)} contact sheets", file=sys.stderr)


def sheet_pairs(count: int, sheets: int) -> list[int]:
    """Kodak's usual four pairs, or ``sheets`` pairs spread evenly over another set."""
    if count == 48 and sheets == len(SHEET_PAIRS):
        return list(SHEET_PAIRS)
    return sorted({round(k * (count - 1) / max(1, sheets - 1)) for k in range(sheets)})


def docs_body(
    images: Path, region: str, methods: str, prepared: Sequence[PreparedPair], text: str, sheets: list[Path]
) -> str:
    folder = os.path.relpath(images, REPO)
    where = "Kodak24 at full resolution" if images == IMAGES else f"{folder}, photos at their own resolution"
    made_by = "python benchmarks/object_removal.py --write-docs" + (
        "" if images == IMAGES else f" --images {folder} --region {region}"
    )
    made_by += "" if methods == DEFAULT_METHODS else f" --methods {methods}"
    return (
        f"## Object removal ({where})\n\n"
        f"Made by `{made_by}` (the protocol is in the script's docstring): {len(prepared)} fixed "
        f"object-sized holes on {len(prepared) // 2} photos, "
        f"{sum(item.pair.bin for item in prepared)} of them touching the border; mean hole ratio "
        f"{np.mean([item.hole_ratio for item in prepared]):.3f}. Metrics on the composited image; "
        "ST-LPIPS is the shift-tolerant LPIPS with the AlexNet trunk (lower is better), "
        "`st_lpips_hole` the same on the hole's neighbourhood (its box plus a quarter each side). "
        "`patchmatch` is PatchMatch alone (patch size 5). `@full` is one pass over the photo "
        "(lbam 0.1's default for photos up to 1024 px); `@fit` is the default strategy. "
        "`+paste` is the model's raw output pasted into the hole (lbam 0.1); without it, the fill "
        "is blended (`--blend harmonic`, the default: solved at full resolution, each hole "
        "levelled). `lbam:` rows without `+texture` are the network alone (`--refine none`); "
        "`+texture` is lbam's default fill, the network then texture from the photo (PatchMatch's "
        "fill with the network's low frequencies, `--refine texture`). The contact sheets show "
        "each hole's neighbourhood at full resolution; the seconds are wall time per pair on the "
        "machine that ran it (a photo's separate holes filled in parallel).\n\n"
        + text
        + "\n\n"
        + "\n".join(f"![{p.stem}](images/{p.name})" for p in sheets)
    )


if __name__ == "__main__":
    main()

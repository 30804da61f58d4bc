"""What ``lbam evaluate`` writes: results.csv, summary.json, summary.md and grid_bin*.png.

A result row is a dict with the keys of :data:`CSV_COLUMNS` (``lpips`` only when it was
computed). The summary is a plain dict (see :func:`summarize`) that the JSON and Markdown writers
read, so ``summary.md`` can always be rebuilt from ``summary.json``. Metrics of a whole set of
pairs (FID) have no per-pair value: they are in the summary only (see :func:`add_set_metric`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lbam.imaging.masks import BINS, NVIDIA_BIN_EDGES, bin_label
from lbam.utils.files import atomic_write_text

CSV_COLUMNS = (
    "pair_id",
    "image",
    "mask",
    "bin",
    "hole_ratio",
    "method",
    "psnr",
    "ssim",
    "l1",
    "lpips",
    "st_lpips",
    "st_lpips_hole",
    "seconds",
)
# name: heading, higher is better, decimals, display scale (the CSV and JSON keep raw values)
METRICS = {
    "psnr": ("PSNR (dB, higher is better)", True, 2, 1.0),
    "ssim": ("SSIM (higher is better)", True, 4, 1.0),
    "l1": ("mean L1 error, % of the value range (lower is better)", False, 3, 100.0),
    "lpips": ("LPIPS-VGG (lower is better)", False, 4, 1.0),
    "st_lpips": ("ST-LPIPS-Alex, shift-tolerant LPIPS (lower is better)", False, 4, 1.0),
    "st_lpips_hole": ("ST-LPIPS on the hole's neighbourhood (lower is better)", False, 4, 1.0),
    "fid": ("FID, Inception-v3 pool features (lower is better)", False, 2, 1.0),
}


def _format(value: object, decimals: int = 6) -> str:
    if isinstance(value, float):
        return f"{value:.{decimals}f}"
    return str(value)


def write_results_csv(path: Path, rows: Sequence[dict], metrics: Sequence[str]) -> None:
    """One row per pair and method, columns :data:`CSV_COLUMNS` minus metrics not computed."""
    columns = [c for c in CSV_COLUMNS if c not in METRICS or c in metrics]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_format(row[c], 4 if c == "seconds" else 6) for c in columns])
    atomic_write_text(path, buffer.getvalue())


def _mean(values: list[float]) -> float | None:
    if not values:
        return None
    mean = float(np.mean(values))
    return mean if math.isfinite(mean) else None


def summarize(rows: Sequence[dict], method_names: Sequence[str], metrics: Sequence[str]) -> dict:
    """Per method: per bin and overall ``count`` and metric means; total and per-pair seconds.

    Returns ``{"bins": [...], "counts": {"1": n, ..., "all": n}, "metrics": [...],
    "methods": {name: {"bins": {"1": {...}, ..., "all": {...}}, "seconds": s, "seconds_per_pair": s}}}``.
    A mean over no pairs (or over an infinite PSNR) is None.
    """
    keys = [str(k) for k in BINS] + ["all"]
    summary: dict = {
        "bins": [
            {"bin": k, "label": bin_label(k), "low": NVIDIA_BIN_EDGES[k - 1], "high": NVIDIA_BIN_EDGES[k]}
            for k in BINS
        ],
        "metrics": list(metrics),
        "methods": {},
    }
    for name in method_names:
        own = [r for r in rows if r["method"] == name]
        per_bin = {}
        for key in keys:
            chosen = own if key == "all" else [r for r in own if str(r["bin"]) == key]
            entry: dict = {"count": len(chosen)}
            for metric in metrics:
                entry[metric] = _mean([r[metric] for r in chosen])
            per_bin[key] = entry
        seconds = float(sum(r["seconds"] for r in own))
        summary["methods"][name] = {
            "bins": per_bin,
            "seconds": seconds,
            "seconds_per_pair": seconds / len(own) if own else None,
        }
    first = summary["methods"][method_names[0]]["bins"] if method_names else {}
    summary["counts"] = {key: first.get(key, {}).get("count", 0) for key in keys}
    return summary


def add_set_metric(summary: dict, metric: str, values: dict[str, dict[str, float | None]]) -> None:
    """Add a metric of whole sets of pairs to a :func:`summarize` result, in place.

    ``values[method][key]`` for key "1" ... "6" and "all"; keys left out (a bin with too few pairs)
    become None.
    """
    summary["metrics"].append(metric)
    for name, entry in summary["methods"].items():
        own = values.get(name, {})
        for key, per_bin in entry["bins"].items():
            per_bin[metric] = own.get(key)


def write_summary_json(path: Path, summary: dict) -> None:
    atomic_write_text(path, json.dumps(summary, indent=2, allow_nan=False) + "\n")


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


def _table(summary: dict, metric: str) -> list[str]:
    heading, higher_better, decimals, scale = METRICS[metric]
    keys = [str(k) for k in BINS] + ["all"]
    labels = [bin_label(k) for k in BINS] + ["all"]
    methods = summary["methods"]
    # Best per column compared at the printed precision, so printed ties are all bold.
    shown = {
        name: {key: _scaled(methods[name]["bins"][key][metric], scale) for key in keys} for name in methods
    }
    best = {}
    for key in keys:
        values = [round(v[key], decimals) for v in shown.values() if v[key] is not None]
        best[key] = (max(values) if higher_better else min(values)) if values else None
    lines = [f"**{heading}**", "", "| method | " + " | ".join(labels) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, values in shown.items():
        cells = []
        for key in keys:
            value = values[key]
            if value is None:
                cells.append("–")
                continue
            text = f"{value:.{decimals}f}"
            cells.append(f"**{text}**" if len(methods) > 1 and round(value, decimals) == best[key] else text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def format_tables(summary: dict) -> str:
    """The Markdown tables only: pair counts, one table per metric (best in bold), method times."""
    keys = [str(k) for k in BINS] + ["all"]
    labels = [bin_label(k) for k in BINS] + ["all"]
    lines = [
        "| hole ratio | " + " | ".join(labels) + " |",
        "|---" * (len(keys) + 1) + "|",
        "| pairs | " + " | ".join(str(summary["counts"][k]) for k in keys) + " |",
        "",
    ]
    for metric in summary["metrics"]:
        lines += _table(summary, metric) + [""]
    lines += [
        "**Time** (inpainting only, metrics excluded)",
        "",
        "| method | total s | ms per pair |",
        "|---|---|---|",
    ]
    for name, entry in summary["methods"].items():
        per_pair = entry["seconds_per_pair"]
        per_pair_text = "–" if per_pair is None else f"{1000 * per_pair:.1f}"
        lines.append(f"| {name} | {entry['seconds']:.1f} | {per_pair_text} |")
    return "\n".join(lines) + "\n"


def format_summary_md(summary: dict) -> str:
    """summary.md: settings, skipped files, then :func:`format_tables`."""
    settings = summary.get("settings", {})
    size = settings.get("size")
    lines = ["# lbam evaluate", ""]
    if settings:
        lines += [
            f"- images: `{settings.get('images')}`; masks: `{settings.get('masks')}`",
            f"- size: {'full resolution' if size == 0 else f'{size} px'}; pairs per bin: "
            f"{settings.get('pairs')}; seed: {settings.get('seed')}",
            "- metrics on the 8-bit composited result against the ground truth, means over pairs",
        ]
    for line in summary.get("notes", []):
        lines.append(f"- {line}")
    lines += ["", format_tables(summary)]
    return "\n".join(lines)


def write_summary_md(path: Path, summary: dict) -> None:
    atomic_write_text(path, format_summary_md(summary))


def show_hole(image: np.ndarray, known_mask: np.ndarray) -> np.ndarray:
    """The input as a method sees it, holes painted white; uint8 (H, W, 3)."""
    shown = image.copy()
    shown[~known_mask] = 255
    return shown


def _fit(tile: np.ndarray, side: int) -> Image.Image:
    # Fit into a side x side box keeping the aspect ratio (full-resolution runs mix shapes).
    image = Image.fromarray(tile)
    scale = side / max(image.size)
    if scale != 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    box = Image.new("RGB", (side, side), (128, 128, 128))
    box.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return box


def make_grid(
    columns: Sequence[str], rows: Sequence[tuple[str, Sequence[np.ndarray]]], tile: int = 256
) -> Image.Image:
    """A labelled contact sheet.

    Args:
        columns: column titles (e.g. input, methods..., ground truth).
        rows: (caption, tiles) per row; tiles are uint8 (H, W, 3), one per column.
        tile: side of each square cell in pixels.
    """
    font = ImageFont.load_default()
    label_h = 16
    gap = 2
    width = len(columns) * (tile + gap) - gap
    height = label_h + len(rows) * (label_h + tile + gap)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, title in enumerate(columns):
        draw.text((c * (tile + gap) + 3, 2), title, fill=(0, 0, 0), font=font)
    for r, (caption, tiles) in enumerate(rows):
        top = label_h + r * (label_h + tile + gap)
        draw.text((3, top + 2), caption, fill=(80, 80, 80), font=font)
        for c, array in enumerate(tiles):
            sheet.paste(_fit(array, tile), (c * (tile + gap), top + label_h))
    return sheet


def labelled_sheet(tiles: Sequence[tuple[str, np.ndarray]], per_row: int) -> Image.Image:
    """Same-size uint8 (H, W, 3) tiles at their own size, ``per_row`` to a row, each with a label above."""
    font = ImageFont.load_default()
    label_h, gap = 16, 4
    height, width = tiles[0][1].shape[:2]
    rows = math.ceil(len(tiles) / per_row)
    sheet = Image.new(
        "RGB", (per_row * (width + gap) - gap, rows * (label_h + height + gap) - gap), (255, 255, 255)
    )
    draw = ImageDraw.Draw(sheet)
    for i, (label, array) in enumerate(tiles):
        left, top = (i % per_row) * (width + gap), (i // per_row) * (label_h + height + gap)
        draw.text((left + 3, top + 2), label, fill=(0, 0, 0), font=font)
        sheet.paste(Image.fromarray(array), (left, top + label_h))
    return sheet

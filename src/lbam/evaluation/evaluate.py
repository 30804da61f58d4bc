"""One evaluation run: pairs -> every method -> metrics -> results.csv, summary.*, grid_bin*.png."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import PIL
import skimage
import torch
from tqdm import tqdm

from lbam._version import __version__
from lbam.errors import LbamError
from lbam.evaluation.fid import FEATURE_DIM, fid_from_features, load_fid_inception
from lbam.evaluation.lpips import load_lpips
from lbam.evaluation.methods import Method, make_methods
from lbam.evaluation.protocol import (
    PreparedPair,
    hole_neighbourhood,
    make_pairs,
    prepare_pairs,
    scan_images,
    scan_masks,
)
from lbam.evaluation.report import (
    add_set_metric,
    make_grid,
    show_hole,
    summarize,
    write_results_csv,
    write_summary_json,
    write_summary_md,
)
from lbam.features.stlpips import MIN_SIDE, load_st_lpips
from lbam.imaging import metrics as image_metrics
from lbam.imaging.files import list_images
from lbam.imaging.masks import BINS, bin_label
from lbam.imaging.pixels import to_uint8
from lbam.imaging.png import write_png
from lbam.utils.device import resolve_device
from lbam.utils.files import resolve_path

DEFAULT_PAIRS = 100
# The largest --size: four times the paper's 256 px protocol side would already be 1024.
MAX_SIDE = 4096
DEFAULT_SIZE = 256
LPIPS_MISSING = (
    "LPIPS not computed: no --lpips-weights given (the lpips project's v0.1 vgg.pth, used with "
    "torchvision's VGG16 file)"
)
FID_MISSING = (
    "FID not computed: no --fid-weights given (pytorch-fid's Inception-v3 file "
    "pt_inception-2015-12-05-6726825d.pth)"
)
# FID of a bin only from this many pairs on: below it the small-sample bias swamps the differences.
FID_MIN_BIN_PAIRS = 50


@dataclass
class EvaluationSettings:
    """Everything a run depends on; stored in summary.json."""

    images: Path
    masks: Path
    methods: Sequence[str | Method]
    out: Path
    size: int = DEFAULT_SIZE
    pairs: int = DEFAULT_PAIRS
    seed: int = 0
    radius: float = 3.0
    device: str = "cpu"
    lpips_weights: Path | None = None
    vgg_weights: Path | None = None
    fid_weights: Path | None = None
    st_lpips: bool = True  # ST-LPIPS-Alex when its weights are found (lbam.features.stlpips)
    st_lpips_weights: Path | None = None
    grid_pairs: int = 2
    grid_tile: int = 256
    progress: bool = True
    # tests only: LPIPS with random VGG16 features when the VGG file is missing
    allow_random_vgg: bool = field(default=False, repr=False)


def _check_settings(s: EvaluationSettings) -> str:
    """Refuse bad settings before any work; returns the resolved device name."""
    if s.size < 0 or 0 < s.size < 16 or s.size > MAX_SIDE:
        raise LbamError(f"--size must be 0 (full resolution) or from 16 to {MAX_SIDE}, got {s.size}")
    if not 1 <= s.pairs <= 100_000:
        raise LbamError(f"--pairs must be from 1 to 100000, got {s.pairs}")
    if not 0 <= s.grid_pairs <= 100:
        raise LbamError(f"--grid-pairs must be from 0 to 100, got {s.grid_pairs}")
    if not 16 <= s.grid_tile <= 2048:
        raise LbamError(f"--grid-tile must be from 16 to 2048, got {s.grid_tile}")
    if not 0 <= s.seed < 2**63:
        raise LbamError(f"--seed must be a number from 0 to 2**63 - 1, got {s.seed}")
    if not (math.isfinite(s.radius) and 0 < s.radius <= 64):
        raise LbamError(f"--radius must be a number of pixels from 0 to 64, got {s.radius}")
    device = str(resolve_device(s.device))
    out = resolve_path(s.out)
    for name, folder in (("images", s.images), ("masks", s.masks)):
        folder = resolve_path(folder)
        if out == folder or folder in out.parents:
            raise LbamError(f"--out {s.out} lies inside the {name} folder {folder}; choose another folder")
    if out.exists() and not out.is_dir():
        raise LbamError(f"--out {s.out} exists and is not a folder")
    return device


def _versions() -> dict[str, str]:
    return {
        "lbam": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-image": skimage.__version__,
        "opencv": cv2.__version__,
        "pillow": PIL.__version__,
    }


def _tensor(image: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) in [0, 1]."""
    planes = np.ascontiguousarray(image.transpose(2, 0, 1))
    return torch.from_numpy(planes)[None].to(dtype) / 255.0


@contextlib.contextmanager
def _single_thread() -> Iterator[None]:
    # One image's metrics are too small to share between threads: on a busy machine two OpenMP
    # threads waiting for each other made them several times slower than one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def metric_names(distances: dict[str, Any]) -> list[str]:
    """The columns of a run: PSNR, SSIM, L1, each learned distance, and ST-LPIPS on the hole's
    neighbourhood when ST-LPIPS is computed."""
    names = ["psnr", "ssim", "l1", *distances]
    return [*names, "st_lpips_hole"] if "st_lpips" in distances else names


def _score(
    result: np.ndarray, truth: np.ndarray, distances: dict[str, Any], known: np.ndarray
) -> dict[str, float]:
    """PSNR, SSIM, L1 (and the learned distances) of one uint8 (H, W, 3) result against its truth;
    ``st_lpips_hole``: ST-LPIPS on the hole's neighbourhood (:func:`hole_neighbourhood`), where a
    viewer looks. ``known`` (H, W) bool, True = known.

    PSNR and L1 in float64 (cheap, exact to the printed digits); SSIM in float32, four times faster
    and within 1e-5 of scikit-image's float64 value on 8-bit images (tested).
    """
    with _single_thread(), torch.inference_mode():
        x64, y64 = _tensor(result, torch.float64), _tensor(truth, torch.float64)
        x32, y32 = x64.float(), y64.float()
        scores = {
            "psnr": float(image_metrics.psnr(x64, y64)[0]),
            "ssim": float(image_metrics.ssim(x32, y32)[0]),
            "l1": float(image_metrics.l1(x64, y64)[0]),
        }
    with torch.inference_mode():
        for name, distance in distances.items():
            scores[name] = float(distance(x32, y32)[0])
        if "st_lpips" in distances:
            rows, cols = hole_neighbourhood(known)
            local = (_tensor(image[rows, cols], torch.float32) for image in (result, truth))
            scores["st_lpips_hole"] = float(distances["st_lpips"](*local)[0])
    return scores


def _inception_features(fid_model, image: np.ndarray) -> np.ndarray:
    """FID features (2048,) float64 of one uint8 (H, W, 3) image."""
    device = next(fid_model.parameters()).device
    with torch.inference_mode():
        return fid_model(_tensor(image, torch.float32).to(device))[0].double().cpu().numpy()


def _truth_features(fid_model, prepared: Sequence[PreparedPair], progress: bool) -> np.ndarray:
    """FID features (pairs, 2048) of the pairs' ground truths, in order."""
    items = tqdm(prepared, desc="FID truths", unit="pair", disable=not progress, file=sys.stderr)
    return np.stack([_inception_features(fid_model, item.image) for item in items])


def _fid_table(
    prepared: Sequence[PreparedPair],
    truth: np.ndarray,
    results: dict[str, np.ndarray],
    log: Callable[[str], None],
    notes: list[str],
) -> dict[str, dict[str, float | None]]:
    """FID of each method's composited results against the ground truths, over all pairs and per bin.

    ``truth`` and ``results[method]`` hold one feature row (2048,) per prepared pair, in order.
    Bins with fewer than :data:`FID_MIN_BIN_PAIRS` pairs get no FID; every skip is noted.
    """
    bins = np.array([item.pair.bin for item in prepared])
    chosen = {"all": np.ones(len(prepared), bool)}
    too_few = []
    for k in BINS:
        count = int((bins == k).sum())
        if count >= FID_MIN_BIN_PAIRS:
            chosen[str(k)] = bins == k
        elif count:
            too_few.append(f"{bin_label(k)} ({count})")
    lines = []
    if len(prepared) < 2:
        lines.append(f"FID not computed: it needs at least 2 pairs, there is {len(prepared)}")
        chosen = {}
    elif len(prepared) < FEATURE_DIM:
        lines.append(
            f"FID on {len(prepared)} pairs, fewer than the {FEATURE_DIM} features: it is biased upwards "
            "and comparable only between runs with equal pair counts"
        )
    if too_few and chosen:
        lines.append(
            f"FID per bin needs {FID_MIN_BIN_PAIRS} pairs; not computed for bins {', '.join(too_few)}"
        )
    table: dict[str, dict[str, float | None]] = {}
    for name, features in results.items():
        table[name] = {}
        for key, where in chosen.items():
            try:
                table[name][key] = fid_from_features(features[where], truth[where])
            except ValueError as error:
                table[name][key] = None
                where_text = "all pairs" if key == "all" else f"bin {bin_label(int(key))}"
                lines.append(f"FID of {name} on {where_text} not computed: {error}")
    for line in lines:
        notes.append(line)
        log(line)
    return table


def _report_skips(
    log: Callable[[str], None], what: str, items: list[tuple[str, object]], reason: str
) -> str | None:
    if not items:
        return None
    shown = ", ".join(
        f"{name} ({detail:.4f})" if isinstance(detail, float) else f"{name} ({detail})"
        for name, detail in items[:5]
    )
    more = f" and {len(items) - 5} more" if len(items) > 5 else ""
    noun = what if len(items) > 1 else what.removesuffix("s")
    line = f"skipped {len(items)} {noun} {reason}: {shown}{more}"
    log(line)
    return line


def _run_method(
    method: Method,
    prepared: Sequence[PreparedPair],
    distances: dict[str, Any],
    fid_model,
    keep: set[int],
    progress: bool,
) -> tuple[list[dict], dict[int, np.ndarray], np.ndarray | None]:
    """Rows of results.csv, the kept composites by pair id, and FID features (pairs, 2048) or None."""
    rows, kept, features = [], {}, []
    for item in tqdm(prepared, desc=f"{method.name:>12}", unit="pair", disable=not progress, file=sys.stderr):
        known = item.known_mask
        given = (item.image.astype(np.float32) / 255.0) * known[..., None]
        start = time.perf_counter()
        result = method.inpaint(given, known.copy())
        seconds = time.perf_counter() - start
        if result.shape != item.image.shape:
            raise LbamError(
                f"method {method.name} returned shape {result.shape} for an image of {item.image.shape}"
            )
        # Scored as saved: 8 bits, and the known pixels are the input's whatever the method did.
        result8 = np.where(known[..., None], item.image, to_uint8(result))
        row = {
            "pair_id": item.pair.pair_id,
            "image": item.pair.image.name,
            "mask": item.pair.mask.name,
            "bin": item.pair.bin,
            "hole_ratio": item.hole_ratio,
            "method": method.name,
            **_score(result8, item.image, distances, known),
            "seconds": seconds,
        }
        rows.append(row)
        if fid_model is not None:
            features.append(_inception_features(fid_model, result8))
        if item.pair.pair_id in keep:
            kept[item.pair.pair_id] = result8
    return rows, kept, (np.stack(features) if features else None)


def _grid_pairs(prepared: Sequence[PreparedPair], per_bin: int) -> dict[int, list[PreparedPair]]:
    """``per_bin`` pairs of each bin for the contact sheets, starting at pair k - 1 of bin k.

    Every bin cycles through the same image order, so starting each bin one pair later shows
    different photos in different bins.
    """
    chosen: dict[int, list[PreparedPair]] = {}
    for k in BINS:
        items = [item for item in prepared if item.pair.bin == k]
        if items and per_bin:
            count = min(per_bin, len(items))
            chosen[k] = [items[(k - 1 + j) % len(items)] for j in range(count)]
    return chosen


def evaluate(settings: EvaluationSettings, log: Callable[[str], None] = print) -> dict:
    """Run the protocol (see :mod:`lbam.evaluation.protocol`) and write the report into ``settings.out``.

    Four stages: pair the inputs, run every method on every pair, score and summarise, write the
    report. Returns the summary dict that is also written to summary.json.

    Raises:
        LbamError: bad input (unknown method, folders without usable images or masks, every mask
            outside the bins, ...), before anything is written.
    """
    device = _check_settings(settings)
    methods = make_methods(settings.methods, device, settings.radius)
    notes: list[str] = []
    distances, fid_model = _metric_models(settings, device, log, notes)
    prepared, skipped = pair_inputs(settings, log, notes)
    log(f"methods: {', '.join(m.name for m in methods)}")
    grid_items = _grid_pairs(prepared, settings.grid_pairs)
    keep = {item.pair.pair_id for items in grid_items.values() for item in items}
    runs = run_methods(methods, prepared, distances, fid_model, keep, settings.progress, log)
    summary = summarise_runs(settings, device, methods, prepared, runs, distances, fid_model, log, notes)
    summary["skipped"] = skipped
    out = Path(settings.out).expanduser()
    write_report(out, summary, methods, runs, grid_items, settings.grid_tile, log)
    return summary


def _metric_models(
    s: EvaluationSettings, device: str, log: Callable[[str], None], notes: list[str]
) -> tuple[Any, Any]:
    """The learned distances ({"lpips": ..., "st_lpips": ...}) and the FID network whose weights
    are there; a note for each that is not computed."""
    distances: dict[str, Any] = {}
    fid_model = None
    if s.lpips_weights is not None:
        distances["lpips"] = load_lpips(s.lpips_weights, s.vgg_weights, s.allow_random_vgg, device="cpu")
    else:
        notes.append(LPIPS_MISSING)
        log(LPIPS_MISSING)
    if s.st_lpips and 0 < s.size < MIN_SIDE:
        notes.append(f"ST-LPIPS not computed: it needs images of at least {MIN_SIDE} px (--size {s.size})")
        log(notes[-1])
    elif s.st_lpips:
        try:
            distances["st_lpips"] = load_st_lpips(s.st_lpips_weights)
        except LbamError as error:
            if s.st_lpips_weights is not None:
                raise
            notes.append(f"ST-LPIPS not computed: {error}")
            log(notes[-1])
    if s.fid_weights is not None:
        fid_model = load_fid_inception(s.fid_weights, device=device)
    else:
        notes.append(FID_MISSING)
        log(FID_MISSING)
    return distances, fid_model


def pair_inputs(
    s: EvaluationSettings, log: Callable[[str], None], notes: list[str]
) -> tuple[list[PreparedPair], dict[str, list[str]]]:
    """Stage 1: list, decode and bin the inputs, then pair and prepare them (the protocol).

    Returns the prepared pairs and the names of the files left out, by reason.
    """
    image_files = list_images(s.images, what="image")
    mask_files = list_images(s.masks, what="mask")
    images, bad_images = scan_images(image_files)
    binned, bad_masks, out_of_bin = scan_masks(mask_files, s.size)
    for line in (
        _report_skips(log, "images", bad_images, "that cannot be read"),
        _report_skips(log, "masks", bad_masks, "that cannot be read"),
        _report_skips(log, "masks", out_of_bin, "with a hole ratio outside every bin (0.01, 0.6]"),
    ):
        if line:
            notes.append(line)
    if not images:
        raise LbamError(f"none of the {len(image_files)} image files in {s.images} can be read")
    usable_masks = sum(len(v) for v in binned.values())
    if usable_masks == 0:
        raise LbamError(
            f"none of the {len(mask_files)} mask files in {s.masks} is usable: {len(out_of_bin)} have a hole ratio "
            f"outside every bin (0.01, 0.6] and {len(bad_masks)} cannot be read (white = hole)"
        )
    for line in _bin_notes(binned, s.pairs):
        notes.append(line)
        log(line)
    try:
        prepared = prepare_pairs(make_pairs(images, binned, s.pairs, s.seed), s.size)
    except (OSError, LbamError) as error:  # a file changed or vanished after it was scanned
        raise LbamError(f"cannot read an input file while preparing pairs: {error}") from None
    log(
        f"{len(prepared)} pairs ({len(images)} images, {usable_masks} binned masks, seed {s.seed}, "
        f"{'full resolution' if s.size == 0 else f'{s.size} px'})"
    )
    skipped = {
        "unreadable_images": [name for name, _ in bad_images],
        "unreadable_masks": [name for name, _ in bad_masks],
        "masks_out_of_bin": [name for name, _ in out_of_bin],
    }
    return prepared, skipped


def _bin_notes(binned: dict[int, list], pairs: int) -> list[str]:
    lines = []
    for k in BINS:
        if not binned[k]:
            lines.append(f"bin {bin_label(k)} has no masks: it is left out")
        elif len(binned[k]) < pairs:
            lines.append(
                f"bin {bin_label(k)} has {len(binned[k])} masks, fewer than --pairs {pairs}: all are used"
            )
    return lines


@dataclass
class MethodRun:
    """Stage 2's output for one method: results.csv rows, kept composites, FID features or None."""

    rows: list[dict]
    kept: dict[int, np.ndarray]
    features: np.ndarray | None


def run_methods(
    methods: Sequence[Method],
    prepared: Sequence[PreparedPair],
    distances: dict[str, Any],
    fid_model: Any,
    keep: set[int],
    progress: bool,
    log: Callable[[str], None],
) -> dict[str, MethodRun]:
    """Stage 2: every method on every pair, each result scored as it comes (see :func:`_run_method`)."""
    runs = {}
    for method in methods:
        rows, kept, features = _run_method(method, prepared, distances, fid_model, keep, progress)
        runs[method.name] = MethodRun(rows, kept, features)
        total = sum(r["seconds"] for r in rows)
        log(f"{method.name}: {len(rows)} pairs in {total:.1f} s ({1000 * total / len(rows):.1f} ms per pair)")
    return runs


def summarise_runs(
    s: EvaluationSettings,
    device: str,
    methods: Sequence[Method],
    prepared: Sequence[PreparedPair],
    runs: dict[str, MethodRun],
    distances: dict[str, Any],
    fid_model: Any,
    log: Callable[[str], None],
    notes: list[str],
) -> dict:
    """Stage 3: per-bin means, FID, the settings, versions and notes that make up summary.json."""
    rows = [row for run in runs.values() for row in run.rows]
    summary = summarize(rows, [m.name for m in methods], metric_names(distances))
    if fid_model is not None:
        start = time.perf_counter()
        truth = _truth_features(fid_model, prepared, s.progress)
        log(f"FID: features of {len(prepared)} ground truths in {time.perf_counter() - start:.1f} s")
        features = {name: run.features for name, run in runs.items() if run.features is not None}
        add_set_metric(summary, "fid", _fid_table(prepared, truth, features, log, notes))
    settings_dict = {
        key: (str(value) if isinstance(value, Path) else value)
        for key, value in asdict(s).items()
        if key not in ("methods", "progress", "allow_random_vgg", "out")
    }
    settings_dict["methods"] = [m if isinstance(m, str) else m.name for m in s.methods]
    summary["settings"] = settings_dict
    summary["versions"] = _versions()
    summary["machine"] = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": device}
    summary["notes"] = notes
    return summary


def write_report(
    out: Path,
    summary: dict,
    methods: Sequence[Method],
    runs: dict[str, MethodRun],
    grid_items: dict[int, list[PreparedPair]],
    tile: int,
    log: Callable[[str], None],
) -> None:
    """Stage 4: results.csv, summary.json, summary.md and one contact sheet per bin."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [row for run in runs.values() for row in run.rows]
    metric_names = summary["metrics"]
    write_results_csv(out / "results.csv", rows, metric_names)
    write_summary_json(out / "summary.json", summary)
    write_summary_md(out / "summary.md", summary)
    columns = ["input (hole white)", *(m.name for m in methods), "ground truth"]
    for k, items in grid_items.items():
        grid_rows = []
        for item in items:
            caption = (
                f"#{item.pair.pair_id} {item.pair.image.stem} + {item.pair.mask.stem} ({item.hole_ratio:.3f})"
            )
            tiles = [show_hole(item.image, item.known_mask)]
            tiles += [runs[m.name].kept[item.pair.pair_id] for m in methods]
            tiles.append(item.image)
            grid_rows.append((caption, tiles))
        write_png(out / f"grid_bin{k}.png", make_grid(columns, grid_rows, tile))
    log(f"wrote {out / 'results.csv'}, summary.json, summary.md and {len(grid_items)} grid_bin*.png")

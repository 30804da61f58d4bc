"""The evaluation protocol: which image meets which mask, at what size, in which hole-ratio bin.

Definition (also in ``lbam evaluate --help`` and docs/benchmarks.md):

1. Files are selected by image extension (so ``index.csv`` or a licence file next to the masks is
   ignored) and sorted by their path relative to the folder. Files that cannot be decoded are
   skipped and reported.
2. Masks: white = hole (pixels above half the value range). With ``size > 0`` a mask is
   center-cropped to a square and resized to ``size`` x ``size`` with nearest-neighbour; its hole
   ratio is measured *after* that resize. With ``size == 0`` it is measured at the mask's own
   resolution, and the mask is later resized (nearest) to each image it meets.
3. Bins: the NVIDIA irregular-mask bins (0.01, 0.1], (0.1, 0.2], ..., (0.5, 0.6], decided with
   exact integer arithmetic. Masks outside every bin are skipped and reported.
4. Pairs: for bin k, the bin's masks are shuffled with ``numpy.random.default_rng([seed, k])`` and
   the first ``pairs`` are taken (all of them if the bin has fewer). The images are shuffled once
   with ``default_rng([seed, 0])``; the i-th pair of every bin uses image ``i mod n_images`` of
   that order, so every bin sees the same images, and a smaller ``pairs`` gives a prefix of a
   larger one. Pair ids count up through bin 1, then bin 2, and so on.
5. Images: EXIF orientation applied, RGB; with ``size > 0`` center-cropped to a square and resized
   to ``size`` with Lanczos; with ``size == 0`` kept at full resolution.

Every method then runs on exactly these prepared pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from lbam.errors import LbamError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

# The NVIDIA irregular-mask test bins as (low, high] in tenths, except the first (0.01, 0.1].
BIN_EDGES: tuple[tuple[float, float], ...] = (
    (0.01, 0.1),
    (0.1, 0.2),
    (0.2, 0.3),
    (0.3, 0.4),
    (0.4, 0.5),
    (0.5, 0.6),
)
BINS: tuple[int, ...] = tuple(range(1, len(BIN_EDGES) + 1))


def bin_label(k: int) -> str:
    """``(0.01, 0.1]`` style label of bin k (1-based)."""
    low, high = BIN_EDGES[k - 1]
    return f"({low:g}, {high:g}]"


def hole_bin(hole_pixels: int, total_pixels: int) -> int | None:
    """The bin (1..6) of a mask with ``hole_pixels`` holes out of ``total_pixels``, or None.

    Exact: ratio r = hole/total is in (0.01, 0.1] iff total < 100 hole <= 10 total, and in
    ((k-1)/10, k/10] iff (k-1) total < 10 hole <= k total for k = 2..6.
    """
    if total_pixels <= 0:
        return None
    tenths = 10 * hole_pixels
    if total_pixels < 100 * hole_pixels and tenths <= total_pixels:
        return 1
    for k in BINS[1:]:
        if (k - 1) * total_pixels < tenths <= k * total_pixels:
            return k
    return None


@dataclass(frozen=True)
class MaskInfo:
    """A mask file that fell into a bin; ``hole_ratio`` as measured for binning."""

    path: Path
    bin: int
    hole_ratio: float


@dataclass(frozen=True)
class Pair:
    """One image-mask pairing of the protocol."""

    pair_id: int
    image: Path
    mask: Path
    bin: int


@dataclass
class PreparedPair:
    """A pair ready for the methods.

    image: (H, W, 3) uint8 ground truth. known_mask: (H, W) bool, True = known, False = hole.
    hole_ratio: fraction of hole pixels of this exact mask.
    """

    pair: Pair
    image: np.ndarray
    known_mask: np.ndarray
    hole_ratio: float


@dataclass
class Skipped:
    """Files left out and why, for the report: lists of (file name, reason)."""

    unreadable_images: list[tuple[str, str]]
    unreadable_masks: list[tuple[str, str]]
    masks_out_of_bin: list[tuple[str, float]]


def list_image_files(folder: str | Path, what: str) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted by relative path; LbamError if none."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise LbamError(f"{what} folder not found: {folder}")
    files = sorted(
        (p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
        key=lambda p: p.relative_to(folder).as_posix(),
    )
    if not files:
        raise LbamError(
            f"no {what} found in {folder} (looked for files ending in {', '.join(IMAGE_EXTENSIONS)})"
        )
    return files


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0]


def _center_square(size: tuple[int, int]) -> tuple[int, int, int, int]:
    width, height = size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def read_rgb(path: Path) -> Image.Image:
    """Decode an image fully as RGB with its EXIF orientation applied (errors propagate)."""
    with Image.open(path) as opened:
        opened.load()
        image = ImageOps.exif_transpose(opened)
        return image.convert("RGB")


def prepare_image(path: Path, size: int) -> np.ndarray:
    """(H, W, 3) uint8: center-cropped and Lanczos-resized to ``size``; full resolution if size == 0."""
    image = read_rgb(path)
    if size > 0:
        image = image.crop(_center_square(image.size)).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).copy()


def read_hole_mask(path: Path) -> np.ndarray:
    """(H, W) bool, True = hole, from a mask file where white (above half range) is the hole."""
    with Image.open(path) as opened:
        opened.load()
        if opened.mode == "1":
            return np.asarray(opened, dtype=bool).copy()
        if opened.mode.startswith("I;16"):
            return np.asarray(opened).astype(np.int64) > 32767
        if opened.mode in ("I", "F"):
            raise ValueError(f"unsupported mask mode {opened.mode}; save masks as 8-bit grayscale")
        return np.asarray(opened.convert("L")) >= 128


def resize_hole_mask(hole: np.ndarray, size: int | tuple[int, int], crop: bool) -> np.ndarray:
    """Nearest-neighbour resize of a hole mask; ``size`` is a side length or (width, height).

    With ``crop`` the mask is first center-cropped to a square, as the images are.
    """
    image = Image.fromarray(hole.astype(np.uint8) * 255)
    if crop:
        image = image.crop(_center_square(image.size))
    target = (size, size) if isinstance(size, int) else size
    if image.size != target:
        image = image.resize(target, Image.Resampling.NEAREST)
    return np.asarray(image) >= 128


def prepare_hole_mask(path: Path, size: int) -> np.ndarray:
    """The mask as used for binning: at ``size`` (cropped + nearest) or its own size when size == 0."""
    hole = read_hole_mask(path)
    return resize_hole_mask(hole, size, crop=True) if size > 0 else hole


def scan_images(paths: Sequence[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Decode every image once: (readable paths, [(unreadable name, reason)])."""
    readable, unreadable = [], []
    for path in paths:
        try:
            read_rgb(path)
        except Exception as error:  # any decoder failure is the file's fault, not ours
            unreadable.append((path.name, _describe(error)))
        else:
            readable.append(path)
    return readable, unreadable


def scan_masks(
    paths: Sequence[Path], size: int
) -> tuple[dict[int, list[MaskInfo]], list[tuple[str, str]], list[tuple[str, float]]]:
    """Measure and bin every mask.

    Returns (masks per bin in path order, [(unreadable name, reason)], [(out-of-bin name, ratio)]).
    """
    binned: dict[int, list[MaskInfo]] = {k: [] for k in BINS}
    unreadable: list[tuple[str, str]] = []
    out_of_bin: list[tuple[str, float]] = []
    for path in paths:
        try:
            hole = prepare_hole_mask(path, size)
        except Exception as error:  # any decoder failure is the file's fault, not ours
            unreadable.append((path.name, _describe(error)))
            continue
        holes, total = int(hole.sum()), int(hole.size)
        ratio = holes / total if total else 0.0
        k = hole_bin(holes, total)
        if k is None:
            out_of_bin.append((path.name, ratio))
        else:
            binned[k].append(MaskInfo(path, k, ratio))
    return binned, unreadable, out_of_bin


def make_pairs(
    images: Sequence[Path], binned: dict[int, list[MaskInfo]], pairs: int, seed: int
) -> list[Pair]:
    """The seeded pairing described in the module docstring; every bin in order 1..6."""
    if not images:
        raise LbamError("no readable images to evaluate on")
    if pairs < 1:
        raise LbamError(f"--pairs must be at least 1, got {pairs}")
    image_order = np.random.default_rng([seed, 0]).permutation(len(images))
    result: list[Pair] = []
    for k in BINS:
        masks = binned.get(k, [])
        if not masks:
            continue
        chosen = np.random.default_rng([seed, k]).permutation(len(masks))[:pairs]
        for i, mask_index in enumerate(chosen):
            image = images[int(image_order[i % len(images)])]
            result.append(Pair(len(result), image, masks[int(mask_index)].path, k))
    return result


def prepare_pairs(pairs: Sequence[Pair], size: int) -> list[PreparedPair]:
    """Decode and resize every pair once; images and masks are shared between pairs that reuse them."""
    images: dict[Path, np.ndarray] = {}
    masks: dict[Path, np.ndarray] = {}
    prepared = []
    for pair in pairs:
        if pair.image not in images:
            images[pair.image] = prepare_image(pair.image, size)
        if pair.mask not in masks:
            masks[pair.mask] = prepare_hole_mask(pair.mask, size)
        image = images[pair.image]
        hole = masks[pair.mask]
        if size == 0:
            height, width = image.shape[:2]
            hole = resize_hole_mask(hole, (width, height), crop=False)
        prepared.append(PreparedPair(pair, image, ~hole, float(hole.mean())))
    return prepared

"""The evaluation protocol: which image meets which mask, at what size, in which hole-ratio bin.

Definition (also in ``lbam evaluate --help`` and docs/benchmarks.md):

1. Files are listed by :func:`lbam.imaging.files.list_images` (so ``index.csv`` or a licence file
   next to the masks is ignored), sorted by their path relative to the folder. Files that cannot
   be decoded are skipped and reported.
2. Masks are read by :func:`lbam.imaging.masks.read_mask`, as ``lbam inpaint`` reads them (white,
   non-zero colour, alpha or a 0/1 label map = hole, thresholded at half range). With ``size > 0`` a mask is
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
from PIL import Image

from lbam.errors import LbamError
from lbam.imaging.io import load_rgb
from lbam.imaging.masks import BINS, hole_bin, read_mask, resize_hole


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


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0]


def _center_square(size: tuple[int, int]) -> tuple[int, int, int, int]:
    width, height = size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def prepare_image(path: Path, size: int) -> np.ndarray:
    """(H, W, 3) uint8: center-cropped and Lanczos-resized to ``size``; full resolution if size == 0."""
    image = load_rgb(path)
    if size > 0:
        image = image.crop(_center_square(image.size)).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).copy()


def resize_hole_mask(hole: np.ndarray, size: int | tuple[int, int], crop: bool) -> np.ndarray:
    """Nearest-neighbour resize of a hole mask; ``size`` is a side length or (width, height).

    With ``crop`` the mask is first center-cropped to a square, as the images are.
    """
    if crop:
        left, top, right, bottom = _center_square((hole.shape[1], hole.shape[0]))
        hole = hole[top:bottom, left:right]
    width, height = (size, size) if isinstance(size, int) else size
    return resize_hole(hole, (height, width))


def hole_neighbourhood(known: np.ndarray, margin: float = 0.25, min_side: int = 64) -> tuple[slice, slice]:
    """Rows and columns of the hole's bounding box grown by ``margin`` of its size on every side,
    at least ``min_side`` square (ST-LPIPS's smallest input) and clipped to the image: where a
    viewer of an inpainted photo looks. ``known`` (H, W) bool, True = known."""
    height, width = known.shape
    rows, cols = np.nonzero(~known)
    if rows.size == 0:
        return slice(0, height), slice(0, width)
    spans = []
    for low, high, length in ((rows.min(), rows.max() + 1, height), (cols.min(), cols.max() + 1, width)):
        grow = max(round(margin * (high - low)), (min_side - (high - low) + 1) // 2, 0)
        low, high = max(0, low - grow), min(length, high + grow)
        if high - low < min_side:  # clipped at the border: extend the other way
            low, high = max(0, min(low, length - min_side)), min(length, max(high, min_side))
        spans.append(slice(int(low), int(high)))
    return spans[0], spans[1]


def prepare_hole_mask(path: Path, size: int) -> np.ndarray:
    """The mask as used for binning: at ``size`` (cropped + nearest) or its own size when size == 0."""
    hole = read_mask(path)
    return resize_hole_mask(hole, size, crop=True) if size > 0 else hole


def scan_images(paths: Sequence[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Decode every image once: (readable paths, [(unreadable name, reason)])."""
    readable, unreadable = [], []
    for path in paths:
        try:
            load_rgb(path)
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
        if k not in BINS:
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

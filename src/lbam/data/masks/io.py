"""Mask files on disk: white = hole. Converting to the in-code convention (1 = known) happens here.

Also the hole-ratio bins of the NVIDIA irregular mask set (Liu et al. 2018), which papers use to
report results: (0.01, 0.1], (0.1, 0.2], ..., (0.5, 0.6]. Bin 0 holds ratios <= 0.01 and bin 7
ratios > 0.6, so every mask has a bin.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from lbam.errors import LbamError
from lbam.utils.files import atomic_path

MASK_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

# Upper edges of the six NVIDIA bins; bin k (1..6) is (EDGES[k-1], EDGES[k]].
NVIDIA_BIN_EDGES = (0.01, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def find_mask_files(root: str | os.PathLike) -> list[Path]:
    """Mask image files under ``root`` (recursive, by extension, sorted); LbamError if there are none.

    Selecting by extension matters: the NVIDIA folder also holds ``index.csv`` and a licence text.
    """
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise LbamError(f"mask folder not found: {str(folder)!r}")
    files = sorted(
        Path(dirpath) / name
        for dirpath, _, names in os.walk(folder, followlinks=True)
        for name in names
        if name.lower().endswith(MASK_EXTENSIONS) and not name.startswith(".")
    )
    if not files:
        raise LbamError(
            f"mask folder {str(folder)!r} holds no mask images ({', '.join(e[1:] for e in MASK_EXTENSIONS)})"
        )
    return files


def read_hole(path: str | os.PathLike) -> np.ndarray:
    """The hole array of a mask file: uint8 (H, W), 1 = hole (pixel brighter than half range).

    Any Pillow mode is accepted. Colour masks are read as luminance; 16-bit and float images are
    thresholded at half of their own range. Raises OSError/ValueError for unreadable files.
    """
    with Image.open(path) as image:
        image.load()
        if image.mode == "1":
            values, half = np.asarray(image, dtype=np.uint8), 0.5
        elif image.mode.startswith("I;16") or image.mode == "I":
            values, half = np.asarray(image, dtype=np.float64), 65535 / 2
        elif image.mode == "F":
            values, half = np.asarray(image, dtype=np.float64), 0.5
        else:
            values, half = np.asarray(image.convert("L"), dtype=np.uint8), 255 / 2
    return (values > half).astype(np.uint8)


def read_known_mask(path: str | os.PathLike) -> np.ndarray:
    """A mask file (white = hole) as a known mask: float32 (H, W), 1 = known, 0 = hole.

    Raises:
        LbamError: the file is missing or not a readable image.
    """
    try:
        hole = read_hole(path)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise LbamError(f"cannot read mask file {str(path)!r}: {error}") from None
    return (hole == 0).astype(np.float32)


def write_mask_png(path: str | os.PathLike, known_mask: np.ndarray) -> None:
    """Write ``known_mask`` (H, W), 1 = known, as an 8-bit grayscale PNG with white = hole, atomically.

    The bytes depend only on the mask (Pillow writes no timestamp), so equal masks give equal files.
    """
    pixels = np.where(np.asarray(known_mask) >= 0.5, 0, 255).astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")


def nvidia_bin(ratio: float) -> int:
    """NVIDIA hole-ratio bin of ``ratio``: 1..6 for (0.01, 0.1] .. (0.5, 0.6]; 0 below, 7 above."""
    for index, upper in enumerate(NVIDIA_BIN_EDGES):
        if ratio <= upper:
            return index
    return len(NVIDIA_BIN_EDGES)


def nvidia_bin_label(index: int) -> str:
    """Interval text of bin ``index`` (0..7), e.g. ``(0.01, 0.1]``."""
    edges = (0.0, *NVIDIA_BIN_EDGES, 1.0)
    opening = "[" if index == 0 else "("
    return f"{opening}{edges[index]:g}, {edges[index + 1]:g}]"

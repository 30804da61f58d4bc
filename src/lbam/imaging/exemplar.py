"""Exemplar synthesis: fill a hole with patches of the photo itself (PatchMatch, Barnes et al. 2009).

The network continues structure at low frequency but has no texture of its own; PatchMatch copies
texture (wood grain, foliage, brick) from the known pixels around the hole but breaks structure.
:func:`patchmatch_fill` runs PatchMatch (``pypatchmatch``, a prebuilt library, MIT), optionally
guided by a fill such as the network's: its low-passed colour is added to the patch distance, so
the patches chosen agree with the guide's colour layout while keeping their own texture.

Patches come only from the window's known pixels; the result is deterministic for a seed.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from lbam.errors import LbamError
from lbam.imaging.pixels import scaled_size, shrink, shrink_hole

PATCH_SIZE = 5  # 3 and 7 scored worse on object-sized holes
GUIDE_WEIGHT = 0.05  # 0.1 and above speckles the fill
MAX_SIDE = 512  # larger windows run downscaled: the same score at a fraction of the time
GUIDE_BLUR = 0.02  # the guide's low-pass, as a fraction of the window's longer side
_LOCK = threading.Lock()  # the library's seed is a global: one call at a time


def available() -> bool:
    """True when pypatchmatch and its native library load on this machine."""
    try:
        from patchmatch import patch_match
    except ImportError:
        return False
    return bool(patch_match.patchmatch_available)


def patchmatch_fill(
    color: np.ndarray,
    hole: np.ndarray,
    guide: np.ndarray | None = None,
    seed: int = 0,
    max_side: int = MAX_SIDE,
) -> np.ndarray:
    """Fill ``hole`` from the known pixels of ``color`` by PatchMatch.

    Args:
        color: (H, W, 3) uint8 RGB.
        hole: (H, W) bool, True = hole.
        guide: (H, W, 3) float in [0, 1], a fill whose colour layout the patches should follow
            (e.g. the network's output), or None.
        seed: the search's seed; equal inputs and seed give equal results.
        max_side: windows longer than this are filled downscaled, and the fill upscaled.

    Returns:
        (H, W, 3) float32 in [0, 1]; at known pixels it equals ``color``.

    Raises:
        LbamError: pypatchmatch is not installed, or its library does not load here.
    """
    if not available():
        raise LbamError("the texture stage needs pypatchmatch (pip install pypatchmatch) on Linux x86-64")
    from patchmatch import patch_match

    height, width = hole.shape
    scale = min(1.0, max_side / max(height, width))
    size = scaled_size(height, width, scale)
    small = shrink(color, size) if scale < 1 else color
    small_hole = shrink_hole(hole, size) if scale < 1 else hole
    mask = small_hole.astype(np.uint8) * 255
    with _LOCK:
        patch_match.set_random_seed(seed)
        if guide is None:
            filled = patch_match.inpaint(np.ascontiguousarray(small), mask, patch_size=PATCH_SIZE)
        else:
            layout = _guide_map(guide, size)
            filled = patch_match.inpaint_regularity(
                np.ascontiguousarray(small), mask, layout, patch_size=PATCH_SIZE, guide_weight=GUIDE_WEIGHT
            )
    filled = filled.astype(np.float32) / 255.0
    if scale < 1:
        filled = cv2.resize(filled, (width, height), interpolation=cv2.INTER_CUBIC)
    known = color.astype(np.float32) / 255.0
    return np.where(hole[..., None], np.clip(filled, 0.0, 1.0), known)


def _guide_map(guide: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The guide's low-passed Lab colour at the working size, float32 (H, W, 3)."""
    small = shrink(np.clip(guide, 0.0, 1.0).astype(np.float32), size)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2Lab)
    sigma = max(1.0, GUIDE_BLUR * max(size))
    return np.ascontiguousarray(cv2.GaussianBlur(lab, (0, 0), sigma).astype(np.float32))

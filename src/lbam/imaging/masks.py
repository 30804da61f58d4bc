"""The one mask reader of lbam, the NVIDIA hole-ratio bins, and writing mask files.

Mask *files and arrays from users* mark the hole: white / non-zero / True = hole. Inference,
training (``files`` masks), evaluation, ``lbam masks stats`` and the demo all read masks through
:func:`as_hole` / :func:`read_mask`, which return boolean **hole** arrays (True = hole); the code
inside lbam converts them to ``known_mask = ~hole`` (1 = known) right where a model needs it.
How a mask is read, precisely:

- bool values: True = hole.
- Only the values 0 and 1 (any integer type): 1 = hole (a 0/1 label map looks black but is common).
- Other integers: hole where the value is at least half the range: >= 128 for 8 bits, >= 32768 for
  16 bits (uint16, Pillow "I;16"/"I"; other integer arrays count as 16-bit when their maximum is
  above 255, else 8-bit). Floats: >= 0.5.
- Several colour channels (RGB): the brightest channel decides, so a red or green stroke on black
  marks a hole just like a white one.
- With an alpha channel (LA, RGBA, palette with transparency): when the alpha varies, the alpha
  alone is the mask, thresholded as above (opaque = hole, whatever the colour of the strokes: a mask
  painted on a transparent layer); when it is constant (e.g. fully opaque) the colour channels decide.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
from PIL import Image

from lbam.defaults import DEFAULT_MAX_PIXELS
from lbam.errors import LbamError
from lbam.imaging.io import Source, apply_orientation, check_pixels, exif_orientation, open_pil
from lbam.imaging.png import write_png


def threshold_half(values: np.ndarray) -> np.ndarray:
    """Hole map (bool) of single-channel mask values, thresholded at half their range (see module doc)."""
    if values.dtype == bool:
        return values.copy()
    if np.issubdtype(values.dtype, np.floating):
        if not np.isfinite(values).all():
            raise LbamError("mask holds NaN or infinite values: give 0 (keep) to 1 (hole)")
        return values >= 0.5
    if not np.issubdtype(values.dtype, np.integer):
        raise LbamError(f"mask values must be bool, integer or float, got {values.dtype}")
    if values.size == 0:
        return values.astype(bool)
    low, high = int(values.min()), int(values.max())
    if low >= 0 and high <= 1:
        return values > 0
    if values.dtype == np.uint8:
        return values >= 128
    if values.dtype == np.uint16 or high > 255:
        return values >= 32768
    return values >= 128


def hole_from_channels(array: np.ndarray, has_alpha: bool) -> np.ndarray:
    """Hole map (H, W) bool from mask pixels (H, W) or (H, W, C); the last channel is alpha if ``has_alpha``."""
    if array.ndim == 2:
        return threshold_half(array)
    if has_alpha:
        alpha = array[:, :, -1]
        if alpha.size and alpha.min() != alpha.max():
            return threshold_half(alpha)
        array = array[:, :, :-1]
    return threshold_half(array.max(axis=2))


def hole_from_array(mask: np.ndarray) -> np.ndarray:
    """Hole map (H, W) bool from an (H, W), (H, W, 1), (H, W, 2) grey+alpha, (H, W, 3) or (H, W, 4) array."""
    if mask.ndim == 3 and mask.shape[2] in (1, 2, 3, 4):
        return hole_from_channels(mask, has_alpha=mask.shape[2] in (2, 4))
    if mask.ndim == 2:
        return threshold_half(mask)
    raise LbamError(f"mask array must be HxW or HxWxC with C in 1..4, got shape {mask.shape}")


def hole_from_pil(mask: Image.Image) -> np.ndarray:
    """Hole map (H, W) bool from a PIL mask image of any mode (see module doc)."""
    try:
        mask.load()
    except Exception as error:  # a lazily opened, truncated file: Pillow fails only when decoding
        raise LbamError(f"cannot decode the mask (truncated or corrupt?): {error}") from None
    mode = mask.mode
    if mode == "P":
        mask = mask.convert("RGBA" if "transparency" in mask.info else "RGB")
    elif mode == "PA":
        mask = mask.convert("RGBA")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        mask = mask.convert("RGB")
    elif mode in ("RGBa", "La"):
        mask = mask.convert(mode.upper())
    if mask.mode == "1":
        return np.asarray(mask).astype(bool)
    array = np.asarray(mask)
    if array.ndim == 2:
        return threshold_half(array)
    return hole_from_channels(array, has_alpha=mask.mode in ("LA", "RGBA"))


def read_mask(path: Source, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Hole map (H, W) bool (True = hole) from a mask file (or its bytes), EXIF orientation applied."""
    image = open_pil(path, "mask", max_pixels)
    hole = hole_from_pil(image)
    return apply_orientation(hole, exif_orientation(image))


def as_hole(mask: object, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Hole map (H, W) bool from a PIL image, a numpy array or a mask file path; LbamError for
    anything else, or for a mask of more than ``max_pixels`` pixels."""
    if isinstance(mask, str | os.PathLike):
        return read_mask(mask, max_pixels)
    if isinstance(mask, Image.Image):
        check_pixels(mask.size, max_pixels, "mask")
        return hole_from_pil(mask)
    if isinstance(mask, np.ndarray):
        if mask.ndim >= 2:
            check_pixels((mask.shape[1], mask.shape[0]), max_pixels, "mask")
        return hole_from_array(mask)
    raise LbamError(f"mask must be a PIL image, a numpy array or a path, got {type(mask).__name__}")


def resize_hole(hole: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a hole map (True = hole) to ``size`` = (height, width).

    The one mask resize of lbam. It samples at pixel centres, exactly as Pillow's NEAREST does (the
    evaluation protocol's masks are unchanged by it), so a mask scaled by 2 and back is unchanged.
    """
    height, width = size
    if hole.shape == (height, width):
        return hole
    return cv2.resize(hole.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST_EXACT) > 0


def dilate_hole(hole: np.ndarray, pixels: int) -> np.ndarray:
    """Grow the hole by ``pixels`` (Euclidean distance), e.g. to cover halos around removed objects."""
    if pixels <= 0 or not hole.any():
        return hole
    # Distance from each known pixel to the nearest hole pixel: cost independent of ``pixels``.
    known = (~hole).astype(np.uint8)
    distance = cv2.distanceTransform(known, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return distance <= pixels


def prepare_hole(
    hole: np.ndarray,
    size: tuple[int, int],
    invert: bool = False,
    dilate: int = 0,
    resize: bool = False,
    name: str = "mask",
) -> np.ndarray:
    """Fit a hole map (True = hole) to a photo of ``size`` = (height, width).

    Inverts it if asked (for masks where white = keep), resizes it with nearest neighbour when
    ``resize`` is set (otherwise a size mismatch is an error), then grows it by ``dilate`` pixels.

    Raises:
        LbamError: size mismatch without ``resize``; negative ``dilate``; a hole covering the whole
            photo (nothing to condition on).
    """
    height, width = size
    if dilate < 0:
        raise LbamError(f"dilate must be >= 0 pixels, got {dilate}")
    if invert:
        hole = ~hole
    if hole.shape != (height, width):
        if not resize:
            raise LbamError(
                f"{name} is {hole.shape[1]}x{hole.shape[0]} but the image is {width}x{height} (WxH); "
                "use --resize-mask (resize_mask=True) to stretch it"
            )
        hole = resize_hole(hole, (height, width))
    hole = dilate_hole(hole, dilate)
    if hole.all():
        grown = f" after dilating by {dilate} px" if dilate else ""
        raise LbamError(f"{name} marks the whole image as hole{grown}: there is nothing to condition on")
    return hole


def write_mask_png(path: str | os.PathLike, known_mask: np.ndarray) -> None:
    """Write ``known_mask`` (H, W), 1 = known, as an 8-bit grayscale PNG with white = hole, atomically.

    The bytes depend only on the mask (Pillow writes no timestamp), so equal masks give equal files.
    """
    write_png(path, np.where(np.asarray(known_mask) >= 0.5, 0, 255).astype(np.uint8))


# ---- the NVIDIA irregular-mask hole-ratio bins (Liu et al. 2018) ----------------------------------

# Bin k (1..6) holds ratios in (EDGES[k-1], EDGES[k]]; bin 0 ratios <= 0.01 and bin 7 ratios > 0.6.
NVIDIA_BIN_EDGES = (0.01, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
BINS: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
# The edges in hundredths, so that binning is exact integer arithmetic (no float rounding at 0.3).
_EDGES_PERCENT = (1, 10, 20, 30, 40, 50, 60)


def hole_bin(hole_pixels: int, total_pixels: int) -> int:
    """NVIDIA bin of a mask with ``hole_pixels`` holes out of ``total_pixels``, exactly.

    1..6 for hole ratios in (0.01, 0.1], (0.1, 0.2], ..., (0.5, 0.6]; 0 at or below 0.01 (and for
    an empty mask); 7 above 0.6. Exact: ratio <= e/100 iff 100 * holes <= e * total.
    """
    if total_pixels <= 0:
        return 0
    for index, percent in enumerate(_EDGES_PERCENT):
        if 100 * hole_pixels <= percent * total_pixels:
            return index
    return len(_EDGES_PERCENT)


def hole_ratio_bin(hole: np.ndarray) -> int:
    """NVIDIA bin (0..7, see :func:`hole_bin`) of a hole map (True = hole)."""
    return hole_bin(int(np.count_nonzero(hole)), int(hole.size))


def bin_label(index: int) -> str:
    """Interval text of bin ``index`` (0..7): ``[0, 0.01]``, ``(0.01, 0.1]``, ..., ``(0.6, 1]``."""
    edges = (0.0, *NVIDIA_BIN_EDGES, 1.0)
    opening = "[" if index == 0 else "("
    return f"{opening}{edges[index]:g}, {edges[index + 1]:g}]"

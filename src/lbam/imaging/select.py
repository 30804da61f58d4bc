"""Select an object from a click, a box or both: GrabCut seeded by the hints, then snapped to edges.

GrabCut (Rother et al., SIGGRAPH 2004) models the object's and the background's colours with two
Gaussian mixtures and cuts the image along the edges between them. Here it runs twice:

1. **Coarse**, on a copy whose longer side is at most ``work_size`` px. A box seeds it the
   classic way (outside = background, inside = maybe object). A click without a box tries boxes
   of growing size around the clicks and keeps the first whose cut does not reach the box's edge
   (the object fits in it). Every click is a small definite disc (1 = object, 0 = not object).
   Only the connected parts that hold an object click (or, with a box alone, the largest) are kept,
   with their inner holes filled: a removal mask with holes would leave bits of the object.
2. **Snapped**, on the object's bounding box at up to ``refine_size`` px: the coarse outline
   becomes a band of "maybe" pixels between a definite inside and a definite outside, and a second
   cut places the edge at the finer scale. The result is upsampled to the photo.

Pure numpy/OpenCV, deterministic (OpenCV's GrabCut seeds its mixtures with a fixed k-means).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from lbam.errors import LbamError
from lbam.imaging.pixels import scaled_size, shrink

MAX_POINTS = 64
# Half-sides of the boxes tried around a click, as fractions of the image's shorter side.
CLICK_BOX_SCALES = (0.1, 0.18, 0.28, 0.4, 0.55)
CLICK_WORK_SIZE = 384


@dataclass(frozen=True)
class Hints:
    """What the user pointed at, in pixel coordinates of the image.

    Attributes:
        points: ``(x, y, label)`` triples; label 1 = object, 0 = not object.
        box: ``(x0, y0, x1, y1)`` around the object, or None.
    """

    points: tuple[tuple[float, float, int], ...] = ()
    box: tuple[float, float, float, float] | None = None


def make_hints(points: object, box: object, size: tuple[int, int]) -> Hints:
    """Checked :class:`Hints` for an image of ``size`` = (height, width) from JSON-like values.

    Raises:
        LbamError: a point that is not ``[x, y, 0|1]`` or lies outside the image, more than 64
            points, a box that is not ``[x0, y0, x1, y1]`` with ``x0 < x1``, ``y0 < y1`` inside
            the image, or neither an object click nor a box.
    """
    height, width = size
    checked = tuple(_point(p, width, height) for p in _sequence(points or [], "points", MAX_POINTS))
    frame = None
    if box is not None:
        values = [_number(v, "box") for v in _sequence(box, "box", 4)]
        if len(values) != 4 or not (
            0 <= values[0] < values[2] <= width and 0 <= values[1] < values[3] <= height
        ):
            raise LbamError(f"box must be [x0, y0, x1, y1] with x0 < x1 <= {width}, y0 < y1 <= {height}")
        frame = (values[0], values[1], values[2], values[3])
    if frame is None and not any(label == 1 for *_, label in checked):
        raise LbamError("select needs a box or at least one point with label 1 (on the object)")
    return Hints(checked, frame)


def _sequence(value: object, name: str, limit: int) -> list:
    if not isinstance(value, list | tuple) or len(value) > limit:
        raise LbamError(f"{name} must be a list of at most {limit} items, got {str(value)[:60]}")
    return list(value)


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LbamError(f"{name} must hold numbers, got {value!r}")
    return float(value)


def _point(value: object, width: int, height: int) -> tuple[float, float, int]:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise LbamError(f"each point must be [x, y, label], got {str(value)[:60]}")
    x, y = _number(value[0], "points"), _number(value[1], "points")
    if value[2] not in (0, 1) or isinstance(value[2], bool):
        raise LbamError(f"a point's label must be 1 (object) or 0 (not object), got {value[2]!r}")
    if not (0 <= x < width and 0 <= y < height):
        raise LbamError(f"point ({x:g}, {y:g}) is outside the {width}x{height} image")
    return x, y, int(value[2])


def select_object(
    rgb: np.ndarray, hints: Hints, work_size: int = 512, refine_size: int = 1024, iterations: int = 4
) -> np.ndarray:
    """The selected object of ``rgb`` (H, W, 3) uint8: a bool (H, W) map, True = object."""
    height, width = rgb.shape[:2]
    if hints.box is None:  # clicks alone try several boxes: a smaller copy keeps that under a second
        work_size = min(work_size, CLICK_WORK_SIZE)
    scale = min(1.0, work_size / max(height, width))
    small = _resized(rgb, scale)
    coarse = _coarse_cut(small, _scaled(hints, scale), iterations)
    if not coarse.any():
        return np.zeros((height, width), bool)
    return _snapped(rgb, coarse, hints, refine_size)


def _resized(rgb: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return np.ascontiguousarray(rgb)
    return shrink(rgb, scaled_size(rgb.shape[0], rgb.shape[1], scale))


def _scaled(hints: Hints, scale: float) -> Hints:
    points = tuple((x * scale, y * scale, label) for x, y, label in hints.points)
    box = None if hints.box is None else tuple(v * scale for v in hints.box)
    return Hints(points, box)  # type: ignore[arg-type]


def _coarse_cut(small: np.ndarray, hints: Hints, iterations: int) -> np.ndarray:
    """The object on the small copy: one cut for a box; for clicks alone, the best of several boxes."""
    if hints.box is not None:
        return _cut_in_box(small, hints.box, hints, iterations)
    height, width = small.shape[:2]
    edges = _edge_strength(small)
    positives = np.array([(x, y) for x, y, label in hints.points if label == 1])
    (x0, y0), (x1, y1) = positives.min(axis=0), positives.max(axis=0)
    best, best_score = np.zeros((height, width), bool), -1.0
    for fraction in CLICK_BOX_SCALES:
        half = fraction * min(height, width)
        box = (max(0.0, x0 - half), max(0.0, y0 - half), min(width, x1 + half), min(height, y1 + half))
        cut = _cut_in_box(small, box, hints, iterations)
        score = _outline_score(cut, box, edges)
        if score > best_score:
            best, best_score = cut, score
    return best


def _edge_strength(image: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the grey image, float32 (H, W)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))


def _outline_score(cut: np.ndarray, box: tuple[float, ...], edges: np.ndarray) -> float:
    """How well a cut follows real edges: the mean edge strength along its outline, where the
    outline running along the box's own sides (a cut the box clipped) counts as no edge at all."""
    outline = cut & ~ndimage.binary_erosion(cut, border_value=0)
    height, width = cut.shape
    on_frame = np.zeros_like(cut)
    x0, y0, x1, y1 = _pixel_box(box)
    for index in (y0, y1 - 1):
        if 0 < index < height - 1:
            on_frame[index, :] = True
    for index in (x0, x1 - 1):
        if 0 < index < width - 1:
            on_frame[:, index] = True
    if not outline.any():
        return 0.0
    strength = np.where(on_frame, 0.0, edges)
    return float(strength[outline].mean())


def _pixel_box(box: tuple[float, ...]) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` as the whole pixels it covers, x1 and y1 exclusive."""
    return math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]), math.ceil(box[3])


def _cut_in_box(image: np.ndarray, box: tuple[float, ...], hints: Hints, iterations: int) -> np.ndarray:
    """GrabCut seeded the classic way (outside ``box``: background; inside: maybe the object),
    then the parts under the clicks (:func:`_keep_clicked`)."""
    labels = np.full(image.shape[:2], cv2.GC_BGD, np.uint8)
    x0, y0, x1, y1 = _pixel_box(box)
    labels[y0:y1, x0:x1] = cv2.GC_PR_FGD
    return _keep_clicked(_grabcut(image, labels, hints, iterations), hints)


def _grabcut(image: np.ndarray, labels: np.ndarray, hints: Hints, iterations: int) -> np.ndarray:
    """Run GrabCut from ``labels`` with every click as a definite disc; True = object."""
    radius = max(2, round(0.012 * math.hypot(*labels.shape)))
    for x, y, label in hints.points:
        value = cv2.GC_FGD if label == 1 else cv2.GC_BGD
        cv2.circle(labels, (int(x), int(y)), radius, int(value), -1)
    has_object = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).any()
    has_background = np.isin(labels, (cv2.GC_BGD, cv2.GC_PR_BGD)).any()
    if has_object and has_background:
        background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)
        cv2.grabCut(image, labels, None, background, foreground, iterations, cv2.GC_INIT_WITH_MASK)
    return np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD))


def _keep_clicked(cut: np.ndarray, hints: Hints) -> np.ndarray:
    """The connected parts of ``cut`` under an object click (or the largest one), holes filled."""
    parts, count = ndimage.label(cut)
    if count == 0:
        return cut
    clicked = {int(parts[int(y), int(x)]) for x, y, label in hints.points if label == 1} - {0}
    if not clicked:
        sizes = np.bincount(parts.ravel())[1:]
        clicked = {int(np.argmax(sizes)) + 1}
    return ndimage.binary_fill_holes(np.isin(parts, list(clicked)))


def _snapped(rgb: np.ndarray, coarse: np.ndarray, hints: Hints, refine_size: int) -> np.ndarray:
    """Re-cut the coarse object's surroundings at up to ``refine_size`` px and upsample to the photo."""
    height, width = rgb.shape[:2]
    factor = height / coarse.shape[0]
    rows, cols = np.nonzero(coarse)
    margin = max(4.0, 0.1 * max(np.ptp(rows) + 1, np.ptp(cols) + 1)) * factor
    top, left = max(0, int(rows.min() * factor - margin)), max(0, int(cols.min() * factor - margin))
    bottom = min(height, int((rows.max() + 1) * factor + margin))
    right = min(width, int((cols.max() + 1) * factor + margin))
    crop = rgb[top:bottom, left:right]
    scale = min(1.0, refine_size / max(crop.shape[:2]))
    fine_image = _resized(crop, scale)
    fine_size = fine_image.shape[:2]
    guess = _upsampled(coarse, (height, width))[top:bottom, left:right]
    guess = cv2.resize(guess.astype(np.uint8), fine_size[::-1], interpolation=cv2.INTER_NEAREST) > 0
    band = max(2, round(1.5 * factor * scale))
    labels = _band_labels(guess, band)
    local = Hints(
        tuple(
            ((x - left) * scale, (y - top) * scale, label)
            for x, y, label in hints.points
            if left <= x < right and top <= y < bottom
        )
    )
    fine = _keep_clicked(_grabcut(fine_image, labels, local, 2), local) if guess.any() else guess
    result = np.zeros((height, width), bool)
    result[top:bottom, left:right] = _upsampled(fine, crop.shape[:2])
    return result


def _band_labels(guess: np.ndarray, band: int) -> np.ndarray:
    """Definite inside/outside away from the guessed edge, "probable" within ``band`` px of it."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    inside = cv2.erode(guess.astype(np.uint8), kernel) > 0
    outside = cv2.dilate(guess.astype(np.uint8), kernel) == 0
    labels = np.where(guess, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    labels[inside] = cv2.GC_FGD
    labels[outside] = cv2.GC_BGD
    return labels


def _upsampled(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A bool map resized smoothly to ``size`` = (height, width) and cut at one half."""
    if mask.shape == size:
        return mask
    resized = cv2.resize(mask.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return resized >= 0.5

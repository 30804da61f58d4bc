"""Synthetic masks drawn with OpenCV: LaMa-style strokes and boxes, DeepFill v2 free-form strokes.

All lengths, widths and box sizes are given in pixels *for a 256x256 mask* and scale with
``sqrt(H * W) / 256``, so a 512x512 mask looks like a 256x256 one at twice the resolution (as
LaMa's 256 and 512 configs do) and non-square sizes keep about the same hole ratio.

LaMa (Suvorov et al., WACV 2022) trains on "thin", "medium" and "thick" random polylines and on
random boxes; the defaults below follow the ranges of its ``random_*_256`` configs. Its own medium
and thick configs also pick boxes 0.3 / 1.3 of the time; the mixture ``lama_thick:1,lama_boxes:0.3``
gives the same. Directions here are uniform in [0, 2 pi) instead of LaMa's four coarse angles.

DeepFill v2 (Yu et al., ICCV 2019, "free-form" masks): a few strokes, each a random walk of 4 to 11
vertices whose turning angles cluster around 2 pi / 5, step lengths ~ N(r, r/2) clipped to [0, 2r]
with r = image diagonal / 8, one brush width per stroke, discs at the vertices for round joints,
then random horizontal and vertical flips.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from lbam.data.masks.base import (
    RedrawnMasks,
    number,
    scale_factor,
    value_range,
)


def _int_between(rng: np.random.Generator, bounds: tuple[float, float]) -> int:
    """A uniform integer in [low, high] (both ends included)."""
    return int(rng.integers(int(bounds[0]), int(bounds[1]) + 1))


class LamaStrokes(RedrawnMasks):
    """Random polylines ("irregular" masks of LaMa).

    Each of ``strokes`` polylines starts at a uniform random point and has ``segments`` straight
    segments; every segment picks a uniform direction, a length and a brush width. The end points
    are clipped to the image so a stroke never wanders off it.

    Args:
        strokes: (min, max) number of polylines.
        segments: (min, max) segments per polyline.
        length: (min, max) segment length in px at 256x256.
        width: (min, max) brush width in px at 256x256.
        hole_ratio, attempts: the accepted hole fraction and the redraws (:class:`RedrawnMasks`).
    """

    kind = "lama_strokes"

    def __init__(
        self,
        strokes=(4, 5),
        segments=(1, 5),
        length=(10, 109),
        width=(5, 54),
        hole_ratio=(0.01, 0.6),
        attempts: int = 10,
    ) -> None:
        self.strokes = value_range("strokes", strokes, self.kind, minimum=1, integer=True)
        self.segments = value_range("segments", segments, self.kind, minimum=1, integer=True)
        self.length = value_range("length", length, self.kind, minimum=0)
        self.width = value_range("width", width, self.kind, minimum=1)
        self.set_ratio_options(hole_ratio, attempts)

    def draw(self, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """One hole array (uint8 (H, W), 1 = hole), without the hole-ratio check."""
        hole = np.zeros(size, np.uint8)
        for _ in range(_int_between(rng, self.strokes)):
            self._stroke(hole, scale_factor(size), rng)
        return hole

    def _stroke(self, hole: np.ndarray, scale: float, rng: np.random.Generator) -> None:
        """One polyline of random segments from a random start, drawn into ``hole``."""
        height, width = hole.shape
        x, y = int(rng.integers(width)), int(rng.integers(height))
        for _ in range(_int_between(rng, self.segments)):
            angle = rng.uniform(0.0, 2.0 * math.pi)
            length = rng.uniform(*self.length) * scale
            brush = max(1, round(rng.uniform(*self.width) * scale))
            end_x = int(np.clip(x + length * math.cos(angle), 0, width - 1))
            end_y = int(np.clip(y + length * math.sin(angle), 0, height - 1))
            cv2.line(hole, (x, y), (end_x, end_y), 1, brush)
            x, y = end_x, end_y


def lama_thin(**options) -> LamaStrokes:
    """Many thin lines (LaMa ``random_thin_256``: 4-50 strokes, width 5-14, length 10-49)."""
    defaults = {"strokes": (4, 50), "length": (10, 49), "width": (5, 14)}
    return _preset(defaults, options, "lama_thin")


def lama_medium(**options) -> LamaStrokes:
    """A few medium strokes (LaMa ``random_medium_256``: 4-5 strokes, width 5-54, length 10-109)."""
    defaults = {"strokes": (4, 5), "length": (10, 109), "width": (5, 54)}
    return _preset(defaults, options, "lama_medium")


def lama_thick(**options) -> LamaStrokes:
    """Few thick strokes (LaMa ``random_thick_256``: 1-5 strokes, width 5-104, length 10-209)."""
    defaults = {"strokes": (1, 5), "length": (10, 209), "width": (5, 104)}
    return _preset(defaults, options, "lama_thick")


def _preset(defaults: dict, options: dict, kind: str) -> LamaStrokes:
    generator = LamaStrokes(**{**defaults, **options})
    generator.kind = kind
    return generator


class LamaBoxes(RedrawnMasks):
    """Random axis-aligned rectangles (LaMa's box masks; defaults of ``random_thick_256``).

    Args:
        boxes: (min, max) number of rectangles.
        box_size: (min, max) side length in px at 256x256, drawn separately for width and height.
        margin: distance in px at 256x256 that boxes keep from the border.
        hole_ratio, attempts: the accepted hole fraction and the redraws (:class:`RedrawnMasks`).
    """

    kind = "lama_boxes"

    def __init__(
        self, boxes=(1, 3), box_size=(30, 150), margin=10, hole_ratio=(0.01, 0.6), attempts: int = 10
    ) -> None:
        self.boxes = value_range("boxes", boxes, self.kind, minimum=1, integer=True)
        self.box_size = value_range("box_size", box_size, self.kind, minimum=1)
        self.margin = number("margin", margin, self.kind, minimum=0)
        self.set_ratio_options(hole_ratio, attempts)

    def draw(self, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """One hole array (uint8 (H, W), 1 = hole), without the hole-ratio check."""
        height, width = size
        scale = scale_factor(size)
        hole = np.zeros((height, width), np.uint8)
        for _ in range(_int_between(rng, self.boxes)):
            box_h, top = self._side(height, scale, rng)
            box_w, left = self._side(width, scale, rng)
            hole[top : top + box_h, left : left + box_w] = 1
        return hole

    def _side(self, extent: int, scale: float, rng: np.random.Generator) -> tuple[int, int]:
        """Length and start of a box along one axis; small images shrink the margin, then the box."""
        margin = min(round(self.margin * scale), (extent - 1) // 2)
        room = extent - 2 * margin
        low = min(max(1, round(self.box_size[0] * scale)), room)
        high = min(max(1, round(self.box_size[1] * scale)), room)
        length = int(rng.integers(low, high + 1))
        start = int(rng.integers(margin, extent - margin - length + 1))
        return length, start


class DeepFillStrokes(RedrawnMasks):
    """DeepFill v2 free-form masks (Yu et al. 2019).

    Args:
        strokes: (min, max) number of strokes.
        vertices: (min, max) vertices per stroke.
        mean_angle: typical turning angle in radians (2 pi / 5).
        angle_range: spread of the turning angle around ``mean_angle`` (2 pi / 15).
        width: (min, max) brush width in px at 256x256 (one width per stroke).
        flip: randomly flip the finished mask horizontally and vertically.

    ``hole_ratio`` and ``attempts`` bound the hole fraction as for every :class:`RedrawnMasks`.
    """

    kind = "deepfill"

    def __init__(
        self,
        strokes=(1, 3),
        vertices=(4, 11),
        mean_angle: float = 2 * math.pi / 5,
        angle_range: float = 2 * math.pi / 15,
        width=(12, 40),
        flip: bool = True,
        hole_ratio=(0.01, 0.6),
        attempts: int = 10,
    ) -> None:
        self.strokes = value_range("strokes", strokes, self.kind, minimum=1, integer=True)
        self.vertices = value_range("vertices", vertices, self.kind, minimum=1, integer=True)
        self.mean_angle = number("mean_angle", mean_angle, self.kind)
        self.angle_range = number("angle_range", angle_range, self.kind, minimum=0)
        self.width = value_range("width", width, self.kind, minimum=1)
        self.flip = bool(flip)
        self.set_ratio_options(hole_ratio, attempts)

    def draw(self, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """One hole array (uint8 (H, W), 1 = hole), without the hole-ratio check."""
        height, width = size
        scale = scale_factor(size)
        mean_step = math.hypot(height, width) / 8
        hole = np.zeros((height, width), np.uint8)
        for _ in range(_int_between(rng, self.strokes)):
            count = _int_between(rng, self.vertices)
            angle_low = self.mean_angle - rng.uniform(0, self.angle_range)
            angle_high = self.mean_angle + rng.uniform(0, self.angle_range)
            brush = max(1, round(rng.uniform(*self.width) * scale))
            x, y = float(rng.integers(width)), float(rng.integers(height))
            points = [(round(x), round(y))]
            for index in range(count):
                turn = rng.uniform(angle_low, angle_high)
                # alternating the turn direction keeps the walk from curling into a circle
                angle = 2 * math.pi - turn if index % 2 == 0 else turn
                step = float(np.clip(rng.normal(mean_step, mean_step / 2), 0, 2 * mean_step))
                x = float(np.clip(x + step * math.cos(angle), 0, width - 1))
                y = float(np.clip(y + step * math.sin(angle), 0, height - 1))
                points.append((round(x), round(y)))
            for start, end in zip(points[:-1], points[1:], strict=True):
                cv2.line(hole, start, end, 1, brush)
            for point in points:
                cv2.circle(hole, point, brush // 2, 1, -1)
        if self.flip and rng.random() < 0.5:
            hole = hole[:, ::-1]
        if self.flip and rng.random() < 0.5:
            hole = hole[::-1, :]
        return np.ascontiguousarray(hole)

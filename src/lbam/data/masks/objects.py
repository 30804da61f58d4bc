"""Object-sized holes, some cut by the image border: what a person paints to remove a thing.

Stroke and box masks rarely reach the border and seldom cover a whole object; a model trained
only on them fills such holes badly, worst in a band along the border. Each mask here is one or two
filled blobs -- star-shaped polygons with a random aspect ratio and rotation, like the silhouette
of a person, a car or a sign -- whose diameter is a fraction of the image's shorter side; with
probability ``border`` a blob's centre is moved onto an edge, so the hole runs out of the image.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from lbam.data.masks.base import RedrawnMasks, number, value_range


class ObjectMasks(RedrawnMasks):
    """Object-shaped holes (see the module doc), drawn by ``generator((H, W), rng) -> known_mask``
    (float32 (H, W), 1 = known, 0 = hole).

    Args:
        count: (min, max) number of blobs.
        size: (min, max) blob diameter as a fraction of the shorter image side.
        border: probability that a blob is centred on a random edge of the image.
        vertices: (min, max) corners of a blob's polygon.
        hole_ratio, attempts: as for the other kinds, the accepted range of the hole fraction and
            the redraws before the closest mask is returned anyway.
    """

    kind = "objects"

    def __init__(
        self,
        count=(1, 2),
        size=(0.3, 0.8),
        border: float = 0.35,
        vertices=(6, 14),
        hole_ratio=(0.02, 0.6),
        attempts: int = 10,
    ) -> None:
        self.count = value_range("count", count, self.kind, minimum=1, integer=True)
        self.size = value_range("size", size, self.kind, minimum=0.01, maximum=1.5)
        self.border = number("border", border, self.kind, minimum=0)
        self.vertices = value_range("vertices", vertices, self.kind, minimum=3, integer=True)
        self.set_ratio_options(hole_ratio, attempts)

    def draw(self, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """One hole array (uint8 (H, W), 1 = hole), without the hole-ratio check."""
        height, width = size
        hole = np.zeros((height, width), np.uint8)
        for _ in range(int(rng.integers(self.count[0], self.count[1] + 1))):
            centre = self._centre(height, width, rng)
            radius = rng.uniform(*self.size) * min(height, width) / 2
            cv2.fillPoly(hole, [self._polygon(centre, radius, rng)], 1)
        return hole

    def _centre(self, height: int, width: int, rng: np.random.Generator) -> tuple[float, float]:
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        if rng.random() < self.border:
            edge = int(rng.integers(4))
            x = (0.0, width - 1.0, x, x)[edge]
            y = (y, y, 0.0, height - 1.0)[edge]
        return x, y

    def _polygon(self, centre: tuple[float, float], radius: float, rng: np.random.Generator) -> np.ndarray:
        corners = int(rng.integers(self.vertices[0], self.vertices[1] + 1))
        angles = np.sort(rng.uniform(0, 2 * math.pi, corners))
        radii = radius * rng.uniform(0.55, 1.0, corners)
        aspect = math.exp(rng.uniform(-0.7, 0.7))  # from squat to tall
        turn = rng.uniform(0, math.pi)
        x = radii * np.cos(angles) * aspect
        y = radii * np.sin(angles) / aspect
        rotated_x = x * math.cos(turn) - y * math.sin(turn) + centre[0]
        rotated_y = x * math.sin(turn) + y * math.cos(turn) + centre[1]
        return np.round(np.stack([rotated_x, rotated_y], axis=1)).astype(np.int32)

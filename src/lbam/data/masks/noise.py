"""The LBAM authors' noise-blob masks (``generateMask.py`` of Vious/LBAM_Pytorch), with the right polarity.

Their recipe, for 256x256 masks: draw uniform noise on a coarse grid of ``int(0.025 * 350) = 8``
cells a side, upsample it bilinearly to a 350x350 canvas (smooth random hills), mark the canvas
pixels below ``density = 0.25`` as the pattern, and cut a random 256x256 window from it. A window
whose pattern covers 20-30 % is accepted; after two windows outside that range the last one is
kept. Masks whose pattern covers less than 6.5 % (4,286 of 65,536 pixels) are thrown away.

The pattern is meant to be the hole (the 20-30 % selection only makes sense that way), but their
script saves ``1 - pattern`` as white, and their loader reads white as hole, so the files they
wrote are 70-80 % holes. Here the pattern is the hole. Other sizes keep the same geometry: the
canvas is 350/256 of the mask size and the grid ``res`` times the canvas, per axis.

Smoothing makes windows inside 20-30 % rare, so the hole ratios are lower than the target: over
1,000 masks of 256x256 both this code and the authors' script (run under PyTorch) give a mean of
0.13, median 0.12, 5th-95th percentile 0.07-0.22.
"""

from __future__ import annotations

import cv2
import numpy as np

from lbam.data.masks.base import check_size, known_from_hole, number, value_range

# The authors generate at 256 and cut from a 350 canvas: the window sees 256/350 of the noise field.
CANVAS_RATIO = 350 / 256


class NoiseBlobs:
    """Blob masks from thresholded, bilinearly smoothed uniform noise.

    Args:
        density: noise threshold; the expected hole fraction before window selection (0.25).
        res: noise grid cells per canvas pixel; lower gives fewer, larger blobs (0.025).
        target: hole-ratio range a window should fall in (0.2, 0.3).
        windows: windows tried per noise field before the last one is kept (2, as the authors).
        min_hole_ratio: masks with fewer holes are redrawn from new noise (4286 / 65536).
        attempts: noise fields drawn before the last mask is returned anyway.

    Call: ``generator((H, W), rng) -> known_mask`` float32 (H, W), 1 = known, 0 = hole.
    """

    kind = "noise"

    def __init__(
        self,
        density: float = 0.25,
        res: float = 0.025,
        target=(0.2, 0.3),
        windows: int = 2,
        min_hole_ratio: float = 4286 / 65536,
        attempts: int = 20,
    ) -> None:
        self.density = number("density", density, self.kind, minimum=0)
        self.res = number("res", res, self.kind, minimum=1e-6)
        self.target = value_range("target", target, self.kind, minimum=0, maximum=1)
        self.windows = int(number("windows", windows, self.kind, minimum=1))
        self.min_hole_ratio = number("min_hole_ratio", min_hole_ratio, self.kind, minimum=0)
        self.attempts = int(number("attempts", attempts, self.kind, minimum=1))

    def __call__(self, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        height, width = check_size(size)
        for _ in range(self.attempts):
            hole = self.draw((height, width), rng)
            if hole.mean() >= self.min_hole_ratio:
                break
        return known_from_hole(hole)

    def draw(self, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """One window (uint8 (H, W), 1 = hole) from a fresh noise field, without the minimum check."""
        height, width = size
        canvas_h, canvas_w = round(height * CANVAS_RATIO), round(width * CANVAS_RATIO)
        # at least 2 cells per axis, or a tiny mask would be all hole or all known
        grid = rng.random((max(2, int(self.res * canvas_h)), max(2, int(self.res * canvas_w))))
        field = cv2.resize(grid.astype(np.float32), (canvas_w, canvas_h), interpolation=cv2.INTER_LINEAR)
        pattern = (field < self.density).astype(np.uint8)
        low, high = self.target
        for _ in range(self.windows):
            top = int(rng.integers(0, canvas_h - height + 1))
            left = int(rng.integers(0, canvas_w - width + 1))
            hole = pattern[top : top + height, left : left + width]
            if low < hole.mean() < high:
                break
        return np.ascontiguousarray(hole)

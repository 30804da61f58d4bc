"""The classical fills: OpenCV's Telea and Navier-Stokes diffusion and PatchMatch exemplar synthesis.

One home for the methods that need no trained network: the evaluation's anchors
(:mod:`lbam.evaluation.methods`) and the server's non-network fills
(:class:`lbam.model.classical.ClassicalFill`) both call :func:`classical_fill`.
"""

from __future__ import annotations

import cv2
import numpy as np

from lbam.errors import LbamError
from lbam.imaging.exemplar import patchmatch_fill

CLASSICAL_FILLS = ("telea", "ns", "patchmatch")
_OPENCV_FLAGS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


def classical_fill(color: np.ndarray, hole: np.ndarray, method: str, radius: float = 3.0) -> np.ndarray:
    """Fill ``hole`` of ``color`` by ``method``.

    Args:
        color: (H, W, 3) uint8 RGB; its hole pixels are never read.
        hole: (H, W) bool, True = hole.
        method: "telea" (fast marching), "ns" (Navier-Stokes) or "patchmatch".
        radius: the neighbourhood of the two diffusion methods, in pixels.

    Returns:
        (H, W, 3) float32 in [0, 1]; at known pixels it equals ``color``.
    """
    if method == "patchmatch":
        return patchmatch_fill(color, hole)
    if method not in _OPENCV_FLAGS:
        raise LbamError(f"unknown fill {method!r}; use one of {', '.join(CLASSICAL_FILLS)}")
    if not radius > 0:
        raise LbamError(f"inpainting radius must be positive, got {radius}")
    filled = cv2.inpaint(color, hole.astype(np.uint8) * 255, float(radius), _OPENCV_FLAGS[method])
    return filled.astype(np.float32) / 255.0

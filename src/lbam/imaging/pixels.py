"""Pixel conversions used across lbam: float to 8-bit, the composite of a fill with its photo, and
the downscaling that every stage working on a smaller copy of a photo shares.

Pure functions of arrays or tensors, imported by inference, evaluation, training logs and the demo.
"""

from __future__ import annotations

from typing import TypeVar

import cv2
import numpy as np
import torch

Pixels = TypeVar("Pixels", np.ndarray, torch.Tensor)


def to_uint8(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """Values in [0, 1] (clipped) -> uint8 with rounding to nearest; a tensor comes back as an array."""
    if isinstance(image, torch.Tensor):
        image = image.detach().float().cpu().numpy()
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def composite(output: Pixels, target: Pixels, known_mask: Pixels) -> Pixels:
    """``output`` in the holes, ``target`` where ``known_mask`` is 1 / True: known pixels exactly.

    Arrays: known_mask broadcasts against the images, e.g. (H, W, 1) bool for (H, W, 3) images.
    Tensors: known_mask (B, 1|C, H, W) float, 1 = known, 0 = hole (soft values blend); differentiable.
    """
    if isinstance(output, np.ndarray):
        return np.where(np.asarray(known_mask, dtype=bool), target, output).astype(
            np.result_type(output, target)
        )
    return output * (1 - known_mask) + target * known_mask


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """The (width, height) OpenCV takes for an image of ``height`` x ``width`` scaled by ``scale``,
    each side at least 1 px."""
    return max(1, round(width * scale)), max(1, round(height * scale))


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` (H, W) or (H, W, C) resized to ``size`` (width, height) by area averaging, which
    keeps no aliasing; a one-channel (H, W, 1) image keeps its channel axis."""
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return small.reshape(size[1], size[0], *image.shape[2:])


def shrink_hole(hole: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``hole`` (H, W) bool at ``size`` (width, height): every small pixel that overlaps a hole pixel
    is a hole, so no hole is lost however small."""
    return cv2.resize(hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0

"""Pixel conversions used across lbam: float to 8-bit, and the composite of a fill with its photo.

Pure functions of arrays or tensors, imported by inference, evaluation, training logs and the demo.
"""

from __future__ import annotations

from typing import TypeVar

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

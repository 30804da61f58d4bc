"""Masks read from a folder of files (white = hole), e.g. the NVIDIA irregular masks, with augmentation.

Liu et al. (2018), who released the NVIDIA irregular mask set, augment each mask during training by
random dilation, rotation and cropping. Here, in this order and each optional:

Files are read by :func:`lbam.imaging.masks.read_mask`, with the same rules as ``lbam inpaint``.

1. dilation of the holes by a square kernel of random odd size (3 to 9 px by default),
2. rotation by a uniform random angle about the centre plus a random shift of up to ``translate``
   of each side (one nearest-neighbour warp; uncovered pixels become known),
3. random horizontal and vertical flips,
4. fitting to the requested size: ``fit="resize"`` scales the mask (nearest) so it covers the size
   with its aspect kept, as the LBAM authors' loader resizes the 512 px NVIDIA masks to 256, then
   cuts a random window; ``fit="crop"`` keeps the mask's resolution and cuts a random window (a
   mask smaller than the size is first scaled up just enough).

A file that cannot be decoded is logged once and another one is drawn, so training never stops on
a damaged mask; only when every file fails is it an error.
"""

from __future__ import annotations

import logging
import math
import os

import cv2
import numpy as np

from lbam.data.masks.base import check_size, known_from_hole, number, value_range
from lbam.errors import LbamError
from lbam.imaging.files import list_images
from lbam.imaging.masks import read_mask, resize_hole

LOG = logging.getLogger(__name__)

FIT_MODES = ("resize", "crop")


class FileMasks:
    """Masks drawn uniformly from the image files under ``path`` (white = hole), augmented.

    Args:
        path: folder searched recursively for mask images (:func:`lbam.imaging.files.list_images`).
        augment: master switch for steps 1-3 of the module docstring.
        dilation: (min, max) kernel size in px (odd sizes in between are drawn); None or 0 = off.
        rotation: rotate by a uniform angle in [0, 360).
        flip: random horizontal and vertical flips.
        translate: largest shift as a fraction of each side; 0 = off.
        fit: "resize" (scale to cover the size, then crop) or "crop" (crop at native resolution).

    Call: ``generator((H, W), rng) -> known_mask`` float32 (H, W), 1 = known, 0 = hole.
    """

    kind = "files"

    def __init__(
        self,
        path: str | os.PathLike,
        augment: bool = True,
        dilation=(3, 9),
        rotation: bool = True,
        flip: bool = True,
        translate: float = 0.1,
        fit: str = "resize",
    ) -> None:
        self.path = str(path)
        self.augment = bool(augment)
        if dilation is None or dilation == 0 or dilation is False:
            self.dilation = None
        else:
            self.dilation = value_range("dilation", dilation, self.kind, minimum=1, integer=True)
        self.rotation = bool(rotation)
        self.flip = bool(flip)
        self.translate = number("translate", translate, self.kind, minimum=0)
        if fit not in FIT_MODES:
            raise LbamError(
                f"mask kind 'files': option 'fit' must be one of {', '.join(FIT_MODES)}, got {fit!r}"
            )
        self.fit = fit
        self.files = list_images(path, what="mask")
        self.bad_files: set[int] = set()

    def __len__(self) -> int:
        return len(self.files)

    def __call__(self, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        size = check_size(size)
        hole = self._read_random(rng)
        if self.augment:
            hole = self.augment_hole(hole, rng)
        return known_from_hole(self.fit_hole(hole, size, rng))

    def _read_random(self, rng: np.random.Generator) -> np.ndarray:
        """The hole array (uint8, 1 = hole) of a random file; the next readable one if it is damaged.

        Exactly one number is drawn from ``rng`` and the fallback walks the sorted list, so the
        result does not depend on which damaged files this process has already met.
        """
        first = int(rng.integers(len(self.files)))
        for offset in range(len(self.files)):
            index = (first + offset) % len(self.files)
            if index in self.bad_files:
                continue
            try:
                return read_mask(self.files[index]).astype(np.uint8)
            except LbamError as error:
                self.bad_files.add(index)
                LOG.warning("skipping unreadable mask file %s: %s", self.files[index], error)
        raise LbamError(f"no mask file under {self.path!r} could be read ({len(self.files)} tried)")

    def augment_hole(self, hole: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Dilate, rotate + shift, flip a hole array (uint8 (h, w), 1 = hole); same size out."""
        if self.dilation is not None:
            low, high = self.dilation
            sizes = [k for k in range(low, high + 1) if k % 2 == 1] or [low]
            kernel = int(sizes[int(rng.integers(len(sizes)))])
            if kernel > 1:
                hole = cv2.dilate(hole, np.ones((kernel, kernel), np.uint8))
        if self.rotation or self.translate > 0:
            hole = self._warp(hole, rng)
        if self.flip and rng.random() < 0.5:
            hole = hole[:, ::-1]
        if self.flip and rng.random() < 0.5:
            hole = hole[::-1, :]
        return np.ascontiguousarray(hole)

    def _warp(self, hole: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        height, width = hole.shape
        angle = rng.uniform(0.0, 360.0) if self.rotation else 0.0
        matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), angle, 1.0)
        matrix[0, 2] += rng.uniform(-self.translate, self.translate) * width
        matrix[1, 2] += rng.uniform(-self.translate, self.translate) * height
        return cv2.warpAffine(
            hole,
            matrix,
            (width, height),
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )

    def fit_hole(self, hole: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """Scale (per ``fit``) and randomly crop a hole array to ``size`` (height, width)."""
        height, width = size
        src_h, src_w = hole.shape
        scale = max(height / src_h, width / src_w)
        if self.fit == "crop":
            scale = max(scale, 1.0)
        if scale != 1.0:
            new_w, new_h = (
                max(width, math.ceil(src_w * scale - 1e-9)),
                max(height, math.ceil(src_h * scale - 1e-9)),
            )
            hole = resize_hole(hole > 0, (new_h, new_w)).astype(np.uint8)
        top = int(rng.integers(0, hole.shape[0] - height + 1))
        left = int(rng.integers(0, hole.shape[1] - width + 1))
        return hole[top : top + height, left : left + width]

"""Hole masks for training and evaluation.

Every generator is a callable ``generator((H, W), rng) -> known_mask``: float32 (H, W) in {0, 1},
**1 = known pixel, 0 = hole**, all randomness taken from the :class:`numpy.random.Generator` ``rng``.
Kinds by name: ``files`` (a folder of mask images, white = hole, augmented), ``noise`` (the LBAM
authors' noise blobs), ``lama_thin`` / ``lama_medium`` / ``lama_thick`` (LaMa strokes),
``lama_boxes`` (LaMa rectangles), ``deepfill`` (DeepFill v2 free-form strokes), ``objects``
(object-sized blobs, some cut by the image border).

    generator = mask_generator_from_spec([{"kind": "noise", "weight": 1}, {"kind": "deepfill", "weight": 2}])
    known_mask = generator((256, 256), numpy.random.default_rng(0))
"""

from lbam.data.masks.base import MaskGenerator, hole_ratio
from lbam.data.masks.files import FileMasks
from lbam.data.masks.mixture import (
    KINDS,
    MaskMixture,
    build_mask_generator,
    mask_generator_from_spec,
    parse_kind_list,
)
from lbam.data.masks.noise import NoiseBlobs
from lbam.data.masks.objects import ObjectMasks
from lbam.data.masks.strokes import DeepFillStrokes, LamaBoxes, LamaStrokes

__all__ = [
    "KINDS",
    "DeepFillStrokes",
    "FileMasks",
    "LamaBoxes",
    "LamaStrokes",
    "MaskGenerator",
    "MaskMixture",
    "NoiseBlobs",
    "ObjectMasks",
    "build_mask_generator",
    "hole_ratio",
    "mask_generator_from_spec",
    "parse_kind_list",
]

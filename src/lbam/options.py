"""The options of an inpainting call: one dataclass behind ``lbam.inpaint``, ``lbam inpaint`` and the
HTTP server, so the three share every name, default, check and help text.

This module imports neither torch nor numpy, so the command line can build its parser from it
without slowing ``lbam --help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any

from lbam.defaults import BLENDS, DEFAULT_MAX_PIXELS, STRATEGIES
from lbam.errors import LbamError


def _option(default: Any, help: str, **argparse_settings: Any) -> Any:
    return dataclasses.field(default=default, metadata={"help": help, **argparse_settings})


@dataclasses.dataclass(frozen=True)
class InpaintOptions:
    """How to read the mask and how to cover a large photo (strategies: :mod:`lbam.inference.pipeline`).

    Attributes:
        invert_mask: the mask marks the pixels to keep instead of the hole.
        dilate: grow the hole by this many pixels.
        resize_mask: stretch a mask of another size to the photo (nearest neighbour) instead of failing.
        strategy: "auto" (= "fit"), "fit", "full", "crop" or "resize".
        context: context around each hole region, in multiples of its longer side (fit).
        max_size: the longest side one model pass sees (crop/resize).
        max_pixels: the largest photo or mask accepted, in pixels, checked before decoding.
        crop_margin: context pixels around each hole region (crop).
        crop_min_size: the smallest window side (crop).
        blend: "harmonic" (the fill is shifted to meet the photo without a seam) or "paste" (the
            model's output as is).
    """

    invert_mask: bool = _option(False, "the mask is white where the photo is kept")
    dilate: int = _option(0, "grow the holes by N pixels", metavar="N")
    resize_mask: bool = _option(False, "stretch a mask of another size to the photo (nearest neighbour)")
    strategy: str = _option(
        "auto",
        "fit: one window per hole region at the model's training scale; full: one pass; crop: one "
        "window per hole region with a fixed margin; resize: downscale to --max-size; auto: fit",
        choices=STRATEGIES,
    )
    context: float = _option(
        1.0, "context around each hole region, in multiples of the region's longer side (fit)", metavar="X"
    )
    max_size: int = _option(1024, "longest side of one model pass (crop, resize)", metavar="PX")
    max_pixels: int = _option(
        DEFAULT_MAX_PIXELS,
        "refuse photos and masks with more pixels than this (checked before decoding)",
        metavar="N",
    )
    crop_margin: int = _option(128, "context around each hole (crop)", metavar="PX")
    crop_min_size: int = _option(512, "smallest crop window side (crop)", metavar="PX")
    blend: str = _option(
        "harmonic",
        "harmonic: shift each fill by the smooth spread of the model's error on the pixels around "
        "it, so it meets the photo without a seam or colour cast; paste: the model's output as is",
        choices=BLENDS,
    )

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise LbamError(f"unknown strategy {self.strategy!r}; use one of {', '.join(STRATEGIES)}")
        if self.blend not in BLENDS:
            raise LbamError(f"unknown blend {self.blend!r}; use one of {', '.join(BLENDS)}")
        if self.dilate < 0:
            raise LbamError(f"dilate must be >= 0 pixels, got {self.dilate}")
        if not (math.isfinite(self.context) and 0 <= self.context <= 8):
            raise LbamError(f"context must be between 0 and 8 times the hole size, got {self.context}")
        if self.max_pixels < 1:
            raise LbamError(f"max_pixels must be positive, got {self.max_pixels}")
        if self.max_size < 1:
            raise LbamError(f"max_size must be a positive number of pixels, got {self.max_size}")
        if self.crop_margin < 0 or self.crop_min_size < 1:
            raise LbamError(
                f"crop_margin must be >= 0 and crop_min_size >= 1, got {self.crop_margin}, {self.crop_min_size}"
            )

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> InpaintOptions:
        """Options from keyword values; an unknown name is a TypeError that lists the known ones."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [key for key in values if key not in names]
        if unknown:
            raise TypeError(f"unknown inpainting option {unknown[0]!r}; options: {', '.join(names)}")
        return cls(**values)


def add_option_arguments(parser: argparse.ArgumentParser) -> None:
    """One command-line flag per :class:`InpaintOptions` field (``--max-size`` for ``max_size``)."""
    for field in dataclasses.fields(InpaintOptions):
        flag = "--" + field.name.replace("_", "-")
        settings = dict(field.metadata)
        if field.type in ("bool", bool):
            parser.add_argument(flag, action="store_true", help=settings["help"])
            continue
        settings["help"] += " (default: %(default)s)"
        kind = {"int": int, "str": str, "float": float}.get(str(field.type), str)
        parser.add_argument(flag, type=kind, default=field.default, **settings)


def options_from_args(args: argparse.Namespace) -> InpaintOptions:
    """The :class:`InpaintOptions` of parsed command-line arguments."""
    return InpaintOptions(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(InpaintOptions)}
    )

"""The options of an inpainting call: one dataclass behind ``lbam.inpaint``, ``lbam inpaint`` and the
HTTP server, so the three share every name, default, range, check and help text.

Each field carries its help text and its allowed values (``choices``, ``minimum``, ``maximum``) as
metadata. From that one description come the command-line flags (:func:`add_option_arguments`),
the checks of the Python API (``InpaintOptions.__post_init__``) and the server's validated and
documented request schema (:mod:`lbam.server.schema`), and the page's choice lists, which the
server hands out (``GET /api/v1/options``).

This module imports neither torch nor numpy, so the command line can build its parser from it
without slowing ``lbam --help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any

from lbam.defaults import BLENDS, DEFAULT_MAX_PIXELS, REFINES, STRATEGIES
from lbam.errors import LbamError

# JPEG and WebP quality of written results (Pillow's scale).
QUALITY_RANGE = (1, 100)
# A mask drawn tight to an object left a 1-px outline of it; 3 px of growth removed it.
DEFAULT_DILATE = 3
DEFAULT_QUALITY = 95


def _option(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    metavar: str | None = None,
) -> Any:
    metadata = {"help": help, "choices": choices, "minimum": minimum, "maximum": maximum, "metavar": metavar}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class InpaintOptions:
    """How to read the mask and how to cover a large photo (strategies: :mod:`lbam.inference.pipeline`).

    Attributes:
        invert_mask: the mask marks the pixels to keep instead of the hole.
        dilate: grow the hole by this many pixels (default 3: a mask drawn tight to an object
            leaves no 1-px outline of it; 0 keeps the mask as drawn).
        resize_mask: stretch a mask of another size to the photo (nearest neighbour) instead of failing.
        strategy: "auto" (= "fit"), "fit", "full", "crop" or "resize".
        context: context around each hole region, in multiples of its longer side (fit).
        max_size: the longest side one model pass sees (crop/resize).
        max_pixels: the largest photo or mask accepted, in pixels, checked before decoding.
        crop_margin: context pixels around each hole region (crop).
        crop_min_size: the smallest window side (crop).
        blend: "harmonic" (the fill is shifted to meet the photo without a seam) or "paste" (the
            model's output as is).
        refine: "texture" (patches of the photo around each hole, laid out as the network's fill)
            or "none" (the network's fill alone).

    Raises:
        LbamError: a value of the wrong type or out of its range, naming the option.
    """

    invert_mask: bool = _option(False, "the mask is white where the photo is kept")
    dilate: int = _option(
        DEFAULT_DILATE,
        "grow the holes by N pixels, so a tight mask leaves no outline of the object (0: as drawn)",
        minimum=0,
        maximum=4096,
        metavar="N",
    )
    resize_mask: bool = _option(False, "stretch a mask of another size to the photo (nearest neighbour)")
    strategy: str = _option(
        "auto",
        "fit: a window around each hole region (small ones close together share one) at the model's "
        "training scale; full: one pass; crop: one "
        "window per hole region with a fixed margin; resize: downscale to --max-size; auto: fit",
        choices=STRATEGIES,
    )
    context: float = _option(
        1.0,
        "context around each hole region, in multiples of the region's longer side (fit)",
        minimum=0,
        maximum=8,
        metavar="X",
    )
    max_size: int = _option(
        1024, "longest side of one model pass (crop, resize)", minimum=1, maximum=65536, metavar="PX"
    )
    max_pixels: int = _option(
        DEFAULT_MAX_PIXELS,
        "refuse photos and masks with more pixels than this (checked before decoding)",
        minimum=1,
        metavar="N",
    )
    crop_margin: int = _option(128, "context around each hole (crop)", minimum=0, maximum=65536, metavar="PX")
    crop_min_size: int = _option(
        512, "smallest crop window side (crop)", minimum=1, maximum=65536, metavar="PX"
    )
    blend: str = _option(
        "harmonic",
        "harmonic: shift each fill by the smooth spread of the model's error on the pixels around "
        "it, so it meets the photo without a seam or colour cast; paste: the model's output as is",
        choices=BLENDS,
    )
    refine: str = _option(
        "texture",
        "texture: fill each hole with patches of the photo around it (PatchMatch), their colour "
        "layout the network's; none: the network's fill alone (smooth, the paper's output)",
        choices=REFINES,
    )

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            check_option(field, getattr(self, field.name))

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> InpaintOptions:
        """Options from keyword values; LbamError for an unknown name (listing the known ones)."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [key for key in values if key not in names]
        if unknown:
            raise LbamError(f"unknown inpainting option {unknown[0]!r}; options: {', '.join(names)}")
        return cls(**values)


def check_option(field: dataclasses.Field, value: Any) -> None:
    """LbamError unless ``value`` has the field's type and lies in its range or choices."""
    name, kind, meta = field.name, str(field.type), field.metadata
    if kind == "bool" and not isinstance(value, bool):
        raise LbamError(f"{name} must be true or false, got {value!r}")
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise LbamError(f"{name} must be a whole number, got {value!r}")
    if kind == "float" and (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    ):
        raise LbamError(f"{name} must be a number, got {value!r}")
    if kind == "str" and meta["choices"] and value not in meta["choices"]:
        raise LbamError(f"unknown {name} {value!r}; use one of {', '.join(meta['choices'])}")
    low, high = meta["minimum"], meta["maximum"]
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"from {low:g} to {high:g}" if high is not None else f">= {low:g}"
        raise LbamError(f"{name} must be {bounds}, got {value!r}")


def describe_options() -> list[dict[str, Any]]:
    """Every option as plain data: name, type, default, choices, minimum, maximum, help (for the page)."""
    return [
        {
            "name": field.name,
            "type": str(field.type),
            "default": field.default,
            **{key: field.metadata[key] for key in ("choices", "minimum", "maximum", "help")},
        }
        for field in dataclasses.fields(InpaintOptions)
    ]


def add_option_arguments(parser: argparse.ArgumentParser) -> None:
    """One command-line flag per :class:`InpaintOptions` field (``--max-size`` for ``max_size``)."""
    for field in dataclasses.fields(InpaintOptions):
        flag = "--" + field.name.replace("_", "-")
        meta = field.metadata
        if field.type in ("bool", bool):
            parser.add_argument(flag, action="store_true", help=meta["help"])
            continue
        settings = {"help": meta["help"] + " (default: %(default)s)", "default": field.default}
        if meta["choices"]:
            settings["choices"] = meta["choices"]
        if meta["metavar"]:
            settings["metavar"] = meta["metavar"]
        kind = {"int": int, "str": str, "float": float}[str(field.type)]
        parser.add_argument(flag, type=kind, **settings)


def options_from_args(args: argparse.Namespace) -> InpaintOptions:
    """The :class:`InpaintOptions` of parsed command-line arguments."""
    return InpaintOptions(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(InpaintOptions)}
    )


def check_quality(quality: Any) -> int:
    """``quality`` if it is a whole number in :data:`QUALITY_RANGE`; LbamError otherwise."""
    low, high = QUALITY_RANGE
    if isinstance(quality, bool) or not isinstance(quality, int) or not low <= quality <= high:
        raise LbamError(f"quality must be a whole number from {low} to {high}, got {quality!r}")
    return quality

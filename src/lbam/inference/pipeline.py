"""Inpainting photos of any size with a generator that only takes multiples of 128 pixels.

For one region of a photo: the hole map (True = hole, from the user's mask) becomes
``known_mask = 1 - hole``; the image is padded by reflection up to a multiple of
``model.size_multiple``, run through the model, cropped back, and only the hole pixels of the photo
are replaced, rounded into the photo's own integer type. Known pixels are never converted, so they
come back bit-exact.

Strategies (``max_size`` is the longer side one model pass may see):

- ``fit`` (what ``auto``, the default, means): one pass per hole region at the scale the model
  was trained at (``model.train_size``, stored in its weight file; 256 px for lbam-compact and
  the authors' weights). The window is the region's bounding box plus ``context`` times its longer
  side on every side, at least ``train_size`` pixels, clipped to the photo; a window longer than
  ``FIT_ZOOM * train_size`` is downscaled to that, run, and its fill upscaled. Small holes in a
  large photo therefore keep their full resolution, and a large hole is filled as the model saw
  holes of its size in training (docs/benchmarks.md, "Object removal", has the measurements
  behind ``FIT_ZOOM`` and the default ``context``). Small regions close together share one
  window where each keeps that context (:mod:`lbam.inference.windows`).
- ``full``: one pass on the whole photo, whatever its size.
- ``crop``: one pass per hole region: the region's bounding box plus ``crop_margin`` pixels of
  context, at least ``crop_min_size`` pixels, clipped to the photo; only that region's hole pixels
  are pasted back. A window longer than ``max_size`` is downscaled like ``resize``. Memory is
  bounded by the window size, not the photo size.
- ``resize``: downscale the photo so its longer side is ``max_size``, run, upscale the output and
  paste its hole pixels at full resolution.
- ``auto`` (default): ``fit``.

Blends (how a fill meets the photo): ``harmonic`` (default) shifts the model's output in each
window by the harmonic interpolation of its error on the window's known pixels
(:mod:`lbam.imaging.harmonic`), at the scale the model ran, so the fill meets the photo without a
seam and takes its colour from the photo; ``paste`` uses the raw output (lbam 0.1's behaviour).
Either way only hole pixels are written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from lbam.defaults import BLENDS, DEFAULT_MODEL, REFINES
from lbam.errors import LbamError
from lbam.imaging import exemplar
from lbam.imaging.harmonic import harmonize
from lbam.imaging.io import (
    Picture,
    check_pixels,
    picture_from_array,
    picture_from_pil,
    picture_to_array,
    picture_to_pil,
)
from lbam.imaging.masks import as_hole, prepare_hole
from lbam.imaging.pixels import scaled_size, shrink, shrink_hole
from lbam.inference.windows import Box, Pass, WindowPlan, crop_plan, fit_plan, hole_boxes
from lbam.model.card import card_of
from lbam.model.loading import load_model
from lbam.options import InpaintOptions
from lbam.utils.device import resolve_device
from lbam.utils.machine import usable_cpus
from lbam.utils.parallel import ordered_map

# ITU-R BT.601 luma weights: how a grey photo takes the model's RGB output.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# Told (windows done, windows in all) as the work goes; it may raise to stop the work.
Progress = Callable[[int, int], None]

# fit: the longest side a window is run at, in units of the model's training crop.
FIT_ZOOM = 1.0
# The photo PatchMatch copies from reaches at least this many times the hole region's longer side
# beyond it (fit's window reaches ``context``, 1): it continues edges more exactly with more photo
# (lbam.imaging.exemplar.Source). Fit's window plus 0.5, 1 or 2 hole-sizes scored alike on object
# holes; the window alone moved a straight edge 2 to 3 px.
TEXTURE_CONTEXT = 2.0
# Windows filled at once: PatchMatch, most of a window's time, runs outside the GIL.
WINDOW_THREADS = 4


@dataclasses.dataclass
class InpaintReport:
    """What :func:`inpaint_picture` did: the strategy used, the hole's share of the photo, model
    passes, seconds, and the texture stage that ran (:func:`texture_stage`)."""

    strategy: str
    hole_fraction: float
    model_calls: int
    seconds: float
    refine: str = "none"


def get_model(
    model: nn.Module | str | os.PathLike | None, device: str | torch.device | None = "auto"
) -> nn.Module:
    """The generator to run: a module as given (moved if ``device`` is explicit), or loaded from a path/name.

    Modules are switched to eval mode. Loaded models are cached, so calling :func:`inpaint` in a loop
    with a path loads the file once.
    """
    if isinstance(model, nn.Module):
        if device is not None and device != "auto":
            model = model.to(resolve_device(device))
        return model.eval()
    name = DEFAULT_MODEL if model is None else os.fspath(model)
    path = Path(name)
    stamp = path.stat().st_mtime_ns if path.is_file() else 0
    return _load_cached(name, stamp, str(resolve_device(device)))


@functools.lru_cache(maxsize=2)
def _load_cached(name: str, stamp: int, device: str) -> nn.Module:
    return load_model(name, device=device)


def _device_and_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


def to_unit(color: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8/uint16 pixels or floats in [0, 1], C = 1 or 3 -> (H, W, 3) float32 RGB in [0, 1]."""
    if np.issubdtype(color.dtype, np.floating):
        image = color.astype(np.float32)
    else:
        image = color.astype(np.float32) / np.float32(np.iinfo(color.dtype).max)
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def from_unit(output: np.ndarray, dtype: np.dtype, channels: int) -> np.ndarray:
    """(..., 3) float RGB in [0, 1] -> (..., channels) integers of ``dtype``, rounded; grey by BT.601 luma."""
    output = np.nan_to_num(output.astype(np.float32), nan=0.0)
    if channels == 1:
        output = (output @ LUMA_WEIGHTS)[..., None]
    top = np.iinfo(dtype).max
    return np.rint(np.clip(output, 0.0, 1.0) * top).astype(dtype)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad (B, C, H, W) at the bottom and right up to multiples of ``multiple``, by reflection.

    Reflection needs the pad to be smaller than the side, so small images are padded in several
    reflections; a side of one pixel is padded by repetition.
    """
    height, width = x.shape[-2:]
    target_h = -(-height // multiple) * multiple
    target_w = -(-width // multiple) * multiple
    while x.shape[-2] < target_h or x.shape[-1] < target_w:
        h, w = x.shape[-2:]
        pad_h, pad_w = min(target_h - h, h - 1), min(target_w - w, w - 1)
        if (h < target_h and pad_h == 0) or (w < target_w and pad_w == 0):
            return F.pad(x, (0, target_w - w, 0, target_h - h), mode="replicate")
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
    return x


def run_model(model: nn.Module, color: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """One model pass on a region of any size.

    Args:
        model: a generator, ``model(image (B,3,H,W) in [0,1], known_mask (B,1,H,W) 1 = known)``.
        color: (H, W, C) uint8/uint16 pixels or floats in [0, 1], C = 1 or 3.
        hole: (H, W) bool, True = hole.

    Returns:
        (H, W, 3) float32: the raw model output in [0, 1], not composited.
    """
    height, width = hole.shape
    known_mask = (~hole).astype(np.float32)
    image = to_unit(color) * known_mask[..., None]  # hole contents never reach the model
    device, dtype = _device_and_dtype(model)
    image_t = torch.from_numpy(image).permute(2, 0, 1)[None].to(device, dtype)
    known_t = torch.from_numpy(known_mask)[None, None].to(device, dtype)
    multiple = card_of(model).size_multiple
    with torch.inference_mode():
        output = model(pad_to_multiple(image_t, multiple), pad_to_multiple(known_t, multiple))
    return output[0, :, :height, :width].permute(1, 2, 0).float().cpu().numpy()


def predict(
    model: nn.Module,
    color: np.ndarray,
    hole: np.ndarray,
    max_size: int | None,
    options: InpaintOptions,
    source: exemplar.Source | None = None,
    network_lock: contextlib.AbstractContextManager = contextlib.nullcontext(),
    pasted: np.ndarray | None = None,
) -> np.ndarray:
    """The fill (H, W, 3) float32 for a region: the network's fill, the options' blend
    (:func:`blend_fill`), then their texture stage (``refine``, :func:`refine_fill`), whose colour
    layout is the blended fill's: so the texture meets the photo without a rim, too.

    ``color`` is the region's (H, W, C) pixels, ``hole`` (H, W) bool, True = hole. ``max_size``:
    the longest side a network pass sees (None: the region's own size). ``source``: a larger
    region the texture stage copies patches from (None: the region itself). ``network_lock`` is
    held over the network pass: windows filled at once share one pass's memory (their blends,
    bounded by the windows alive at once, run beside it).
    ``pasted`` (H, W) bool: the hole pixels that will be used (None: all); the blend levels only
    the hole regions among them.
    """
    with network_lock:
        output = network_fill(model, color, hole, max_size)
    output = blend_fill(output, color, hole, options.blend, pasted)
    return refine_fill(output, color, hole, texture_stage(model, options), source)


def texture_stage(model: nn.Module, options: InpaintOptions) -> str:
    """The texture stage that runs for ``model``: the options' ``refine``, but "none" for a
    classical fill (the server's Telea, Navier-Stokes, PatchMatch), which is its own fill, and,
    with a one-line note, where pypatchmatch does not load."""
    if card_of(model).architecture == "classical" or options.refine == "none":
        return "none"
    if not exemplar.available():
        _note_no_patchmatch()
        return "none"
    return options.refine


def network_fill(model: nn.Module, color: np.ndarray, hole: np.ndarray, max_size: int | None) -> np.ndarray:
    """The network's fill (H, W, 3) float32, the model run downscaled to ``max_size`` if the region
    is longer. The small hole map keeps every low-resolution pixel that overlaps a hole, so no hole
    is lost; what follows (texture, blend) runs at full resolution, after the upscaling: blended at
    the model's scale and then upscaled, the fill's edge missed the photo by 2 to 6 grey levels."""
    height, width = hole.shape
    scale = 1.0 if max_size is None else max_size / max(height, width)
    if scale >= 1.0:
        return run_model(model, color, hole)
    small = scaled_size(height, width, scale)
    output = run_model(model, shrink(color, small), shrink_hole(hole, small))
    return cv2.resize(output, (width, height), interpolation=cv2.INTER_CUBIC)


def refine_fill(
    output: np.ndarray,
    color: np.ndarray,
    hole: np.ndarray,
    refine: str,
    source: exemplar.Source | None = None,
) -> np.ndarray:
    """The texture stage after the network's ``output``: "none" keeps it; "texture" fills the hole
    with patches of the known pixels of ``source`` (or of the window), their colour layout the
    network's (:func:`lbam.imaging.exemplar.texture_fill`)."""
    if refine not in REFINES:
        raise LbamError(f"unknown refine {refine!r}; use one of {', '.join(REFINES)}")
    if refine == "none":
        return output
    if source is None:
        source = exemplar.Source(_uint8_rgb(color), hole, 0, 0)
    return exemplar.texture_fill(hole, output, source)


@functools.cache
def _note_no_patchmatch() -> None:
    print(
        "lbam: note: the texture stage needs pypatchmatch (Linux x86-64); using the network's fill",
        file=sys.stderr,
    )


def _uint8_rgb(color: np.ndarray) -> np.ndarray:
    return from_unit(to_unit(color), np.dtype(np.uint8), 3)


def blend_fill(
    output: np.ndarray, color: np.ndarray, hole: np.ndarray, blend: str, pasted: np.ndarray | None = None
) -> np.ndarray:
    """How the fill meets the photo: ``output`` (H, W, 3) float as is ("paste"), or shifted by the
    harmonic spread of its error on the known pixels ("harmonic", :func:`lbam.imaging.harmonic.harmonize`).

    ``color`` is the region's (H, W, C) pixels, ``hole`` (H, W) bool, True = hole; ``pasted``
    (H, W) bool, the hole pixels that will be used (None: all), the regions to level.
    """
    if blend == "paste":
        return output
    if blend != "harmonic":
        raise LbamError(f"unknown blend {blend!r}; use one of {', '.join(BLENDS)}")
    return harmonize(np.clip(output, 0.0, 1.0), to_unit(color), ~hole, level_only=pasted)


def paste_holes(target: np.ndarray, hole: np.ndarray, output: np.ndarray) -> None:
    """Write ``output`` (H, W, 3) float into ``target`` (H, W, C) integers, at hole pixels only, in place."""
    target[hole] = from_unit(output[hole], target.dtype, target.shape[-1])


def inpaint_full(
    model: nn.Module, color: np.ndarray, hole: np.ndarray, options: InpaintOptions
) -> np.ndarray:
    """One pass on the whole photo; returns new (H, W, C) pixels."""
    result = color.copy()
    paste_holes(result, hole, predict(model, color, hole, None, options))
    return result


def inpaint_resized(
    model: nn.Module, color: np.ndarray, hole: np.ndarray, options: InpaintOptions
) -> np.ndarray:
    """One pass on the photo downscaled to ``options.max_size``; hole pixels filled from the upscaled output."""
    result = color.copy()
    paste_holes(result, hole, predict(model, color, hole, options.max_size, options))
    return result


def texture_source(
    color: np.ndarray, hole: np.ndarray, step: Pass, model: nn.Module, options: InpaintOptions
) -> exemplar.Source | None:
    """The region the texture stage copies from for the pass ``step``: its window and, where it
    reaches less far, ``TEXTURE_CONTEXT`` times the longer side of its hole regions of photo each
    side of its box (None when no texture stage runs). ``hole`` (H, W) bool, True = hole, is the
    whole photo's. The source's ``fill`` is the hole pixels inside the box, the ones pasted, where
    the other holes in the region have more pixels (a letter of a caption among a dozen); fewer
    are filled along: one of the 98 object-removal fills on the 49 validation photos came out 36.6
    dB filled alone and 42.3 along (PatchMatch copied a pale patch into its hole for 6 seeds of 6
    alone, 3 of 6 along)."""
    if texture_stage(model, options) == "none":
        return None
    window, box = step.window, step.box
    margin = math.ceil(TEXTURE_CONTEXT * step.span)
    top, bottom = max(min(window[0], box[0] - margin), 0), min(max(window[1], box[1] + margin), hole.shape[0])
    left, right = max(min(window[2], box[2] - margin), 0), min(max(window[3], box[3] + margin), hole.shape[1])
    region = (slice(top, bottom), slice(left, right))
    wanted = holes_in_box(hole, box, (top, bottom, left, right))
    if np.count_nonzero(hole[region]) <= 2 * np.count_nonzero(wanted):
        wanted = None  # the other holes cost PatchMatch at most as much again: filled along
    return exemplar.Source(_uint8_rgb(color[region]), hole[region], window[0] - top, window[2] - left, wanted)


def holes_in_box(hole: np.ndarray, box: Box, frame: Box) -> np.ndarray:
    """The hole pixels of ``hole`` (H, W) bool (True = hole) inside ``box``, as an (h, w) bool map
    of ``frame``, a part of the photo holding ``box``: what a pass pastes."""
    top, bottom, left, right = frame
    inside = np.zeros((bottom - top, right - left), dtype=bool)
    inside[box[0] - top : box[1] - top, box[2] - left : box[3] - left] = hole[
        box[0] : box[1], box[2] : box[3]
    ]
    return inside


def inpaint_regions(
    model: nn.Module,
    color: np.ndarray,
    hole: np.ndarray,
    plan: WindowPlan,
    options: InpaintOptions,
    progress: Progress | None = None,
) -> tuple[np.ndarray, int]:
    """The passes ``plan`` gives the hole's regions (one each, or one for several small ones);
    returns new pixels and the number of passes.

    The windows are independent (each reads the photo, not the others' fills), so up to
    ``WINDOW_THREADS`` of them are filled at once (:func:`window_threads`); their fills are pasted
    in order, so the result is the same for any number of threads. ``progress(done, total)`` is
    called before each window (before its fill is awaited, with threads) and after the last; an
    exception it raises (e.g. :class:`lbam.errors.Cancelled`) stops the work there: windows not
    yet started never start.
    """
    result = color.copy()
    steps = plan(hole_boxes(hole))
    network_lock = threading.Lock()

    def fill(step: Pass) -> tuple[Box, np.ndarray, np.ndarray]:
        box, (top, bottom, left, right) = step.box, step.window
        window_hole = hole[top:bottom, left:right]
        source = texture_source(color, hole, step, model, options)
        own = holes_in_box(hole, box, step.window)  # holes of other boxes get their own windows
        window_color = color[top:bottom, left:right]
        output = predict(model, window_color, window_hole, step.limit, options, source, network_lock, own)
        return step.window, own, output

    workers = window_threads([step.window for step in steps], hole.size)
    with contextlib.closing(ordered_map(fill, steps, workers)) as fills:
        for index in range(len(steps)):
            if progress is not None:
                progress(index, len(steps))
            (top, bottom, left, right), own, output = next(fills)
            paste_holes(result[top:bottom, left:right], own, output)
    if progress is not None:
        progress(len(steps), len(steps))
    return result, len(steps)


def window_threads(windows: list[Box], photo_pixels: int) -> int:
    """How many windows to fill at once: one per usable CPU, at most ``WINDOW_THREADS``, and fewer
    where the windows alive at once would add up to more than the photo: each thread's window and
    the finished ones waiting to be pasted in order (``ordered_map`` starts up to two per thread
    ahead), so the largest ``2 * threads + 1``. The memory estimate (:mod:`lbam.inference.budget`)
    allows the texture stage's copies of one photo's worth of windows and one network pass at a
    time (``predict``'s lock), so it holds either way; hundreds of small windows (the letters of a
    caption) still run in parallel."""
    areas = sorted(((bottom - top) * (right - left) for top, bottom, left, right in windows), reverse=True)
    threads = max(1, min(len(windows), WINDOW_THREADS, usable_cpus()))
    while threads > 1 and sum(areas[: 2 * threads + 1]) > photo_pixels:
        threads -= 1
    return threads


def _picture_of(image: object, max_pixels: int) -> Picture:
    """The decoded picture of ``lbam.inpaint``'s image argument, checked as files are."""
    if isinstance(image, Image.Image):
        check_pixels(image.size, max_pixels, "image")
        if getattr(image, "n_frames", 1) > 1:
            raise LbamError(
                f"image has {image.n_frames} frames (animated or multi-page); give a single image"
            )
        return picture_from_pil(image)
    if isinstance(image, np.ndarray):
        if image.ndim >= 2:
            check_pixels((image.shape[1], image.shape[0]), max_pixels, "image")
        return picture_from_array(image)
    raise LbamError(
        f"image must be a PIL image or a numpy array, got {type(image).__name__} "
        "(for files, use PIL.Image.open or the lbam inpaint command)"
    )


def choose_strategy(strategy: str) -> str:
    """The strategy to use: resolves "auto"."""
    return "fit" if strategy == "auto" else strategy


def inpaint_picture(
    picture: Picture,
    hole: np.ndarray,
    model: nn.Module,
    options: InpaintOptions | None = None,
    progress: Progress | None = None,
) -> tuple[Picture, InpaintReport]:
    """Inpaint a decoded photo whose hole map (H, W) bool (True = hole) is already prepared.

    ``progress(done, total)`` hears of every model pass (one pass for full and resize) and may raise
    to stop the work. Returns the new picture (same dtype, channels and alpha; known pixels
    bit-exact) and a report.
    """
    options = options or InpaintOptions()
    if hole.shape != (picture.height, picture.width):
        raise LbamError(f"hole map is {hole.shape} but the picture is {(picture.height, picture.width)}")
    start = time.perf_counter()
    hole_fraction = float(hole.mean())
    if not hole.any():
        return picture.with_color(picture.color.copy()), InpaintReport("none", 0.0, 0, 0.0)
    strategy = choose_strategy(options.strategy)
    calls = 1
    if strategy in ("full", "resize"):
        if progress is not None:
            progress(0, 1)
        if strategy == "full":
            color = inpaint_full(model, picture.color, hole, options)
        else:
            color = inpaint_resized(model, picture.color, hole, options)
        if progress is not None:
            progress(1, 1)
    else:
        if strategy == "fit":
            plan = fit_plan(hole.shape, options.context, card_of(model).train_size, FIT_ZOOM)
        else:
            multiple = card_of(model).size_multiple
            plan = crop_plan(
                hole.shape, options.crop_margin, options.crop_min_size, options.max_size, multiple
            )
        color, calls = inpaint_regions(model, picture.color, hole, plan, options, progress)
    seconds = time.perf_counter() - start
    report = InpaintReport(strategy, hole_fraction, calls, seconds, texture_stage(model, options))
    return picture.with_color(color), report


def inpaint(
    image: Image.Image | np.ndarray,
    mask: Image.Image | np.ndarray | str | os.PathLike,
    model: nn.Module | str | os.PathLike | None = None,
    *,
    device: str | torch.device | None = "auto",
    **options: Any,
) -> Image.Image | np.ndarray:
    """Fill the holes of a photo.

    Args:
        image: a PIL image (any mode; palette images come back RGB/RGBA, "I" comes back "I;16") or an
            (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA uint8/uint16 array.
        mask: PIL image, numpy array or mask file; white / non-zero / True = hole (thresholded at
            half range; see :mod:`lbam.imaging.masks` for every mode). Same size as the image
            unless ``resize_mask``.
        model: a generator module, a weights file, or a model name; None = "lbam-compact".
        device: "auto" (CUDA, MPS, CPU), "cpu", "cuda", "mps"; a module given with "auto" stays put.
        **options: any field of :class:`lbam.options.InpaintOptions`, the same options as the
            ``lbam inpaint`` flags: ``invert_mask``, ``dilate``, ``resize_mask``, ``strategy``,
            ``max_size``, ``crop_margin``, ``crop_min_size``.

    Returns:
        The same type, size, mode/dtype as ``image``: hole pixels filled, every other pixel and the
        alpha channel unchanged. A mask without a hole gives an unchanged copy.

    Raises:
        LbamError: an image or mask that is not a PIL image or array (or an animated one, or one
            over ``max_pixels``), a mask of another size, a mask that is all hole, unsupported pixel
            types, an unknown option or a bad option value, a model that cannot be loaded.
    """
    settings = InpaintOptions.from_mapping(options)
    picture = _picture_of(image, settings.max_pixels)
    size = (picture.height, picture.width)
    hole = prepare_hole(
        as_hole(mask, settings.max_pixels),
        size,
        settings.invert_mask,
        settings.dilate,
        settings.resize_mask,
        name="mask",
    )
    if not hole.any():
        return image.copy()
    result, _ = inpaint_picture(picture, hole, get_model(model, device), settings)
    if isinstance(image, Image.Image):
        return picture_to_pil(result)
    return picture_to_array(result, image.ndim)

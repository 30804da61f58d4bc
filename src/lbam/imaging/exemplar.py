"""Exemplar synthesis: fill a hole with patches of the photo itself (PatchMatch, Barnes et al. 2009),
its colour layout taken from the network's fill.

The network continues structure at low frequency but has no texture of its own; PatchMatch copies
texture (wood grain, foliage, brick) from the known pixels around the hole but may bring a wrong
colour or object into it. :func:`texture_fill` keeps both strengths in three steps:

1. PatchMatch fills the hole (:func:`patchmatch_fill`, ``pypatchmatch``, a prebuilt library, MIT),
   copying from a region larger than the network's window (:class:`Source`).
2. The network's fill replaces that fill's low frequencies (:func:`low_pass_inside`, a Gaussian
   low-pass over the hole's pixels, sigma 3 % of the window's longer side).
3. Detail stronger than the known ring's is damped (:func:`match_detail`): copied edges of other
   objects, a busier texture than the surroundings; each hole keeps the network fill's mean
   colour (:func:`keep_level`).

On held-out object holes this beats PatchMatch alone on PSNR and ST-LPIPS at once
(docs/benchmarks.md, "Object removal"). Tried and left out: a finer split (2 %, 1.2 %) gained
PSNR but tinted copied objects more; PatchMatch's own guide map (``inpaint_regularity``, the
network's colour added to the patch distance) lost ST-LPIPS against PatchMatch alone and bent
straight edges; a smaller share of detail everywhere (the fill mixed with the network's) gained
PSNR but lost ST-LPIPS faster than step 3 does.

Patches come only from known pixels; the result is deterministic for a seed.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from typing import NamedTuple

import cv2
import numpy as np

from lbam.errors import LbamError
from lbam.imaging.harmonic import hole_regions, remove_mean
from lbam.imaging.pixels import scaled_size, shrink, shrink_hole

# 3 and 7 scored worse on object-sized holes (7: ST-LPIPS 0.0958 against 0.0923 on Kodak object
# removal, without match_detail); a wider source (Source) straightens edges more than a larger patch
PATCH_SIZE = 5
MAX_SIDE = 512  # larger windows run downscaled: the same score at a fraction of the time
STRUCTURE_BLUR = 0.03  # sigma of the network's share (its colour layout), of the window's longer side
DETAIL_SPLIT = 0.02  # sigma (of the window's longer side) below which a fill's variation is "detail"
DETAIL_REACH = 0.015  # sigma over which the fill's detail strength is measured
RING = 0.05  # the band of known pixels (of the window's longer side) whose detail strength is expected
RING_REACH = 0.06  # sigma over which that strength is carried into the hole
# The detail energy allowed, as a share of the ring's: EDGE_ALLOWANCE at the hole's edge, falling to
# DETAIL_ALLOWANCE deep inside over ALLOWANCE_DEPTH px. Patches at the edge overlap the known pixels
# they were matched to, so their detail is the photo's own; deep inside nothing ties a patch to the
# truth. One share everywhere had to choose: 0.5 cost thin holes their texture (256 px Kodak:
# ST-LPIPS 0.1132 against PatchMatch's 0.1100), 1.0 cost object holes 0.19 dB. A depth counted at
# PatchMatch's scale (wider in windows over MAX_SIDE) cost object holes 0.02 dB and gained nothing.
DETAIL_ALLOWANCE = 0.4
EDGE_ALLOWANCE = 3.0
ALLOWANCE_DEPTH = 6.0
EDGE_FADE = 2.0  # px: how far into the hole the fill fades from the structure's colour to texture


class _SeedGate:
    """Lets PatchMatch fills run in parallel threads with deterministic results.

    The library keeps the seed in one global, read as a fill starts. Each fill then draws from its
    own random engine (in pypatchmatch 2.2; two threads gave bit-identical fills to one). So fills
    with the same seed may run at once, and a fill with another seed waits until none is running.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._seed: int | None = None
        self._running = 0

    @contextlib.contextmanager
    def seeded(self, seed: int) -> Iterator[None]:
        from patchmatch import patch_match

        with self._changed:
            self._changed.wait_for(lambda: self._running == 0 or self._seed == seed)
            if self._seed != seed:
                patch_match.set_random_seed(seed)
                self._seed = seed
            self._running += 1
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()


_SEED_GATE = _SeedGate()


@functools.cache  # asked for every window: a failed import is not retried each time
def available() -> bool:
    """True when pypatchmatch and its native library load on this machine."""
    try:
        from patchmatch import patch_match
    except ImportError:
        return False
    return bool(patch_match.patchmatch_available)


class Source(NamedTuple):
    """A larger region around a window, whose known pixels PatchMatch copies from: ``color``
    (H', W', 3) uint8 RGB, ``hole`` (H', W') bool (True = hole, every hole in it), where the
    window's top left corner lies in it, and ``fill`` (H', W') bool, the hole pixels whose
    texture is wanted (None: all of ``hole``).

    PatchMatch's time grows with the hole pixels it fills: the region around a letter of a caption
    holds a dozen other letters, which their own windows fill. The other hole pixels are neither
    filled nor copied from; the texture stage keeps the network's fill there (``texture_fill``).
    """

    color: np.ndarray
    hole: np.ndarray
    top: int
    left: int
    fill: np.ndarray | None = None


def texture_fill(hole: np.ndarray, structure: np.ndarray, source: Source, seed: int = 0) -> np.ndarray:
    """PatchMatch's fill of ``hole`` with its low frequencies replaced by those of ``structure``
    and its detail damped where stronger than around the hole (module doc).

    Args:
        hole: (H, W) bool, True = hole, of the window to fill.
        structure: (H, W, 3) float in [0, 1], a fill whose colour layout to keep (the network's).
        source: the window's photo and the region around it to copy patches from (the window
            itself at (0, 0) when nothing more). PatchMatch continues an edge more exactly with
            more context: a straight edge through a hole 130 px high came back 0.4 to 1.6 px off
            with 180 px of photo each side, 3.2 to 3.8 px off with 130 px.
        seed: PatchMatch's seed; equal inputs and seed give equal results.

    Returns:
        (H, W, 3) float32 in [0, 1]; at known pixels it equals the photo.
    """
    rows = slice(source.top, source.top + hole.shape[0])
    cols = slice(source.left, source.left + hole.shape[1])
    wanted = source.hole if source.fill is None else source.fill
    filled = patchmatch_fill(source.color, wanted, seed, part=(rows, cols), unknown=source.hole)
    structure = structure.astype(np.float32)
    filled = np.where((hole & ~wanted[rows, cols])[..., None], structure, filled)
    side = max(hole.shape)
    textured = filled + low_pass_inside(structure - filled, hole, STRUCTURE_BLUR * side)
    depth = hole_depth(hole)  # the damping and the fade both go by it
    textured = match_detail(textured, hole, depth)
    # the last pixels before the photo fade to ``structure``, which meets it without a step
    edge = np.exp(-depth / EDGE_FADE)
    textured += edge[..., None] * (structure - textured)
    keep_level(textured, structure, hole, 1.0 - edge)
    return np.where(hole[..., None], np.clip(textured, 0.0, 1.0), filled)


def keep_level(textured: np.ndarray, structure: np.ndarray, hole: np.ndarray, profile: np.ndarray) -> None:
    """Give each hole region of ``textured`` (H, W, 3) float32 the mean colour of ``structure``'s
    there, in place, shifting by ``profile`` (H, W) (0 at the hole's edge): the texture adds detail,
    not a cast. The copied patches' detail rarely averages to zero over a small hole (12 px discs
    in grainy flat gradients came out 0.02 grey levels further from the truth than the structure)."""
    for box, region in hole_regions(hole):
        remove_mean(
            textured[box], region, textured[box][region] - structure[box][region], profile[box][region]
        )


def match_detail(fill: np.ndarray, hole: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
    """``fill`` (H, W, 3) float32 with its detail inside ``hole`` (H, W) bool damped wherever it is
    stronger than the detail of the known pixels around the hole.

    PatchMatch sometimes copies an object's edges or a busier texture into a calm region (a branch
    into sky, a window frame into a wall); the eye reads that as a ghost, and every such pixel costs
    PSNR. The detail (the fill less its low-pass over the hole) is scaled down where its local energy
    exceeds a share of the energy the known ring carries at that place (:func:`detail_allowance`);
    it is never scaled up. Known pixels are returned unchanged. ``depth``: :func:`hole_depth` of
    ``hole``, if the caller has it.
    """
    side = max(hole.shape)
    known = ~hole
    split = DETAIL_SPLIT * side
    detail = fill - low_pass_inside(fill, hole, split)
    known_detail = fill - low_pass_inside(fill, known, split)
    energy = low_pass_inside(np.square(detail).sum(-1, keepdims=True), hole, DETAIL_REACH * side)
    distance = cv2.distanceTransform(known.astype(np.uint8), cv2.DIST_L2, 3)
    ring = known & (distance < RING * side)
    expected = low_pass_inside(np.square(known_detail).sum(-1, keepdims=True), ring, RING_REACH * side)
    allowance = detail_allowance(hole_depth(hole) if depth is None else depth)
    gain = np.sqrt(allowance * expected / np.maximum(energy, 1e-8)).clip(0.0, 1.0)
    damped = fill - (1.0 - gain) * detail
    return np.where(hole[..., None], damped, fill)


def hole_depth(hole: np.ndarray) -> np.ndarray:
    """(H, W) float32: each pixel's distance in px to the nearest known pixel (0 outside ``hole``)."""
    return cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3)


def detail_allowance(depth: np.ndarray) -> np.ndarray:
    """(H, W, 1) float32: the share of the ring's detail energy allowed at each hole pixel, from
    its ``depth`` (:func:`hole_depth`): ``EDGE_ALLOWANCE`` at the edge falling to ``DETAIL_ALLOWANCE``."""
    falling = np.exp(-depth[..., None] / ALLOWANCE_DEPTH)
    return DETAIL_ALLOWANCE + (EDGE_ALLOWANCE - DETAIL_ALLOWANCE) * falling


def low_pass_inside(field: np.ndarray, inside: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass (``sigma`` px) of ``field`` (H, W, C) float32 over the pixels where
    ``inside`` (H, W) bool is True only (normalised convolution), computed at most ``MAX_SIDE`` px
    a side: a low-pass loses nothing at that scale and costs milliseconds on any window."""
    height, width = inside.shape
    scale = min(1.0, MAX_SIDE / max(height, width))
    size = scaled_size(height, width, scale)
    weight = inside.astype(np.float32)
    weighted = field * weight[..., None]
    if scale < 1:
        weighted, weight = shrink(weighted, size), shrink(weight, size)
    spread = max(0.5, sigma * scale)
    total = cv2.GaussianBlur(weighted, (0, 0), spread).reshape(*weight.shape, -1)  # keeps one channel
    average = total / np.maximum(cv2.GaussianBlur(weight, (0, 0), spread), 1e-6)[..., None]
    if scale < 1:
        average = cv2.resize(average, (width, height), interpolation=cv2.INTER_LINEAR)
    return average.reshape(height, width, -1)


def patchmatch_fill(
    color: np.ndarray,
    hole: np.ndarray,
    seed: int = 0,
    max_side: int = MAX_SIDE,
    part: tuple[slice, slice] | None = None,
    unknown: np.ndarray | None = None,
) -> np.ndarray:
    """Fill ``hole`` from the known pixels of ``color`` by PatchMatch.

    Args:
        color: (H, W, 3) uint8 RGB.
        hole: (H, W) bool, True = hole.
        seed: the search's seed; equal inputs and seed give equal results.
        max_side: windows longer than this are filled downscaled, and the fill upscaled.
        part: (rows, cols) of the region whose fill to return (None: all of it).
        unknown: (H, W) bool, True where ``color`` is not to be copied from (other holes; None:
            ``hole``). Those pixels outside ``hole`` keep ``color``.

    Returns:
        (H, W, 3) float32 in [0, 1], or the ``part``'s; outside ``hole`` it equals ``color``.

    Raises:
        LbamError: pypatchmatch is not installed, or its library does not load here.
    """
    if not available():
        raise LbamError("the texture stage needs pypatchmatch (pip install pypatchmatch) on Linux x86-64")
    from patchmatch import patch_match

    height, width = hole.shape
    scale = min(1.0, max_side / max(height, width))
    size = scaled_size(height, width, scale)
    small = shrink(color, size) if scale < 1 else color
    small_hole = shrink_hole(hole, size) if scale < 1 else hole
    mask = small_hole.astype(np.uint8) * 255
    others = None
    if unknown is not None and (unknown & ~hole).any():
        small_unknown = shrink_hole(unknown, size) if scale < 1 else unknown
        others = (small_unknown & ~small_hole).astype(np.uint8) * 255
    with _SEED_GATE.seeded(seed):
        filled = patch_match.inpaint(
            np.ascontiguousarray(small), mask, global_mask=others, patch_size=PATCH_SIZE
        )
    filled = filled.astype(np.float32) / 255.0
    if scale < 1:
        filled = cv2.resize(filled, (width, height), interpolation=cv2.INTER_CUBIC)
    part = part or (slice(None), slice(None))
    known = color[part].astype(np.float32) / 255.0
    return np.where(hole[part][..., None], np.clip(filled[part], 0.0, 1.0), known)

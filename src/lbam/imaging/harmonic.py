"""Harmonic (membrane) and biharmonic (thin-plate) interpolation into holes, and the seam
correction built on them.

A generator's fill rarely meets the photo exactly: its output on the known pixels around a hole
is a slightly blurred, slightly off-colour copy of them, and the fill carries the same error.
:func:`harmonize` measures that error on the known pixels, spreads it into the hole as the
smoothest field that agrees with it on the hole's border (the solution of Laplace's equation),
and adds it to the fill. The fill then meets the photo without a seam, keeps its own detail
(a harmonic field has none to add), and takes its colour from the photo rather than from the
model. This is Poisson blending (Pérez et al., 2003) with the fill's gradients as the guide, as
Iizuka et al. (2017) used it after their completion network.

The solver is a cascade from coarse to fine: the hole is solved exactly at 32 px or below, and
each finer level starts from the coarser solution, upsampled, and relaxes it with red-black
Gauss-Seidel sweeps. Work and memory grow linearly with the pixels.

Masks follow the package convention: ``known_mask`` (H, W) bool, True = known pixel.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import scipy.sparse as sparse
import scipy.sparse.linalg as sparse_linalg

from lbam.imaging.pixels import scaled_size, shrink

# Below this side the hole is solved exactly (at most 1,024 unknowns: a few milliseconds).
DIRECT_SIDE = 32
# Red-black Gauss-Seidel sweeps on each finer level: enough to remove what upsampling the coarser
# solution gets wrong (a few pixels' worth of high frequencies) at every scale.
SWEEPS = 24
# Sweeps on the finest level. The cascade is approximate: tests/test_harmonic.py measures it
# against the exact solve (a linear ramp is continued within 1.2 % of its range; random boundary
# values within 1.3 % on average).
FINAL_SWEEPS = 48
# How fast the levelling correction rises from a hole's edge: over a fifth of the hole's depth
# (its largest distance to a known pixel), at least 2 px.
LEVEL_RAMP_FRACTION = 0.2
LEVEL_RAMP_PX = 2.0
# A region whose one-pixel border has fewer pixels than this may take its level from up to
# LEVEL_RINGS rings (_ring_reference): the photo's grain on a 12 px disc's border (40 px) moved its
# mean colour by 0.2-0.3 grey levels. On real skies the nearest ring predicts the hole best, so the
# farther rings count only as far as the grain explains how they differ from it (RING_AGREEMENT;
# always three rings: 0.411 grey levels against 0.355 on flat Kodak crops, docs/experiments.md).
LEVEL_BORDER_PIXELS = 120
LEVEL_RINGS = 3
RING_AGREEMENT = 8.0
# A harmonic interpolation has no maximum inside the hole, so it levels a letter across a
# highlight (a fender's rim, a cheek) darker than the photo: 7.5 grey levels off on average over a
# caption's 480 letters, where the biharmonic interpolation, which continues the border's slopes,
# is 3.3 off; on flat grainy regions the biharmonic one carries the grain's slopes instead (1.3
# against 0.14). So a region up to LEVEL_CURVED_PIXELS takes the biharmonic level by how much
# better it predicts the known ring of LEVEL_CHECK_RING px just outside the region than the
# harmonic one does, beyond the grain there (LEVEL_CURVE_GRAIN times its variance counts as a tie);
# docs/experiments.md has the measurements. Larger regions (objects) keep the harmonic level.
LEVEL_CURVED_PIXELS = 8192
LEVEL_CHECK_RING = 2
LEVEL_CURVE_GRAIN = 16.0
# Second differences across and down (Immerkær 1996): zero on any plane or quadratic, so its
# response is grain; 36 is the sum of its squared weights.
GRAIN_KERNEL = np.outer([1.0, -2.0, 1.0], [1.0, -2.0, 1.0]).astype(np.float32)
# Windows longer than this solve the blend's smooth correction downscaled (harmonize).
SOLVE_MAX_SIDE = 1024


def harmonic_fill(values: np.ndarray, known_mask: np.ndarray) -> np.ndarray:
    """Replace the unknown pixels of ``values`` by the harmonic interpolation of the known ones.

    Args:
        values: (H, W, C) float; only the known pixels are read.
        known_mask: (H, W) bool, True = known. The photo's edge is a mirror (no flux through it),
            so a hole touching the edge takes its values from the known pixels around it only.

    Returns:
        (H, W, C) float64: ``values`` at known pixels; at unknown pixels, each value is the mean
        of its four neighbours (three or two at the edge). All zeros if nothing is known.
    """
    values = np.asarray(values, dtype=np.float64)
    known_mask = np.asarray(known_mask, dtype=bool)
    if values.ndim != 3 or values.shape[:2] != known_mask.shape:
        raise ValueError(f"values {values.shape} and known_mask {known_mask.shape} do not match")
    if not known_mask.any():
        return np.zeros_like(values)
    if known_mask.all():
        return values.copy()
    # Only the hole's bounding box and a ring of one pixel take part: the ring is known (or the
    # photo's edge), so the answer is the same and the work scales with the hole, not the photo.
    rows, cols = np.nonzero(~known_mask)
    top, left = max(rows.min() - 1, 0), max(cols.min() - 1, 0)
    box = np.s_[top : rows.max() + 2, left : cols.max() + 2]
    result = values.copy()
    unknown = ~known_mask[box]
    result[box][unknown] = _cascade(values[box], known_mask[box], FINAL_SWEEPS)[unknown]
    return result


def biharmonic_fill(values: np.ndarray, known_mask: np.ndarray) -> np.ndarray:
    """Replace the unknown pixels of ``values`` by the biharmonic interpolation of the known ones.

    The biharmonic interpolation (the discrete Laplacian of the discrete Laplacian is 0 at every
    unknown pixel) continues the known pixels' slopes as well as their values: it follows a
    highlight or a shadow across a narrow hole and continues any cubic exactly, where the harmonic
    one (:func:`harmonic_fill`) can have no maximum inside. It also continues the photo's grain
    as slopes, so it suits narrow holes in smooth regions. Solved exactly (sparse LU over the
    whole array): meant for crops of a few thousand pixels.

    Args:
        values: (H, W, C) float; only the known pixels are read.
        known_mask: (H, W) bool, True = known. The array's edge is a mirror, as in
            :func:`harmonic_fill`.

    Returns:
        (H, W, C) float64: ``values`` at known pixels, the interpolation at unknown ones. All zeros
        if nothing is known.
    """
    values = np.asarray(values, dtype=np.float64)
    known_mask = np.asarray(known_mask, dtype=bool)
    if not known_mask.any():
        return np.zeros_like(values)
    result = values.copy()
    if known_mask.all():
        return result
    laplacian = _mirror_laplacian(*known_mask.shape)
    squared = (laplacian @ laplacian).tocsr()  # symmetric, so its rows at the unknowns are the equations
    unknown = np.flatnonzero(~known_mask)
    known = np.flatnonzero(known_mask)
    rows = squared[unknown]
    flat = values.reshape(-1, values.shape[-1])
    # Positive definite whenever a pixel is known: the squared Laplacian's null space is the constants.
    system = sparse_linalg.splu(rows[:, unknown].tocsc(), permc_spec="MMD_ATA")  # the fastest order here
    solution = system.solve(-(rows[:, known] @ flat[known]))
    result.reshape(-1, values.shape[-1])[unknown] = solution
    return result


def _mirror_laplacian(height: int, width: int) -> sparse.csr_matrix:
    """The 5-point Laplacian of an (height, width) grid as a sparse matrix over its pixels in row
    order; a neighbour beyond the edge is the pixel itself (a mirror), so it adds nothing."""
    index = np.arange(height * width).reshape(height, width)
    pairs = [
        (index[1:, :], index[:-1, :]),
        (index[:-1, :], index[1:, :]),
        (index[:, 1:], index[:, :-1]),
        (index[:, :-1], index[:, 1:]),
    ]
    rows = np.concatenate([a.ravel() for a, _ in pairs])
    cols = np.concatenate([b.ravel() for _, b in pairs])
    degree = np.bincount(rows, minlength=height * width).astype(np.float64)
    return sparse.csr_matrix(
        (
            np.concatenate([np.ones(len(rows)), -degree]),
            (
                np.concatenate([rows, np.arange(height * width)]),
                np.concatenate([cols, np.arange(height * width)]),
            ),
        ),
        shape=(height * width, height * width),
    )


def harmonize(
    output: np.ndarray,
    image: np.ndarray,
    known_mask: np.ndarray,
    level: bool = True,
    max_side: int | None = SOLVE_MAX_SIDE,
    level_only: np.ndarray | None = None,
) -> np.ndarray:
    """A fill corrected to meet the photo: ``output`` plus the harmonic spread of its error.

    Args:
        output: (H, W, C) float, the generator's raw output for a window, values in [0, 1].
        image: (H, W, C) float in [0, 1]: the photo; only its known pixels are read.
        known_mask: (H, W) bool, True = known.
        level: also take away each hole region's mean departure from the photo's harmonic
            interpolation (:func:`_level`): no colour cast on flat regions.
        max_side: windows longer than this solve the (smooth) correction downscaled to it and
            upscale the correction: a 12 Mpx window would cost seconds at full resolution. None:
            always at full resolution.
        level_only: (H, W) bool: level only the hole regions with a pixel in it, the ones the
            caller keeps (a window's own holes among its neighbours'); None: every region.

    Returns:
        (H, W, C) float32. At known pixels it equals ``image``; in the holes it is ``output``
        shifted by the harmonic interpolation of ``image - output`` (and levelled).
    """
    # Only the holes' bounding box and a ring around it take part: outside it, every pixel is known
    # and the result is the photo.
    result = np.array(image, dtype=np.float32)
    rows, cols = np.nonzero(~known_mask)
    if rows.size == 0:
        return result
    margin = LEVEL_RINGS  # _level reads rings up to this many pixels out
    box = np.s_[
        max(rows.min() - margin, 0) : rows.max() + margin + 1,
        max(cols.min() - margin, 0) : cols.max() + margin + 1,
    ]
    output, image, known_mask = output[box], image[box], known_mask[box]
    error = np.where(known_mask[..., None], image - output, 0.0)
    fill = output + smooth_fill(error, known_mask, max_side)
    if level:
        fill = _level(fill, image, known_mask, max_side, None if level_only is None else level_only[box])
    result[box] = fill
    return result


def smooth_fill(values: np.ndarray, known_mask: np.ndarray, max_side: int | None) -> np.ndarray:
    """:func:`harmonic_fill`, solved downscaled to ``max_side`` when the window is longer: the
    harmonic interpolation is smooth, so its upscaled values differ little from the full solve."""
    height, width = known_mask.shape
    if max_side is None or max(height, width) <= max_side:
        return harmonic_fill(values, known_mask)
    scale = max_side / max(height, width)
    size = scaled_size(height, width, scale)
    weight = shrink(known_mask.astype(np.float32), size)
    small = shrink(np.where(known_mask[..., None], values, 0.0).astype(np.float32), size)
    small = small / np.maximum(weight, 1e-6)[..., None]  # the mean of the known pixels under each
    filled = harmonic_fill(small, weight > 0.999)
    upscaled = cv2.resize(filled.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    return np.where(known_mask[..., None], values, upscaled.reshape(height, width, -1))


def _level(
    fill: np.ndarray, image: np.ndarray, known_mask: np.ndarray, max_side: int | None, only: np.ndarray | None
) -> np.ndarray:
    """Take away the mean of the fill's departure from the photo's own harmonic interpolation, per
    hole region: a cast (the fill of a flat sky a few levels too dark or too teal) is such a mean;
    an edge or a texture the fill continues is not, and stays.

    The correction is the mean times a profile that is 0 on the region's edge and rises to 1 within
    a fifth of its depth, scaled so the region's mean departure becomes 0: the fill still meets the
    photo without a step. A small region's interpolation is the mean of those from its nearest
    rings (:func:`_ring_reference`), moved towards the biharmonic one where the photo curves
    (:func:`_with_curvature`). ``only`` (H, W) bool: level only the regions with a pixel in it
    (None: all); the others keep ``fill``.
    """
    if not known_mask.any():  # nothing to level against
        return fill
    depth = cv2.distanceTransform((~known_mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    interpolated = smooth_fill(image, known_mask, max_side)
    result = fill.copy()
    for box, region in hole_regions(~known_mask):
        if only is not None and not only[box][region].any():
            continue
        near = _ring_reference(image, known_mask, box, region)
        reference = interpolated[box][region] if near is None else near
        if np.count_nonzero(region) <= LEVEL_CURVED_PIXELS:
            reference = _with_curvature(reference, image, known_mask, box, region)
        scale = max(LEVEL_RAMP_PX, LEVEL_RAMP_FRACTION * float(depth[box][region].max()))
        profile = 1.0 - np.exp(-depth[box][region] / scale)
        remove_mean(result[box], region, fill[box][region] - reference, profile)
    return result


def _with_curvature(
    reference: np.ndarray,
    image: np.ndarray,
    known_mask: np.ndarray,
    box: tuple[slice, slice],
    region: np.ndarray,
) -> np.ndarray:
    """(N, C): ``reference``, a hole region's harmonic level, moved towards its biharmonic
    interpolation by the share the check on the ring outside it gives (LEVEL_CHECK_RING): where
    the photo curves across the region (a highlight), the biharmonic one predicts the ring better
    and the share nears 1; on a flat region both miss by the grain and it stays near 0.
    ``box`` and ``region`` as :func:`hole_regions` gives them; other holes nearby stay unknown."""
    # the biharmonic stencil reaches two pixels past the ring
    crop, inside = _around(known_mask.shape, box, region, LEVEL_CHECK_RING + 4)
    values, holes = np.asarray(image[crop], dtype=np.float64), ~known_mask[crop]
    ring = (cv2.dilate(inside, np.ones((2 * LEVEL_CHECK_RING + 1,) * 2, np.uint8)) > 0) & ~holes
    hidden, truth = holes | ring, values[ring]
    if np.count_nonzero(ring) < 8 or hidden.all():  # nothing to check against, or from
        return reference
    grain = _grain(values.astype(np.float32), ~holes, ring)
    flat_miss = np.square(harmonic_fill(values, ~hidden)[ring] - truth).mean(axis=0) - grain
    tie = LEVEL_CURVE_GRAIN * grain
    if np.all(flat_miss <= tie / 19):  # the share would stay under 5 %: spare the two solves
        return reference
    curved_miss = np.square(biharmonic_fill(values, ~hidden)[ring] - truth).mean(axis=0)
    flat_miss, curved_miss = np.maximum(flat_miss, 0), np.maximum(curved_miss - grain, 0)
    share = flat_miss / np.maximum(flat_miss + curved_miss + tie, 1e-12)
    curved = biharmonic_fill(values, ~holes)[inside > 0]
    return reference + share * (curved - reference)


def _around(
    shape: tuple[int, int], box: tuple[slice, slice], region: np.ndarray, margin: int
) -> tuple[tuple[slice, slice], np.ndarray]:
    """The crop of ``margin`` px around a region's ``box`` (clipped to ``shape``) and the region
    in it, (h, w) uint8 (1 = the region): where the work on one region reads the photo."""
    rows, cols = box
    top, left = max(rows.start - margin, 0), max(cols.start - margin, 0)
    crop = (slice(top, rows.stop + margin), slice(left, cols.stop + margin))
    height, width = min(rows.stop + margin, shape[0]) - top, min(cols.stop + margin, shape[1]) - left
    inside = np.zeros((height, width), np.uint8)
    inside[rows.start - top : rows.stop - top, cols.start - left : cols.stop - left] = region
    return crop, inside


def hole_regions(hole: np.ndarray) -> Iterator[tuple[tuple[slice, slice], np.ndarray]]:
    """Each 8-connected region of ``hole`` (H, W) bool: its bounding box (rows, cols) and where it
    lies in that box ((h, w) bool), so the work on a region stays in its box however many there are."""
    count, labels, boxes, _ = cv2.connectedComponentsWithStats(hole.astype(np.uint8), connectivity=8)
    for label in range(1, count):
        left, top, width, height = (int(value) for value in boxes[label, :4])
        box = (slice(top, top + height), slice(left, left + width))
        yield box, labels[box] == label


def remove_mean(fill: np.ndarray, region: np.ndarray, departure: np.ndarray, profile: np.ndarray) -> None:
    """Shift ``fill`` (H, W, C) float in place at ``region`` (H, W) bool by ``profile`` (N,) times a
    colour chosen so the mean of ``departure`` (N, C), the region's pixels' departure from what
    they should average to, becomes 0."""
    weight = departure.mean(axis=0) / max(float(profile.mean()), 1e-6)
    fill[region] -= profile[:, None] * weight


def _ring_reference(
    image: np.ndarray, known_mask: np.ndarray, box: tuple[slice, slice], region: np.ndarray
) -> np.ndarray | None:
    """(N, C): the harmonic interpolation of ``image`` into a hole region (:func:`hole_regions`:
    its ``box`` and ``region`` there), averaged with those from the next rings out where the
    photo's grain explains why they differ; None where the one-pixel border holds
    LEVEL_BORDER_PIXELS. Solved in a crop around the box, with the other holes there unknown too.

    Each ring's interpolation continues a linear gradient exactly, so on a flat, grainy region
    they differ by grain alone and their mean is the better level; where they differ by more (an
    edge, a curving sky), the nearest ring predicts the hole best. The share of the mean is
    ``RING_AGREEMENT`` times the grain's variance near the border (:func:`_grain`) over the
    border's pixel count, over the squared difference of the nearest ring's level and the others',
    at most 1, per channel.
    """
    crop, inside = _around(known_mask.shape, box, region, LEVEL_RINGS)
    border = (cv2.dilate(inside, np.ones((3, 3), np.uint8)) > 0) & (inside == 0)
    pixels = int(np.count_nonzero(border))
    rings = int(np.clip(np.ceil(LEVEL_BORDER_PIXELS / max(pixels, 1)), 1, LEVEL_RINGS))
    if rings == 1 or pixels == 0:
        return None
    values, known = np.asarray(image[crop], dtype=np.float32), known_mask[crop]
    fields = []
    for grow in range(rings):
        grown = cv2.dilate(inside, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)) > 0
        fields.append(harmonic_fill(values, known & ~grown)[inside > 0])
    nearest, farther = fields[0], np.mean(fields[1:], axis=0)
    difference = np.square(nearest.mean(axis=0) - farther.mean(axis=0))
    share = np.clip(
        RING_AGREEMENT * _grain(values, known, border) / pixels / np.maximum(difference, 1e-12), 0, 1
    )
    return nearest + share * (np.mean(fields, axis=0) - nearest)


def _grain(values: np.ndarray, known: np.ndarray, near: np.ndarray) -> np.ndarray:
    """(C,): the variance of the grain of ``values`` (H, W, C) float32, measured on the pixels
    whose 3x3 neighbourhood is ``known`` and which lie within a pixel of ``near`` (both (H, W)
    bool); zeros where there are none."""
    response = cv2.filter2D(values, -1, GRAIN_KERNEL, borderType=cv2.BORDER_REPLICATE).reshape(values.shape)
    whole = cv2.erode(known.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    where = whole & (cv2.dilate(near.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    if not where.any():
        return np.zeros(values.shape[-1], np.float32)
    return np.square(response[where]).mean(axis=0) / 36.0


def _cascade(values: np.ndarray, known: np.ndarray, sweeps: int) -> np.ndarray:
    height, width = known.shape
    if max(height, width) <= DIRECT_SIDE:
        return _solve_exactly(values, known)
    coarse_values, coarse_known = _halve(values, known)
    if coarse_known.all():  # every coarse pixel touches a known one: relaxation alone suffices
        guess = cv2.resize(coarse_values, (width, height), interpolation=cv2.INTER_LINEAR)
    else:
        coarse = _cascade(coarse_values, coarse_known, SWEEPS)
        guess = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    field = np.where(known[..., None], values, guess.reshape(values.shape))
    return _relax(field, known, sweeps)


def _halve(values: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Half the size: each coarse pixel is the mean of its known children, known if any child is."""
    height, width = known.shape
    pad = ((0, height % 2), (0, width % 2))
    weight = np.pad(known.astype(np.float64), pad, mode="edge")
    summed = np.pad(values, (*pad, (0, 0)), mode="edge") * weight[..., None]

    def pool(x: np.ndarray) -> np.ndarray:
        return x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]

    count = pool(weight)
    coarse_known = count > 0
    coarse = pool(summed) / np.maximum(count, 1.0)[..., None]
    return coarse, coarse_known


# The mean of the four neighbours; cv2's replicated border is the mirror edge of harmonic_fill.
NEIGHBOUR_MEAN = np.array([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]], dtype=np.float32)


def _relax(field: np.ndarray, known: np.ndarray, sweeps: int) -> np.ndarray:
    """Red-black Gauss-Seidel on the unknown pixels (float32; cv2 filters only float32 fast).

    Only the unknown pixels' bounding box plus one pixel is swept: every pixel outside it is known
    and stays, so the result is the same as sweeping the whole field, in a fraction of the time
    when the hole is small beside its window.
    """
    result = np.array(field, dtype=np.float32)
    rows, cols = np.nonzero(~known)
    if len(rows) == 0:
        return result.astype(np.float64)
    top, left = max(rows.min() - 1, 0), max(cols.min() - 1, 0)
    bottom, right = min(rows.max() + 2, known.shape[0]), min(cols.max() + 2, known.shape[1])
    box = np.ascontiguousarray(result[top:bottom, left:right])
    unknown = ~known[top:bottom, left:right]
    checker = (np.indices(unknown.shape).sum(axis=0) + top + left) % 2 == 1  # the whole field's pattern
    # cv2's masked copy: ten times faster than numpy's indexing or copyto on these sizes
    colours = [(unknown & (checker == black)).astype(np.uint8) for black in (False, True)]
    for _ in range(sweeps):
        for where in colours:
            mean = cv2.filter2D(box, -1, NEIGHBOUR_MEAN, borderType=cv2.BORDER_REPLICATE)
            cv2.copyTo(mean, where, box)
    result[top:bottom, left:right] = box
    return result.astype(np.float64)


def _solve_exactly(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The discrete Laplace equation on the unknown pixels, solved by sparse LU."""
    height, width = known.shape
    ys, xs = np.nonzero(~known)
    index = np.full((height, width), -1, dtype=np.int64)
    index[ys, xs] = np.arange(len(ys))
    degree = np.zeros(len(ys))
    rhs = np.zeros((len(ys), values.shape[2]))
    rows, cols = [], []
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        degree += inside
        at = np.nonzero(inside)[0]
        neighbour_known = known[ny[at], nx[at]]
        rows.append(at[~neighbour_known])
        cols.append(index[ny[at[~neighbour_known]], nx[at[~neighbour_known]]])
        rhs[at[neighbour_known]] += values[ny[at[neighbour_known]], nx[at[neighbour_known]]]
    off = np.concatenate(rows)
    matrix = sparse.csc_matrix(
        (
            np.concatenate([degree, -np.ones(len(off))]),
            (np.concatenate([np.arange(len(ys)), off]), np.concatenate([np.arange(len(ys)), *cols])),
        ),
        shape=(len(ys), len(ys)),
    )
    solution = sparse_linalg.splu(matrix).solve(rhs)
    result = values.copy()
    result[ys, xs] = solution
    return result

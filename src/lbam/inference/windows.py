"""Where the model runs: the hole's regions (:func:`hole_boxes`) and the window of photo each pass
sees (:func:`crop_plan`, :func:`fit_plan`).

A window is the region's bounding box plus context, at least the model's training crop, clipped to
the photo. ``fit`` lets several small regions share one window (:func:`group_boxes`) when each
keeps the context it would have alone: a thousand dust specks on a 12 Mpx photo took 961 passes
one by one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import cv2
import numpy as np

# A box or window in a photo: (top, bottom, left, right), half-open, in pixels.
Box = tuple[int, int, int, int]


class Pass(NamedTuple):
    """One model pass: it fills the hole pixels inside ``box``, sees ``window`` and runs it at a
    longest side of ``limit`` px (None: as it is); ``span`` is the longest side of the hole regions
    it fills (the texture stage's reach goes by it)."""

    box: Box
    window: Box
    limit: int | None
    span: int


# Plans the passes for the hole's boxes (:func:`hole_boxes`).
WindowPlan = Callable[[list[Box]], list[Pass]]
# Each region in a shared window keeps at least this share of the training crop of photo on every
# side: a region near a window's edge sees less of its surroundings than one centred in its own.
GROUP_PAD = 0.125


def side(box: Box) -> int:
    """The longer side of ``box``."""
    return max(box[1] - box[0], box[3] - box[2])


def hole_boxes(hole: np.ndarray) -> list[Box]:
    """Bounding boxes of the hole's connected regions, merged until no two boxes overlap or touch.

    Sorted by (top, left, bottom, right).
    """
    boxes = _component_boxes(hole.astype(np.uint8))
    while True:
        merged = _merge_touching(boxes, hole.shape)
        if len(merged) == len(boxes):
            return merged
        boxes = merged


# Up to this many boxes, merging compares pairs (the usual few holes: no second pass over a
# 12 Mpx photo, 0.1 s); beyond it, drawing and labelling the boxes is linear in pixels.
PAIRWISE_BOXES = 256


def _merge_touching(boxes: list[Box], shape: tuple[int, int]) -> list[Box]:
    """The bounding box of each group of boxes linked by overlapping or touching (8-connected)."""
    if len(boxes) > PAIRWISE_BOXES:
        canvas = np.zeros(shape, dtype=np.uint8)
        for top, bottom, left, right in boxes:
            canvas[top:bottom, left:right] = 1
        return _component_boxes(canvas)
    group = list(range(len(boxes)))

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for i, a in enumerate(boxes):
        for j in range(i + 1, len(boxes)):
            b = boxes[j]
            if b[0] <= a[1] and a[0] <= b[1] and b[2] <= a[3] and a[2] <= b[3]:
                group[root(j)] = root(i)
    spans: dict[int, Box] = {}
    for i, box in enumerate(boxes):
        old = spans.get(root(i), box)
        spans[root(i)] = (min(old[0], box[0]), max(old[1], box[1]), min(old[2], box[2]), max(old[3], box[3]))
    return sorted(spans.values(), key=lambda box: (box[0], box[2], box[1], box[3]))


def _component_boxes(binary: np.ndarray) -> list[Box]:
    _, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    boxes = [(int(y), int(y + h), int(x), int(x + w)) for x, y, w, h, _ in stats[1:]]
    return sorted(boxes, key=lambda box: (box[0], box[2], box[1], box[3]))


def crop_window(box: Box, shape: tuple[int, int], margin: int, min_size: int, multiple: int = 1) -> Box:
    """The window around ``box``: ``margin`` pixels each side, at least ``min_size``, rounded up to
    ``multiple`` (so the model needs no padding) and clipped to the photo of ``shape`` = (H, W)."""
    top, bottom = _window_span(box[0], box[1], shape[0], margin, min_size, multiple)
    left, right = _window_span(box[2], box[3], shape[1], margin, min_size, multiple)
    return top, bottom, left, right


def _window_span(
    start: int, stop: int, length: int, margin: int, min_size: int, multiple: int
) -> tuple[int, int]:
    size = max(stop - start + 2 * margin, min_size)
    size = min(-(-size // multiple) * multiple, length)
    begin = (start + stop) // 2 - size // 2
    begin = min(max(begin, 0), length - size)  # shift inside the photo rather than shrink
    return begin, begin + size


def crop_plan(shape: tuple[int, int], margin: int, min_size: int, max_size: int, multiple: int) -> WindowPlan:
    """``crop``: a fixed ``margin`` of context, at least ``min_size``, run at most at ``max_size``."""
    return lambda boxes: [
        Pass(box, crop_window(box, shape, margin, min_size, multiple), max_size, side(box)) for box in boxes
    ]


def fit_plan(shape: tuple[int, int], context: float, train_size: int, zoom: float = 1.0) -> WindowPlan:
    """``fit``: context in proportion to the hole, run at most at ``zoom`` times the model's
    training scale (lbam.inference.pipeline's module doc); small regions share windows."""
    limit = round(zoom * train_size)
    pad = math.ceil(GROUP_PAD * train_size)

    def alone(box: Box) -> Pass:
        window = crop_window(box, shape, math.ceil(context * side(box)), train_size)
        return Pass(box, window, limit if side(window) > limit else None, side(box))

    def reach(box: Box) -> Box:
        margin = max(math.ceil(context * side(box)), pad)
        return _clip((box[0] - margin, box[1] + margin, box[2] - margin, box[3] + margin), shape)

    def together(group: list[Box]) -> Pass:
        extent = _union([reach(box) for box in group])
        window = crop_window(extent, shape, 0, train_size)
        return Pass(_union(group), window, None, max(map(side, group)))

    def plan(boxes: list[Box]) -> list[Pass]:
        groups = group_boxes(boxes, reach, limit)
        return [alone(group[0]) if len(group) == 1 else together(group) for group in groups]

    return plan


def group_boxes(boxes: list[Box], reach: Callable[[Box], Box], limit: int) -> list[list[Box]]:
    """``boxes`` (sorted by top, as :func:`hole_boxes` gives them) in groups that can share one
    window: the ``reach`` of every member (its box and the context it needs) fits in ``limit`` px
    on a side, and the group's bounding box meets no box outside it (each pass pastes the hole
    pixels inside its box). Greedy: each box joins the first open group it fits."""
    every = np.array(boxes, dtype=np.int64).reshape(-1, 4)
    tall = every[:, 1] - every[:, 0] > limit  # never a member: checked against every group
    corners = (every[~tall], every[tall])
    groups: list[list[Box]] = []
    extents: list[Box] = []
    open_groups: list[int] = []
    for box in boxes:
        area = reach(box)
        # a group whose reach starts more than ``limit`` above this box can take no later box
        open_groups = [g for g in open_groups if extents[g][0] >= box[0] - limit]
        joined = None
        if side(area) <= limit:
            joined = next(
                (g for g in open_groups if _fits(groups[g], extents[g], box, area, corners, limit)), None
            )
        if joined is None:
            groups.append([box])
            extents.append(area)
            open_groups.append(len(groups) - 1)
        else:
            groups[joined].append(box)
            extents[joined] = _union([extents[joined], area])
    return groups


def _fits(
    group: list[Box], extent: Box, box: Box, area: Box, corners: tuple[np.ndarray, np.ndarray], limit: int
) -> bool:
    """Whether ``box``, needing ``area``, can join ``group`` (whose members need ``extent``);
    ``corners``: the boxes at most ``limit`` px high, sorted by top, and the taller ones."""
    if side(_union([extent, area])) > limit:
        return False
    top, bottom, left, right = _union([*group, box])
    short, tall = corners
    # a box at most ``limit`` high that meets the group's box starts within ``limit`` above it
    near = short[np.searchsorted(short[:, 0], top - limit) : np.searchsorted(short[:, 0], bottom)]
    meets = 0
    for others in (near, tall):
        meets += int(
            np.count_nonzero(
                (others[:, 0] < bottom)
                & (others[:, 1] > top)
                & (others[:, 2] < right)
                & (others[:, 3] > left)
            )
        )
    return meets == len(group) + 1


def _union(boxes: list[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        max(b[1] for b in boxes),
        min(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _clip(box: Box, shape: tuple[int, int]) -> Box:
    return max(box[0], 0), min(box[1], shape[0]), max(box[2], 0), min(box[3], shape[1])

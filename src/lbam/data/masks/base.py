"""What every mask generator shares: the calling convention, option checks, hole-ratio helpers.

A mask generator is any callable ``generator(size, rng) -> known_mask`` where ``size`` is
``(height, width)``, ``rng`` a :class:`numpy.random.Generator` that supplies *all* its randomness,
and ``known_mask`` a float32 array of shape ``(height, width)`` holding only 0 and 1,
**1 = known pixel, 0 = hole**. Generators keep no random state of their own, so the same ``rng``
state always gives the same mask, whichever process calls them.

Internally the drawing code works on ``hole`` arrays (uint8, 1 = hole) because that is what one
draws; :func:`known_from_hole` turns them into the public convention at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from lbam.errors import LbamError

# Masks are designed at this size; lengths and widths given in pixels scale with sqrt(H * W) / 256.
REFERENCE_SIZE = 256


class MaskGenerator(Protocol):
    """``generator(size, rng) -> known_mask`` (float32 (H, W), 1 = known, 0 = hole)."""

    def __call__(self, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray: ...


def check_size(size: Sequence[int]) -> tuple[int, int]:
    """``(height, width)`` as two positive ints, or LbamError."""
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise LbamError(f"mask size must be (height, width), got {size!r}") from None
    if height < 1 or width < 1:
        raise LbamError(f"mask size must be positive, got {height}x{width} (height x width)")
    return height, width


def scale_factor(size: tuple[int, int]) -> float:
    """How much pixel lengths designed for 256x256 grow for ``size`` (height, width)."""
    return math.sqrt(size[0] * size[1]) / REFERENCE_SIZE


def known_from_hole(hole: np.ndarray) -> np.ndarray:
    """Known mask (float32, 1 = known) from a hole array (nonzero = hole)."""
    return (hole == 0).astype(np.float32)


def hole_ratio(known_mask: np.ndarray) -> float:
    """Fraction of hole pixels in ``known_mask`` (1 = known, 0 = hole)."""
    return float(1.0 - known_mask.mean())


def number(name: str, value: object, kind: str, minimum: float | None = None) -> float:
    """``value`` as a float (YAML may give a string), at least ``minimum``; LbamError names the option."""
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise LbamError(f"mask kind {kind!r}: option {name!r} must be a number, got {value!r}") from None
    if not math.isfinite(result) or (minimum is not None and result < minimum):
        raise LbamError(f"mask kind {kind!r}: option {name!r} must be >= {minimum}, got {value!r}")
    return result


def value_range(
    name: str,
    value: object,
    kind: str,
    minimum: float = 0.0,
    maximum: float | None = None,
    integer: bool = False,
) -> tuple[float, float]:
    """A ``(low, high)`` option with ``minimum <= low <= high <= maximum``; a single number means (v, v)."""
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    if not isinstance(value, (list, tuple)):
        value = (value, value)
    if len(value) != 2:
        raise LbamError(f"mask kind {kind!r}: option {name!r} must be [low, high], got {value!r}")
    low, high = (number(name, v, kind) for v in value)
    if integer and (low != int(low) or high != int(high)):
        raise LbamError(f"mask kind {kind!r}: option {name!r} must hold whole numbers, got {value!r}")
    if low < minimum or high < low or (maximum is not None and high > maximum):
        upper = "" if maximum is None else f" <= {maximum}"
        raise LbamError(
            f"mask kind {kind!r}: option {name!r} must satisfy {minimum} <= low <= high{upper}, got {value!r}"
        )
    if integer:
        return int(low), int(high)
    return low, high


def draw_within(
    draw: Callable[[], np.ndarray], hole_ratio_range: tuple[float, float], attempts: int
) -> np.ndarray:
    """Call ``draw()`` (returning a hole array) until its hole ratio lies in ``hole_ratio_range``.

    After ``attempts`` misses the draw whose ratio was closest to the range is returned, so a
    generator never loops forever on a size where the range cannot be met.
    """
    low, high = hole_ratio_range
    best, best_distance = None, math.inf
    for _ in range(max(1, attempts)):
        hole = draw()
        ratio = float(np.count_nonzero(hole)) / hole.size
        distance = max(low - ratio, ratio - high, 0.0)
        if distance == 0.0:
            return hole
        if distance < best_distance:
            best, best_distance = hole, distance
    return best


class RedrawnMasks:
    """Base of the generators that draw a hole and redraw it until its ratio is in range.

    Subclasses set ``kind``, call :meth:`set_ratio_options` in ``__init__`` and define
    ``draw(size, rng) -> hole`` (uint8 (H, W), 1 = hole). Calling the generator gives the
    ``known_mask`` of the first draw whose hole ratio lies in ``hole_ratio`` (or the closest of
    ``attempts`` draws).
    """

    kind = ""

    def set_ratio_options(self, hole_ratio: object, attempts: object) -> None:
        self.hole_ratio = value_range("hole_ratio", hole_ratio, self.kind, minimum=0, maximum=1)
        self.attempts = int(number("attempts", attempts, self.kind, minimum=1))

    def draw(self, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        size = check_size(size)
        return known_from_hole(draw_within(lambda: self.draw(size, rng), self.hole_ratio, self.attempts))

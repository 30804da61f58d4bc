"""Reproducible mask sets on disk: ``mask_00000.png`` ... (white = hole) and an ``index.csv``.

Mask ``k`` of a set is drawn from ``numpy.random.default_rng((seed, k))``, so a set is the same on
every machine and a longer set starts with the shorter one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from lbam.imaging.masks import hole_ratio_bin, write_mask_png
from lbam.utils.files import atomic_write_text

INDEX_NAME = "index.csv"


def write_mask_set(
    folder: Path,
    generator: Callable[[tuple[int, int], np.random.Generator], np.ndarray],
    count: int,
    size: tuple[int, int],
    seed: int,
) -> tuple[list[float], list[int]]:
    """Write ``count`` masks of ``size`` (H, W) from ``generator`` (known_mask: 1 = known) into ``folder``.

    Returns each mask's hole ratio and NVIDIA hole-ratio bin, in file order.
    """
    rows, ratios, bins = [], [], []
    for k in range(count):
        known_mask = generator(size, np.random.default_rng((seed, k)))
        name = f"mask_{k:05d}.png"
        write_mask_png(folder / name, known_mask)
        hole = known_mask < 0.5
        ratios.append(float(hole.mean()))
        bins.append(hole_ratio_bin(hole))
        rows.append(f"{name},{ratios[-1]:.6f},{bins[-1]}\n")
    atomic_write_text(folder / INDEX_NAME, "file,hole_ratio,bin\n" + "".join(rows))
    return ratios, bins

"""Weights in the authors' key layout, made by the recipe of REFERENCE.md ("lbam-recipe-v1").

The reference vectors in tests/data/reference were produced by the authors' code on exactly these
weights, so passing them through our converter must reproduce raw_output.npy.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

KEYS_FILE = Path(__file__).parent / "data" / "reference" / "official_keys.txt"
_TRANSPOSED = re.compile(r"^dc[1-6]\.conv\.weight$|^dc7\.weight$")


def official_keys() -> list[tuple[str, list[int]]]:
    """(key, shape) pairs of the authors' LBAMModel state_dict, in its order."""
    keys = []
    for line in KEYS_FILE.read_text().splitlines():
        if line.strip():
            name, shape = line.split(" ", 1)
            keys.append((name, [int(v) for v in shape.strip("[]").split(",") if v.strip()]))
    return keys


def recipe_state_dict(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official_keys():
        if shape == []:
            u = torch.rand((), generator=g)
            last = key.rsplit(".", 1)[1]
            if last == "a":
                state[key] = 0.9 + 5.5 * u
            elif last == "mu":
                state[key] = 3.2 * u
            else:
                state[key] = 0.3 + 1.9 * u
        elif _TRANSPOSED.match(key):
            state[key] = torch.randn(shape, generator=g) * 1.4 / math.sqrt(shape[0] * 4)
        else:
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=g) * 1.4 / math.sqrt(fan_in)
    return state

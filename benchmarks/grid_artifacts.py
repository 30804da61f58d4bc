"""Periodic artifacts in large fills: how strongly a generator draws a regular grid into big holes.

Perceptual and style losses can teach a generator to paint a faint lattice into large holes (the
model card saw one of about 8 px), and transposed convolutions leave checkerboards of 2 to 16 px.
This puts a number on it. Every photo of a folder is centre-cropped and resized to 256x256, the
central 128x128 box is the hole, and the generator's raw output in the box is turned to grey and
high-passed (minus its 9x9 box blur). The *grid amplitude* of a period p is the RMS, in 8-bit grey
levels, of the part of that residual that repeats exactly every p pixels in both directions (the
mean over each of the p x p phases, minus its mean), so it includes the periods that divide p.
Texture without a lattice averages out: uniform noise of RMS 10 levels gives about 0.6 at 8 px.

    python benchmarks/grid_artifacts.py --models lbam-compact,new.safetensors [--images DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lbam.imaging.files import list_images
from lbam.imaging.io import load_rgb
from lbam.model.loading import load_model, resolve_model_path

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO.parent / "shared" / "data" / "photos" / "val"
SIZE, HOLE = 256, 128
PERIODS = (2, 4, 8, 16)


def grid_amplitude(fill: Tensor, period: int) -> float:
    """Grid amplitude (module doc) of ``fill``: (H, W) grey values in [0, 1], sides multiples of ``period``."""
    h, w = fill.shape
    if h % period or w % period:
        raise ValueError(f"fill sides must be multiples of {period}, got {tuple(fill.shape)}")
    smooth = F.avg_pool2d(fill[None, None], 9, stride=1, padding=4, count_include_pad=False)[0, 0]
    residual = fill - smooth
    tile = residual.reshape(h // period, period, w // period, period).mean(dim=(0, 2))
    return float((tile - tile.mean()).pow(2).mean().sqrt() * 255)


def photo_tensor(path: Path) -> Tensor:
    """(1, 3, SIZE, SIZE) in [0, 1]: the photo's centre square, Lanczos-resized."""
    image = load_rgb(path)
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((SIZE, SIZE), resample=3)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]


def model_indices(model: torch.nn.Module, photos: list[Tensor]) -> dict[int, float]:
    """Mean grid amplitude per period over ``photos`` for the central box hole."""
    known = torch.ones(1, 1, SIZE, SIZE)
    lo = (SIZE - HOLE) // 2
    known[..., lo : lo + HOLE, lo : lo + HOLE] = 0
    scores: dict[int, list[float]] = {p: [] for p in PERIODS}
    with torch.inference_mode():
        for photo in photos:
            fill = model(photo, known)[0, :, lo : lo + HOLE, lo : lo + HOLE]
            grey = (0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2]).double()
            for period in PERIODS:
                scores[period].append(grid_amplitude(grey, period))
    return {p: float(np.mean(v)) for p, v in scores.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lbam-compact", help="comma-separated weight files or names")
    parser.add_argument("--images", type=Path, default=IMAGES)
    args = parser.parse_args(argv)
    photos = [photo_tensor(p) for p in list_images(args.images)]
    print(
        f"{len(photos)} photos from {args.images}; hole {HOLE}x{HOLE} in {SIZE}x{SIZE}; grid amplitude (grey levels)"
    )
    print("| model | " + " | ".join(f"{p} px" for p in PERIODS) + " |")
    print("|---|" + "---:|" * len(PERIODS))
    for name in args.models.split(","):
        model = load_model(resolve_model_path(name.strip())).eval()
        indices = model_indices(model, photos)
        print(f"| {name.strip()} | " + " | ".join(f"{indices[p]:.2f}" for p in PERIODS) + " |")


if __name__ == "__main__":
    main()

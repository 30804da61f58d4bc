"""Check lbam's ST-LPIPS against the reference package on 50 image pairs (run once, by hand).

The reference (``stlpips-pytorch==0.0.2``) imports torchvision, which does not load beside the CPU
torch that lbam is tested with, so this runs in a separate virtual environment:

    python3 -m venv /tmp/stlvenv
    /tmp/stlvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 stlpips-pytorch==0.0.2 \
        torchsummary ipython pyyaml
    PYTHONPATH=src /tmp/stlvenv/bin/python benchmarks/stlpips_agreement.py ../shared/data/photos

Pairs: 256 px centre crops of the photos, each against a distorted copy (Gaussian noise, blur,
a shift by a few pixels, a JPEG round trip, a flat grey hole), as in the docs/benchmarks.md table.
Prints the largest absolute difference between the two implementations, for the AlexNet
distance (the ``st_lpips`` metric) and the VGG distance.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from lbam.features.stlpips import load_st_lpips


def distortions(image: Image.Image, k: int) -> Image.Image:
    rng = np.random.default_rng(k)
    pixels = np.asarray(image).astype(np.float32)
    kind = k % 5
    if kind == 0:
        pixels = pixels + rng.normal(0, 4 + (4 * k) % 20, pixels.shape)
    elif kind == 1:
        return image.filter(ImageFilter.GaussianBlur(0.5 + k % 3))
    elif kind == 2:
        pixels = np.roll(pixels, (1 + k % 4, k % 3), axis=(0, 1))
    elif kind == 3:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=10 + 5 * (k % 6))
        return Image.open(buffer).convert("RGB")
    else:
        top, left = rng.integers(0, 160, 2)
        pixels[top : top + 64, left : left + 96] = 128
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def pairs(folder: Path, count: int = 50) -> list[tuple[torch.Tensor, torch.Tensor]]:
    files = sorted(p for p in folder.rglob("*.jpg"))
    result = []
    for k in range(count):
        image = Image.open(files[k % len(files)]).convert("RGB")
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side)).resize((256, 256), Image.Resampling.LANCZOS)
        other = distortions(image, k)
        as_tensor = [
            torch.from_numpy(np.asarray(i)).permute(2, 0, 1)[None].float() / 255 for i in (image, other)
        ]
        result.append((as_tensor[0], as_tensor[1]))
    return result


def main(folder: Path) -> None:
    from stlpips_pytorch import stlpips

    torch.set_grad_enabled(False)
    for network in ("alex", "vgg"):
        reference = stlpips.LPIPS(net=network, variant="shift_tolerant", verbose=False).eval()
        ours = load_st_lpips(network=network)
        differences, values = [], []
        for x, y in pairs(folder):
            expected = reference(x, y, normalize=True).flatten()
            got = ours(x, y)
            differences.append((got - expected).abs().max().item())
            values.append(expected.item())
        print(
            f"{network}: 50 pairs, ST-LPIPS {min(values):.4f} to {max(values):.4f}, "
            f"max |lbam - stlpips_pytorch| = {max(differences):.2e}"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))

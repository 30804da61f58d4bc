"""Validation during training: PSNR/SSIM (and ST-LPIPS) of the composites on the fixed validation set.

``train.select_by`` names the metric that picks the ``best`` checkpoint (:data:`SELECT_BY`):
PSNR by default, as lbam 0.1; ST-LPIPS for recipes whose point is texture (an adversarial or
perceptual term trades a little PSNR for sharper fills, and a PSNR-chosen ``best`` then keeps the
blurriest checkpoint).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from lbam.imaging.metrics import psnr, ssim
from lbam.imaging.pixels import composite
from lbam.training.logs import sample_grid

SAMPLE_COUNT = 4
# metric -> True when higher is better
SELECT_BY = {"psnr": True, "ssim": True, "st_lpips": False}
METRIC_NAMES = {"psnr": "PSNR", "ssim": "SSIM", "st_lpips": "ST-LPIPS"}
# Identical images give an infinite PSNR; it is capped so that means and comparisons stay finite.
PSNR_CAP = 100.0


@torch.no_grad()
def validate(
    generator: nn.Module, loader: DataLoader, device: torch.device, st_lpips: nn.Module | None = None
) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM of the composites over the validation set, and their ST-LPIPS when
    ``st_lpips`` (an :class:`lbam.features.stlpips.STLPIPS`) is given."""
    was_training = generator.training
    generator.eval()
    psnr_values, ssim_values, distances = [], [], []
    for batch in loader:
        image = batch["image"].to(device)
        known_mask = batch["known_mask"].to(device)
        output = generator(image, known_mask).float().clamp(0, 1)
        result = composite(output, image, known_mask)
        psnr_values.append(psnr(result, image).cpu())
        ssim_values.append(ssim(result, image).cpu())
        if st_lpips is not None:
            distances.append(st_lpips(result, image).float().cpu())
    generator.train(was_training)
    psnr_all = torch.cat(psnr_values).clamp(max=PSNR_CAP)
    results = {"psnr": psnr_all.mean().item(), "ssim": torch.cat(ssim_values).mean().item()}
    if distances:
        results["st_lpips"] = torch.cat(distances).mean().item()
    return results


def is_better(value: float, best: float | None, metric: str) -> bool:
    """Whether ``value`` of ``metric`` beats ``best`` (None: nothing to beat)."""
    if best is None:
        return True
    return value > best if SELECT_BY[metric] else value < best


@torch.no_grad()
def sample_images(generator: nn.Module, dataset: Any, indices: list[int], device: torch.device) -> Tensor:
    """A grid (input, output, composite, truth per row) of the first validation items."""
    items = [dataset[i] for i in indices[:SAMPLE_COUNT]]
    image = torch.stack([item["image"] for item in items]).to(device)
    known_mask = torch.stack([item["known_mask"] for item in items]).to(device)
    was_training = generator.training
    generator.eval()
    output = generator(image, known_mask).float().clamp(0, 1)
    generator.train(was_training)
    return sample_grid(image.cpu(), known_mask.cpu(), output.cpu())

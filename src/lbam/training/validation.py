"""Validation during training: PSNR/SSIM of the composites on the fixed validation set, and samples."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from lbam.imaging.metrics import composite, psnr, ssim
from lbam.training.logs import sample_grid

SAMPLE_COUNT = 4
# Identical images give an infinite PSNR; it is capped so that means and comparisons stay finite.
PSNR_CAP = 100.0


@torch.no_grad()
def validate(generator: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM of the composites over the validation set."""
    was_training = generator.training
    generator.eval()
    psnr_values, ssim_values = [], []
    for batch in loader:
        image = batch["image"].to(device)
        known_mask = batch["known_mask"].to(device)
        output = generator(image, known_mask).float().clamp(0, 1)
        result = composite(output, image, known_mask)
        psnr_values.append(psnr(result, image).cpu())
        ssim_values.append(ssim(result, image).cpu())
    generator.train(was_training)
    psnr_all = torch.cat(psnr_values).clamp(max=PSNR_CAP)
    return {"psnr": psnr_all.mean().item(), "ssim": torch.cat(ssim_values).mean().item()}


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

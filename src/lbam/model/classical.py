"""The classical fills as generators: Telea, Navier-Stokes and PatchMatch behind the generator contract.

Wrapped as a :class:`~lbam.model.card.Generator`, a classical fill runs through the same pipeline
as a network (the ``fit`` windows, the blend, the server's queue and memory budget), so the editor
can offer it beside the trained models, as IOPaint offers OpenCV's fill beside LaMa. It has no
weights, is never trained and is never saved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lbam.imaging.classical import CLASSICAL_FILLS, classical_fill
from lbam.model.card import Generator

# The windows ``fit`` gives it: classical fills are slower than the network on large windows
# (PatchMatch), so they see the same scale a 512 px model would.
CLASSICAL_TRAIN_SIZE = 512


@dataclass(frozen=True)
class ClassicalConfig:
    method: str

    def to_dict(self) -> dict[str, str]:
        return {"architecture": "classical", "method": self.method}


class ClassicalFill(Generator):
    """``ClassicalFill("telea")(image, known_mask)``: image (B, 3, H, W) in [0, 1], known_mask
    (B, 1, H, W) with 1 = known; returns (B, 3, H, W) in [0, 1], holes filled by the method."""

    size_multiple = 1

    def __init__(self, method: str) -> None:
        if method not in CLASSICAL_FILLS:
            raise ValueError(f"unknown classical fill {method!r}; use one of {', '.join(CLASSICAL_FILLS)}")
        super().__init__(CLASSICAL_TRAIN_SIZE)
        self.config = ClassicalConfig(method)

    def forward(self, image: torch.Tensor, known_mask: torch.Tensor) -> torch.Tensor:
        outputs = []
        for picture, known in zip(image, known_mask, strict=True):
            color = (
                (picture.permute(1, 2, 0).float().cpu().numpy() * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
            )
            hole = known[0].cpu().numpy() < 0.5
            filled = classical_fill(color, hole, self.config.method)
            outputs.append(torch.from_numpy(filled).permute(2, 0, 1))
        return torch.stack(outputs).to(image.device, image.dtype)

"""Anti-aliased downsampling (Zhang, "Making Convolutional Networks Shift-Invariant Again", 2019).

Used by the ST-LPIPS feature network and by the patch critic, which learned an 8 px lattice from
plain stride-2 convolutions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def binomial_filter(dtype: torch.dtype = torch.float32) -> Tensor:
    """The 3x3 blur ``[1, 2, 1]^T [1, 2, 1] / 16``, shape (3, 3)."""
    taps = torch.tensor([1.0, 2.0, 1.0], dtype=dtype)
    return torch.outer(taps, taps) / 16


class BlurDownsample(nn.Module):
    """Anti-aliased stride-2 step: reflection pad, per-channel 3x3 binomial blur, stride 2.

    ``forward(x)``: (B, C, H, W) -> (B, C, H', W') with H' = floor((H + 2 * padding - 3) / 2) + 1:
    ST-LPIPS pads 2 (H' = floor((H + 1) / 2) + 1); ``padding=1`` halves even sizes exactly.
    """

    def __init__(self, channels: int, padding: int = 2) -> None:
        super().__init__()
        self.padding = padding
        self.register_buffer("filt", binomial_filter()[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        pad = (self.padding,) * 4
        return F.conv2d(F.pad(x, pad, mode="reflect"), self.filt, stride=2, groups=x.shape[1])

"""Frozen feature networks read from foreign weight files: torchvision's VGG16 and ST-LPIPS's nets.

:func:`run_to_taps` is the one forward pass they share: a stack of modules run in order, with the
outputs of some of them kept by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn


def run_to_taps(
    features: nn.Sequential, x: Tensor, index_of: Mapping[str, int], taps: Sequence[str]
) -> list[Tensor]:
    """The outputs of ``features[index_of[tap]]`` for each of ``taps``, in that order."""
    wanted = {index_of[tap]: tap for tap in taps}
    found: dict[str, Tensor] = {}
    for index, module in enumerate(features):
        x = module(x)
        if index in wanted:
            found[wanted[index]] = x
    return [found[tap] for tap in taps]

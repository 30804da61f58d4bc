"""The generators the ablation compares: one registry entry each, differing only in their attention.

Every variant is a config of a registered architecture (:mod:`lbam.model.registry`) at the same
width; what differs is how the mask steers the features:

- ``pconv``: partial convolution's hand-made re-normalisation and hard mask update (Liu et al. 2018);
- ``fixed``: LBAM's layout with frozen attention (box-filter mask convolutions, fixed Gaussians);
- ``forward``: learned forward attention in the encoder, no reverse attention in the decoder;
- ``lbam``: learned forward and reverse attention, the full model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lbam.errors import LbamError


@dataclass(frozen=True)
class VariantSpec:
    """A compared generator: its architecture and the settings that make it this variant."""

    architecture: str
    settings: dict[str, Any]
    summary: str


VARIANTS: dict[str, VariantSpec] = {
    "pconv": VariantSpec("pconv", {"layers": 7}, "partial convolutions (Liu et al. 2018)"),
    "fixed": VariantSpec(
        "lbam", {"attention": "fixed"}, "LBAM layout, attention fixed (box filters, frozen Gaussians)"
    ),
    "forward": VariantSpec("lbam", {"attention": "forward"}, "learned forward attention only"),
    "lbam": VariantSpec("lbam", {"attention": "bidirectional"}, "learned bidirectional attention (full)"),
}


@dataclass(frozen=True)
class Variant:
    """One training run of the ablation: a variant name and the seed it trains with."""

    name: str
    seed: int

    @property
    def label(self) -> str:
        """``lbam`` for the base seed's run, ``lbam@1`` for another seed's."""
        return self.name if self.seed < 0 else f"{self.name}@{self.seed}"

    @property
    def spec(self) -> VariantSpec:
        return VARIANTS[self.name]

    def model_overrides(self, width: float) -> list[tuple[str, Any]]:
        """Config overrides that make a training config train this variant at ``width``."""
        generator = {"width": width, **self.spec.settings}
        return [("model.architecture", self.spec.architecture), ("model.generator", generator)]


def parse_variants(text: str) -> list[Variant]:
    """``"pconv,lbam,pconv@1"`` -> the runs to make; ``@N`` trains another copy with seed N.

    A name without ``@`` trains with the ablation's own seed (``Variant.seed == -1``).

    Raises:
        LbamError: an unknown name, a bad seed, a run given twice or an empty list.
    """
    runs: list[Variant] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, at, seed_text = part.partition("@")
        if name not in VARIANTS:
            raise LbamError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
        if at and not (seed_text.isdigit() and int(seed_text) < 2**31):
            raise LbamError(f"variant {part!r}: the seed after @ must be a number from 0 to 2**31 - 1")
        run = Variant(name, int(seed_text) if at else -1)
        if run in runs:
            raise LbamError(f"variant {part!r} is given twice")
        runs.append(run)
    if not runs:
        raise LbamError(f"no variants given ({text!r}); known: {', '.join(VARIANTS)}")
    return runs

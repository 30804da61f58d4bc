"""The generator contract: what every generator is and what every consumer may rely on.

A generator is a :class:`Generator`: ``model(image, known_mask)`` takes image (B, 3, H, W) in
[0, 1] and known_mask (B, 1, H, W) with 1 = known, H and W multiples of ``card.size_multiple``,
and returns the raw output (B, 3, H, W) in [0, 1], not composited. Its :class:`GeneratorCard`
holds the facts that inference, export, the server and ``lbam models`` need, built with the model
and saved in its weight file (the way timm keeps a model's pretrained config beside it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from lbam.defaults import DEFAULT_TRAIN_SIZE
from lbam.errors import LbamError

TRAIN_SIZE_RANGE = (16, 8192)
PRECISION_NAMES = {"torch.float32": "fp32", "torch.float16": "fp16", "torch.bfloat16": "bf16"}


def check_train_size(size: Any) -> int:
    """``size`` as an int in :data:`TRAIN_SIZE_RANGE`; ValueError otherwise."""
    low, high = TRAIN_SIZE_RANGE
    if isinstance(size, bool) or not isinstance(size, int) or not low <= size <= high:
        raise ValueError(f"train_size must be a whole number of pixels from {low} to {high}, got {size!r}")
    return size


@dataclass(frozen=True)
class GeneratorCard:
    """One typed description of a generator.

    Attributes:
        architecture: its registered name (``lbam``, ``pconv``; :mod:`lbam.model.registry`).
        settings: the architecture's own settings (e.g. variant, width, attention).
        size_multiple: H and W of an input must be multiples of this.
        train_size: the side of its training crops; inpainting fits holes to this scale.
        parameters: number of parameters (trainable and frozen).
        precision: the dtype its weights compute in: fp32, bf16 or fp16.
    """

    architecture: str
    settings: dict[str, Any]
    size_multiple: int
    train_size: int
    parameters: int
    precision: str = "fp32"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Generator(nn.Module):
    """The base of every generator; subclasses set ``config`` and ``size_multiple``.

    Args:
        train_size: the side of the crops it is (or was) trained on.
    """

    config: Any  # the architecture's frozen settings dataclass, with a ``to_dict()``
    size_multiple: int

    def __init__(self, train_size: int = DEFAULT_TRAIN_SIZE) -> None:
        super().__init__()
        self.train_size = check_train_size(train_size)

    @property
    def card(self) -> GeneratorCard:
        settings = self.config.to_dict()
        first = next(self.parameters(), None)
        precision = "fp32" if first is None else PRECISION_NAMES.get(str(first.dtype), str(first.dtype))
        return GeneratorCard(
            architecture=settings.pop("architecture"),
            settings=settings,
            size_multiple=self.size_multiple,
            train_size=self.train_size,
            parameters=sum(p.numel() for p in self.parameters()),
            precision=precision,
        )


def card_of(model: nn.Module) -> GeneratorCard:
    """The card of a generator (a wrapped or optimised one included); LbamError for other modules."""
    if not isinstance(model, Generator):
        raise LbamError(
            f"{type(model).__name__} is not an lbam generator (build one with lbam.build_generator "
            "or load one with lbam.load_model)"
        )
    return model.card

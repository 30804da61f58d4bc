"""The learning-rate schedule: linear warm-up, then an optional cosine decay.

The rate is a pure function of the step, set on the optimiser before every update, so a resumed
run follows exactly the schedule an uninterrupted one does (nothing to checkpoint).
"""

from __future__ import annotations

import math

import torch

from lbam.training.config import OptimConfig


def lr_factor(
    step: int, warmup_steps: int = 0, decay_steps: int | None = None, min_ratio: float = 0.0
) -> float:
    """The multiplier of the base learning rate for the update that makes step ``step + 1``.

    ``(step + 1) / warmup_steps`` during the warm-up; then 1 (no ``decay_steps``) or a cosine from
    1 at ``warmup_steps`` down to ``min_ratio`` at ``decay_steps``, and ``min_ratio`` after it.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if decay_steps is None:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / (decay_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, factor: float) -> None:
    """Give every parameter group of ``optimizer`` the rate ``base_lr * factor``."""
    for group in optimizer.param_groups:
        group["lr"] = base_lr * factor


def apply_schedule(
    step: int,
    optim: OptimConfig,
    g_optimizer: torch.optim.Optimizer,
    d_optimizer: torch.optim.Optimizer | None,
) -> None:
    """Set both optimisers' rates for the update that makes step ``step + 1`` (see :func:`lr_factor`)."""
    factor = lr_factor(step, optim.warmup_steps, optim.decay_steps, optim.min_lr_ratio)
    set_lr(g_optimizer, optim.g_lr, factor)
    if d_optimizer is not None:
        set_lr(d_optimizer, optim.d_lr, factor)

"""What a training run changes from step to step, in one object, and its checkpoint form.

A :class:`TrainState` holds the networks, their optimisers and loss scalers, the step and the best
validation PSNR. A checkpoint stores exactly that, plus the global RNG states and the config, so
:meth:`TrainState.restore` followed by :func:`lbam.training.checkpoint.restore_rng_state` puts a
run back where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lbam.config import to_dict
from lbam.errors import LbamError
from lbam.model.discriminator import build_critic
from lbam.model.loading import load_state_strict
from lbam.model.registry import build_generator
from lbam.training import checkpoint as ckpt
from lbam.training import distributed as dist_utils
from lbam.training.config import TrainConfig
from lbam.training.distributed import DistributedContext


@dataclass
class TrainState:
    """The networks, optimisers, scalers and counters of a run.

    ``trained_generator`` is the module the step calls: the generator itself, or its
    DistributedDataParallel wrapper under torchrun. ``critic`` and ``d_optimizer`` are None when
    the adversarial term is off.
    """

    generator: nn.Module
    critic: nn.Module | None
    g_optimizer: torch.optim.Optimizer
    d_optimizer: torch.optim.Optimizer | None
    g_scaler: torch.amp.GradScaler
    d_scaler: torch.amp.GradScaler
    trained_generator: nn.Module
    step: int = 0
    best_score: float | None = None  # the best validation value of best_metric so far
    best_metric: str = "psnr"

    def checkpoint(self, config: TrainConfig, metrics: dict[str, float]) -> ckpt.TrainingState:
        """The checkpoint form of this state (with the global RNG states captured now)."""
        return ckpt.TrainingState(
            step=self.step,
            config=to_dict(config),
            generator=self.generator.state_dict(),
            g_optimizer=self.g_optimizer.state_dict(),
            critic=self.critic.state_dict() if self.critic is not None else None,
            d_optimizer=self.d_optimizer.state_dict() if self.d_optimizer is not None else None,
            scalers={"g": self.g_scaler.state_dict(), "d": self.d_scaler.state_dict()},
            rng=ckpt.capture_rng_state(),
            best_score=self.best_score,
            select_by=self.best_metric,
            metrics=metrics,
        )

    def restore(self, saved: ckpt.TrainingState, where: Path) -> None:
        """Load a checkpoint's weights, optimiser and scaler states, step and best score (not the RNGs)."""
        what = f"checkpoint {where}"
        load_state_strict(self.generator, saved.generator, f"{what} (generator)")
        _load_optimizer(self.g_optimizer, saved.g_optimizer, f"{what} (generator optimiser)")
        if self.critic is not None:
            if saved.critic is None or saved.d_optimizer is None or self.d_optimizer is None:
                raise LbamError(f"{what} has no critic, but the config's losses.adversarial is on")
            load_state_strict(self.critic, saved.critic, f"{what} (critic)")
            _load_optimizer(self.d_optimizer, saved.d_optimizer, f"{what} (critic optimiser)")
        if self.g_scaler.is_enabled() and saved.scalers.get("g"):  # a CPU checkpoint has none
            self.g_scaler.load_state_dict(saved.scalers["g"])
            self.d_scaler.load_state_dict(saved.scalers.get("d") or saved.scalers["g"])
        self.step, self.best_score, self.best_metric = saved.step, saved.best_score, saved.select_by


def build_state(config: TrainConfig, context: DistributedContext, use_amp: bool) -> TrainState:
    """A fresh state: the generator and critic (initialised from ``train.seed``), Adam for both.

    Raises:
        LbamError: generator settings the architecture refuses.
    """
    torch.manual_seed(config.train.seed)
    model = config.model
    generator = build_generator(model.architecture, train_size=config.data.crop_size, **model.generator)
    generator = generator.to(context.device).train()
    critic = None
    if config.losses.uses_critic:
        critic = build_critic(model.critic, model.critic_width, model.critic_norm)
        critic.to(context.device).train()
    optim = config.optim
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=optim.g_lr, betas=optim.g_betas)
    d_optimizer = None
    if critic is not None:
        d_optimizer = torch.optim.Adam(critic.parameters(), lr=optim.d_lr, betas=optim.d_betas)
    device_type = context.device.type
    return TrainState(
        generator,
        critic,
        g_optimizer,
        d_optimizer,
        torch.amp.GradScaler(device_type, enabled=use_amp),
        torch.amp.GradScaler(device_type, enabled=use_amp),
        trained_generator=generator,
    )


def distribute(state: TrainState, context: DistributedContext) -> None:
    """Under torchrun: wrap the generator in DDP and give every critic replica rank 0's weights."""
    if not context.enabled:
        return
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    state.trained_generator = DistributedDataParallel(state.generator, device_ids=device_ids)
    if state.critic is not None:
        dist_utils.broadcast_state(state.critic, context)  # DDP does this for the generator


def _load_optimizer(optimizer: torch.optim.Optimizer, saved: dict[str, Any], what: str) -> None:
    try:
        optimizer.load_state_dict(saved)
    except (ValueError, KeyError, RuntimeError) as error:
        raise LbamError(f"{what} does not match: {error}") from None

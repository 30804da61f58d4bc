"""One training step: critic update(s), then a generator update (WGAN-GP, as the LBAM paper).

    output    = G(image, known_mask)                      raw output in [0, 1]
    fake      = output, or its composite with the image for a critic that sees composites
    critic:     critic_loss(D(image), D(fake.detach())) + gp_weight * gradient_penalty
                + drift_weight * mean D(image)^2
    generator:  InpaintingLoss(output, image, known_mask) + adversarial * -mean D(fake)
                (then, with model.upsampling resize_conv, its transposed kernels are re-tied)

Each backward pass is split where its terms share no graph (the critic's Wasserstein term and its
penalty; the generator's reconstruction and adversarial terms, which meet only at the output), so
that an optional ``timer`` can time every part on its own: ``benchmarks/train_step.py`` calls
these very functions. The split changes no gradient: the parts add up at the same tensors.

Loss values come back as detached tensors; converting them to numbers (``.item()``, which waits
for the device) is left to the logger.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lbam.imaging.pixels import composite
from lbam.losses.adversarial import critic_loss, drift_penalty, generator_adversarial_loss, gradient_penalty
from lbam.losses.inpainting import InpaintingLoss
from lbam.model.upsampling import constrain_upsampling_
from lbam.training import distributed as dist_utils
from lbam.training.distributed import DistributedContext
from lbam.training.state import TrainState

# timer(part) -> a context manager around that part's code; parts: generator, vgg, critic,
# penalty, optimisers.
Timer = Callable[[str], AbstractContextManager]


def no_timer(part: str) -> AbstractContextManager:
    return contextlib.nullcontext()


@dataclass(frozen=True)
class StepSettings:
    """What a step needs besides the state: the loss, its adversarial weights, precision, processes."""

    loss: InpaintingLoss
    context: DistributedContext
    critic_steps: int = 1
    amp: bool = False  # fp16 autocast for the networks' forward passes (CUDA)
    tied_upsampling: bool = False  # model.upsampling resize_conv: re-tie the kernels after each update
    penalty_every: int = 1  # optim.penalty_every: the gradient penalty on every k-th critic update

    def autocast(self) -> AbstractContextManager:
        return torch.autocast(self.context.device.type, dtype=torch.float16, enabled=self.amp)


def train_step(
    state: TrainState,
    batch: dict[str, Tensor],
    settings: StepSettings,
    random: torch.Generator,
    timer: Timer = no_timer,
) -> dict[str, Tensor]:
    """One step on ``batch`` (``image`` (B,3,S,S) in [0,1], ``known_mask`` (B,1,S,S), 1 = known).

    ``random`` draws the gradient penalty's interpolation factors. Returns detached loss values.
    """
    device = settings.context.device
    image = batch["image"].to(device, non_blocking=True)
    known_mask = batch["known_mask"].to(device, non_blocking=True)
    with timer("generator"), settings.autocast():
        output = state.trained_generator(image, known_mask)
    output = output.float()
    values: dict[str, Tensor] = {}
    if state.critic is not None:
        fake = critic_input(state.critic, output.detach(), image, known_mask)
        values.update(critic_update(state, image, fake, known_mask, settings, random, timer))
    values.update(generator_update(state, image, output, known_mask, settings, timer))
    state.step += 1
    return values


def critic_input(critic: torch.nn.Module, output: Tensor, image: Tensor, known_mask: Tensor) -> Tensor:
    """What the critic judges as fake: the raw output, or the composite for a patch critic."""
    if getattr(critic, "sees_composite", False):
        return composite(output, image, known_mask)
    return output


def critic_update(
    state: TrainState,
    image: Tensor,
    fake: Tensor,
    known_mask: Tensor,
    settings: StepSettings,
    random: torch.Generator,
    timer: Timer = no_timer,
) -> dict[str, Tensor]:
    """``settings.critic_steps`` WGAN-GP updates of the critic on real ``image`` and detached ``fake``.

    With ``settings.penalty_every`` k > 1 the penalty, the costliest part (it differentiates the
    critic twice), runs on every k-th critic update only, weighted k times: lazy regularisation
    (Karras et al., StyleGAN2, 2020). The returned ``gradient_penalty`` is then k times the penalty
    on those updates and 0 between, so its mean over a log window estimates the penalty per update.
    """
    critic, optimizer, scaler = state.critic, state.d_optimizer, state.d_scaler
    assert critic is not None and optimizer is not None
    every = settings.penalty_every
    weight = settings.loss.weights.gradient_penalty
    drift_weight = settings.loss.weights.critic_drift
    for update in range(state.step * settings.critic_steps, (state.step + 1) * settings.critic_steps):
        with timer("optimisers"):
            optimizer.zero_grad(set_to_none=True)
        with timer("critic"), settings.autocast():
            real_scores = critic(image, known_mask).float()
            fake_scores = critic(fake, known_mask).float()
        penalty = torch.zeros((), device=image.device)
        if update % every == 0:
            # The penalty differentiates the critic twice; fp16 there loses too much: run it in fp32.
            with timer("penalty"), torch.autocast(image.device.type, enabled=False):
                penalty = every * gradient_penalty(critic, image, fake, known_mask, generator=random)
        with timer("critic"):
            wasserstein = critic_loss(real_scores, fake_scores)
            drift = drift_penalty(real_scores)
            scaler.scale(wasserstein + drift_weight * drift).backward()
        if penalty.requires_grad:
            with timer("penalty"):
                scaler.scale(weight * penalty).backward()
        with timer("optimisers"):
            dist_utils.all_reduce_gradients(critic, settings.context)
            scaler.step(optimizer)
            scaler.update()
            dist_utils.broadcast_buffers(critic, settings.context)
    return {
        "d_loss": (wasserstein + weight * penalty + drift_weight * drift).detach(),
        "gradient_penalty": penalty.detach(),
        "real_score": real_scores.mean().detach(),
        "wasserstein": (real_scores.mean() - fake_scores.mean()).detach(),
    }


def generator_update(
    state: TrainState,
    image: Tensor,
    output: Tensor,
    known_mask: Tensor,
    settings: StepSettings,
    timer: Timer = no_timer,
) -> dict[str, Tensor]:
    """One update of the generator from the reconstruction losses and the critic's adversarial term.

    Both losses stop at a leaf copy of ``output``; their summed gradient then goes back through the
    generator once, which is what one backward call of their sum computes.
    """
    weights = settings.loss.weights
    output_leaf = output.detach().requires_grad_(True)
    with timer("vgg"):  # the reconstruction terms, dominated by VGG when it is on
        terms = settings.loss(output_leaf, image, known_mask)
    total = terms["total"]
    adversarial = None
    if state.critic is not None:
        with timer("critic"), settings.autocast():
            state.critic.requires_grad_(False)  # the adversarial term trains the generator only
            judged = critic_input(state.critic, output_leaf, image, known_mask)
            adversarial = generator_adversarial_loss(state.critic(judged, known_mask).float())
            state.critic.requires_grad_(True)
    with timer("optimisers"):
        state.g_optimizer.zero_grad(set_to_none=True)
    scaler = state.g_scaler
    with timer("vgg"):
        scaler.scale(total).backward()
    if adversarial is not None:
        with timer("critic"):
            scaler.scale(weights.adversarial * adversarial).backward()
    with timer("generator"):
        output.backward(output_leaf.grad)
    with timer("optimisers"):
        scaler.step(state.g_optimizer)
        scaler.update()
        if settings.tied_upsampling:
            constrain_upsampling_(state.generator)
    values = {name: value.detach() for name, value in terms.items() if name != "total"}
    g_total = total.detach()
    if adversarial is not None:
        values["adversarial"] = adversarial.detach()
        g_total = g_total + weights.adversarial * values["adversarial"]
    values["g_total"] = g_total
    return values


def step_generator(seed: int, step: int, rank: int, device: torch.device) -> torch.Generator:
    """A random generator that depends only on (seed, step, rank): the step's own randomness."""
    words = np.random.SeedSequence([seed, step, rank]).generate_state(2, dtype=np.uint32)
    generator = torch.Generator(device=device)
    generator.manual_seed(int(words[0]) << 32 | int(words[1]))
    return generator

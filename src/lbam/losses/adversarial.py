"""WGAN-GP losses for the two-column critic (Gulrajani et al. 2017), as the LBAM paper describes.

The critic outputs an unbounded score per sample (no sigmoid); higher means "looks real".

- critic:    ``mean D(fake) - mean D(real) + gp_weight * gradient_penalty + drift_weight * drift``
- generator: ``-mean D(fake)``

Not copied from the authors' release: there the critic ends in a sigmoid and its loss is
``mean D(fake) + mean D(real) + gp``, so minimising it pushes the scores of real images *down*
as well as those of fakes (a sign error on the real term); it also steps the critic's optimiser
inside the generator's graph, which fails on PyTorch >= 1.5.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def critic_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Wasserstein critic loss ``mean(fake) - mean(real)``; scores (B,) -> scalar.

    Negative when the critic rates real images above fakes; minimise it.
    """
    return fake_scores.mean() - real_scores.mean()


def generator_adversarial_loss(fake_scores: Tensor) -> Tensor:
    """Generator's adversarial term ``-mean(fake)``; scores (B,) -> scalar."""
    return -fake_scores.mean()


def drift_penalty(real_scores: Tensor) -> Tensor:
    """``mean(D(real)^2)``: scores (B,) -> scalar (Karras et al. 2018, "epsilon drift").

    The Wasserstein loss only sees score differences, so nothing stops every score from
    wandering off together; with the generator's term ``-mean D(fake)`` in its total, a critic
    whose scores sit at several hundred makes the logged losses meaningless and fp16 scaling
    fragile. A small weight (Karras et al. use 0.001) anchors the real scores near zero.
    """
    return real_scores.pow(2).mean()


def gradient_penalty(
    critic: Callable[[Tensor, Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    known_mask: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP penalty ``mean((||grad_x D(x, M)||_2 - 1)^2)`` at random interpolates; scalar.

    Args:
        critic: called as ``critic(image, known_mask) -> scores (B,)``.
        real: ground-truth images (B, 3, H, W) in [0, 1].
        fake: generated images (B, 3, H, W); detached here, the penalty only trains the critic.
        known_mask: (B, 1, H, W), 1 = known pixel, 0 = hole; given to the critic unchanged.
        generator: random source for the interpolation factors (one per sample, uniform in [0, 1)),
            on any device; None uses the global one.

    The gradient is taken w.r.t. the image only, with ``create_graph=True`` so the penalty
    back-propagates into the critic's parameters. Note that with batch norm in the critic (the
    paper's choice), each sample's score also depends on the others in the batch.
    """
    batch = real.shape[0]
    device = generator.device if generator is not None else real.device
    alpha = torch.rand((batch, 1, 1, 1), generator=generator, device=device).to(real.device, real.dtype)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(mixed, known_mask)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    # A tiny epsilon keeps the square root differentiable where a gradient is exactly zero.
    norm = torch.sqrt(grad.float().flatten(1).pow(2).sum(dim=1) + 1e-12)
    return torch.mean((norm - 1) ** 2)

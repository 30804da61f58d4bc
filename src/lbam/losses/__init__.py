"""Training losses: reconstruction (hole/valid L1, perceptual, style) and WGAN-GP.

The VGG16 features the perceptual and style terms use live in :mod:`lbam.features.vgg`.
"""

from lbam.losses.adversarial import critic_loss, drift_penalty, generator_adversarial_loss, gradient_penalty
from lbam.losses.inpainting import InpaintingLoss, LossConfig

__all__ = [
    "InpaintingLoss",
    "LossConfig",
    "critic_loss",
    "drift_penalty",
    "generator_adversarial_loss",
    "gradient_penalty",
]

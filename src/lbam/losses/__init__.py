"""Training losses: reconstruction (hole/valid L1, perceptual, style), WGAN-GP, and the VGG16 they use."""

from lbam.features.vgg import VGG16Features, load_vgg16
from lbam.losses.adversarial import critic_loss, drift_penalty, generator_adversarial_loss, gradient_penalty
from lbam.losses.inpainting import InpaintingLoss, LossConfig

__all__ = [
    "InpaintingLoss",
    "LossConfig",
    "VGG16Features",
    "critic_loss",
    "drift_penalty",
    "generator_adversarial_loss",
    "gradient_penalty",
    "load_vgg16",
]

"""Training losses: reconstruction (hole/valid L1, perceptual, style), WGAN-GP, and the VGG16 they use."""

from lbam.losses.adversarial import critic_loss, generator_adversarial_loss, gradient_penalty
from lbam.losses.inpainting import InpaintingLoss, LossWeights
from lbam.losses.vgg import VGG16Features, load_vgg16

__all__ = [
    "InpaintingLoss",
    "LossWeights",
    "VGG16Features",
    "critic_loss",
    "generator_adversarial_loss",
    "gradient_penalty",
    "load_vgg16",
]

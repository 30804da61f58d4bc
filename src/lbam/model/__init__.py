"""Generators (LBAM, PConv), the two-column critic, and loading/saving of weights."""

from lbam.model.lbam import LBAMConfig, LBAMGenerator, asymmetric_gaussian, mask_update
from lbam.model.loading import load_model, save_model
from lbam.model.registry import ARCHITECTURES, build_generator

__all__ = [
    "ARCHITECTURES",
    "LBAMConfig",
    "LBAMGenerator",
    "asymmetric_gaussian",
    "build_generator",
    "load_model",
    "mask_update",
    "save_model",
]

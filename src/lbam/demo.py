"""The first-minute demo: the bundled CC0 photo, a bundled mask; the network alone, lbam's default
(texture from the photo) and OpenCV's methods."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from lbam.defaults import DEFAULT_MODEL
from lbam.evaluation.methods import OpenCVInpaint
from lbam.evaluation.report import labelled_sheet, show_hole
from lbam.imaging.io import load_rgb
from lbam.imaging.masks import read_mask
from lbam.imaging.metrics import psnr, ssim
from lbam.imaging.pixels import to_uint8
from lbam.imaging.png import write_png
from lbam.inference.pipeline import get_model, inpaint


def demo_inputs() -> tuple[np.ndarray, np.ndarray]:
    """The bundled photo (H, W, 3) uint8 and its known mask (H, W) bool, True = known."""
    assets = resources.files("lbam") / "assets"
    with resources.as_file(assets / "demo_photo.jpg") as path:
        photo = np.array(load_rgb(path))
    with resources.as_file(assets / "demo_mask.png") as path:
        hole = read_mask(path)
    return photo, ~hole


def scores(result: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """PSNR (dB) and SSIM of a uint8 result against the uint8 ground truth, on [0, 1] images."""
    x, y = (torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255 for a in (result, truth))
    return float(psnr(x, y)), float(ssim(x, y))


def run_demo(
    out: str | os.PathLike, model: str | os.PathLike | None = None, device: str = "auto"
) -> dict[str, tuple[float, float]]:
    """Write the side-by-side picture to ``out``; returns {method: (PSNR, SSIM)}: the network alone
    under the model's name, ``texture (default)`` for lbam's default, ``telea`` and ``navier-stokes``."""
    photo, known = demo_inputs()
    generator = get_model(model or DEFAULT_MODEL, device)
    model_name = Path(str(model)).stem if model else DEFAULT_MODEL
    # the same hole for every method: no dilation
    results = {
        model_name: inpaint(photo, ~known, model=generator, strategy="full", dilate=0, refine="none"),
        "texture (default)": inpaint(photo, ~known, model=generator, strategy="full", dilate=0),
    }
    unit = photo.astype(np.float32) / 255
    for name, method in (("telea", OpenCVInpaint("telea")), ("navier-stokes", OpenCVInpaint("ns"))):
        results[name] = to_uint8(method.inpaint(unit, known))
    table = {name: scores(result, photo) for name, result in results.items()}

    tiles = [("input (hole in white)", show_hole(photo, known)), ("ground truth", photo)]
    for name, result in results.items():
        psnr_db, ssim_value = table[name]
        tiles.append((f"{name}: PSNR {psnr_db:.2f} dB, SSIM {ssim_value:.3f}", result))
    grid = labelled_sheet(tiles, per_row=3)
    write_png(Path(out), grid)
    return table

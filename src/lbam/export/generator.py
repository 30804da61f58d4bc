"""Export the generator of a training run to a weight file that ``lbam.load_model`` reads.

lbam export runs/first model.safetensors                 # the best checkpoint (else the latest)
lbam export runs/first model.safetensors --checkpoint 4000 --fp16
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

from lbam.defaults import DEFAULT_TRAIN_SIZE
from lbam.errors import LbamError
from lbam.model.loading import load_state_strict, save_model
from lbam.model.registry import build_generator
from lbam.training import checkpoint as ckpt
from lbam.training.config import upgrade_config_data


def generator_from_run(
    run_dir: str | os.PathLike, which: str | int | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """The generator of a run's checkpoint, in eval mode, and that checkpoint's ``meta.json``.

    Args:
        run_dir: a folder written by ``lbam train``.
        which: ``"best"``, ``"latest"``, a step number, or None for the best checkpoint when the
            run has one and the latest otherwise.

    Raises:
        LbamError: no such run or checkpoint, a corrupt checkpoint, or weights that do not fit the
            model the checkpoint's config describes.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LbamError(f"run folder not found: {run_dir}")
    if which is None:
        which = ckpt.BEST_NAME if ckpt.best_checkpoint(run_dir / "checkpoints") is not None else "latest"
    directory = ckpt.find_checkpoint(run_dir, which)
    state, meta = ckpt.load_generator_state(directory)
    model_section = upgrade_config_data(meta.get("config") or {}).get("model") or {}
    try:
        crop = (meta.get("config") or {}).get("data", {}).get("crop_size")
        model = build_generator(
            model_section.get("architecture", "lbam"),
            train_size=crop if isinstance(crop, int) else DEFAULT_TRAIN_SIZE,
            **(model_section.get("generator") or {}),
        )
    except LbamError as error:
        raise LbamError(
            f"checkpoint {directory} describes a generator this lbam cannot build: {error}"
        ) from None
    load_state_strict(model, state, f"checkpoint {directory}")
    meta["checkpoint_dir"] = str(directory)
    return model.eval(), meta


def export_generator(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    which: str | int | None = None,
    half: bool = False,
) -> Path:
    """Write the generator of a run's checkpoint to ``out`` (safetensors, via ``save_model``).

    The file's ``source`` metadata names the run folder, the checkpoint, its step and, when known,
    its validation PSNR/SSIM. ``half`` stores float16 weights (half the size; loads as float32).
    """
    out = Path(out)
    if out.suffix != ".safetensors":
        raise LbamError(f"export writes a .safetensors file, got {out}")
    if out.resolve().is_relative_to(Path(run_dir).resolve() / "checkpoints"):
        raise LbamError(f"refusing to write into the run's checkpoints folder: {out}")
    model, meta = generator_from_run(run_dir, which)
    source = f"lbam train run {Path(run_dir).resolve()}, checkpoint {Path(meta['checkpoint_dir']).name}, step {meta['step']}"
    metrics = meta.get("metrics") or {}
    if "psnr" in metrics:
        source += f", validation PSNR {metrics['psnr']:.3f} dB"
    if "ssim" in metrics:
        source += f", SSIM {metrics['ssim']:.4f}"
    return save_model(model, out, source=source, half=half)

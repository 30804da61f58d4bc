"""Small shared pieces of the training tests: a tiny photo folder and a tiny, fast config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lbam.training.config import TrainConfig, load_train_config


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Run the module's training on one thread (import this fixture into a test module to use it).

    On a small shared machine, two OpenMP threads competing with other processes for the cores
    made the tiny steps up to 30 times slower (0.09 s -> 8 s per step); one thread is steady.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_photos(folder: Path, count: int = 6, size: tuple[int, int] = (170, 150), seed: int = 0) -> Path:
    """``count`` smooth synthetic RGB photos (width x height ``size``) as PNG files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(count):
        fx, fy, phase = rng.uniform(0.01, 0.06, size=2).tolist() + [rng.uniform(0, 6.28)]
        channels = [
            127.5 + 127.5 * np.sin(fx * x + phase),
            127.5 + 127.5 * np.cos(fy * y + phase * 0.5),
            127.5 + 127.5 * np.sin(fx * x + fy * y),
        ]
        pixels = np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"photo_{i:02d}.png")
    return folder


def tiny_config(data_dir: Path, out_dir: Path, steps: int = 4, **overrides: object) -> TrainConfig:
    """A VGG-free config that trains in well under a second per step on a CPU.

    LBAM released variant at width 0.0625, 128 px crops, batch 2, noise + box masks, critic on
    (width 0.0625, no norm). ``overrides`` are dotted keys with ``__`` for ``.``, e.g.
    ``train__batch_size=4``.
    """
    settings: list[str | tuple[str, object]] = [
        ("data.train_dir", str(data_dir)),
        ("train.out_dir", str(out_dir)),
        ("train.steps", steps),
        ("masks", [{"kind": "noise", "weight": 1}, {"kind": "lama_boxes", "weight": 1}]),
        ("model.generator.width", 0.0625),
        ("model.critic_width", 0.0625),
        ("model.critic_norm", "none"),
        ("data.crop_size", 128),
        ("data.load_size", 144),
        ("data.num_workers", 0),
        ("data.val_count", 2),
        ("train.batch_size", 2),
        ("train.log_every", 1),
        ("train.val_every", 1000),
        ("train.sample_every", 1000),
        ("train.checkpoint_every", 1000),
        ("train.device", "cpu"),
        ("losses.adversarial", 0.01),
    ]
    settings += [(key.replace("__", "."), value) for key, value in overrides.items()]
    return load_train_config("compact_cpu", settings)


def tiny_cli_args(data_dir: Path, out_dir: Path, steps: int = 4) -> list[str]:
    """The command-line equivalent of :func:`tiny_config` (for ``lbam train``)."""
    return [
        "train",
        "--config",
        "compact_cpu",
        "--data",
        str(data_dir),
        "--out",
        str(out_dir),
        "--steps",
        str(steps),
        "--masks",
        "noise:1,lama_boxes:1",
        "--width",
        "0.0625",
        "--crop-size",
        "128",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--set",
        "model.critic_width=0.0625",
        "--set",
        "model.critic_norm=none",
        "--set",
        "data.load_size=144",
        "--set",
        "data.num_workers=0",
        "--set",
        "data.val_count=2",
        "--set",
        "train.log_every=1",
        "--set",
        "train.val_every=1000",
        "--set",
        "train.sample_every=1000",
        "--set",
        "train.checkpoint_every=1000",
        "--set",
        "losses.adversarial=0.01",
    ]


def drop_meta_digest(checkpoint_dir: Path) -> None:
    """Make a checkpoint look as lbam wrote them before its state file held meta.json's digest."""
    import json

    from safetensors.torch import load_file, save_file

    from lbam.training import checkpoint as ckpt

    state_file, meta_file = checkpoint_dir / ckpt.STATE_FILE, checkpoint_dir / ckpt.META_FILE
    save_file(load_file(str(state_file)), str(state_file), metadata={"format": ckpt.FORMAT})
    meta = json.loads(meta_file.read_text())
    meta["state_bytes"], meta["state_sha256"] = state_file.stat().st_size, ckpt.file_sha256(state_file)
    meta_file.write_text(json.dumps(meta))

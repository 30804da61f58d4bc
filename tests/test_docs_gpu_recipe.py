"""The GPU recipe: its data pack, its config, and gpu_run.sh end to end (here on the CPU, a few steps)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from lbam.features.stlpips import load_stlpips_vgg
from lbam.model.loading import load_model
from lbam.training.config import load_train_config
from training_helpers import make_photos

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "docs" / "recipes"
spec = importlib.util.spec_from_file_location("pack_data", RECIPES / "pack_data.py")
pack = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pack)


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("data")
    make_photos(data / "train", count=4, size=(700, 600))
    make_photos(data / "val", count=2, size=(300, 260), seed=1)
    out = data / ".gpudata"
    assert pack.main([str(data), str(out)]) == 0
    return out


def test_the_pack_holds_shrunk_photos_and_the_loss_layers(packed):
    sizes = [Image.open(p).size for p in sorted((packed / "train").iterdir())]
    assert len(sizes) == 4 and all(min(s) == 512 for s in sizes)  # 700x600 -> shorter side 512
    assert sorted(Image.open(p).size for p in (packed / "val").iterdir()) == [(300, 260)] * 2  # kept
    layers = packed / "vgg_loss_layers.pth"
    assert layers.stat().st_size < 8e6  # the wheel's file is 59 MB
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        trimmed, full = load_stlpips_vgg(layers)(image), load_stlpips_vgg()(image)
    assert len(trimmed) == len(full) == 3
    assert all(torch.equal(a, b) for a, b in zip(trimmed, full, strict=True))


def test_the_gpu_config_loads():
    config = load_train_config(RECIPES / "lbam-compact-gpu.yaml")
    assert config.train.device == "auto" and config.train.batch_size == 32 and not config.train.amp
    assert config.losses.feature_scale == 1.0 and config.model.init_weights == "lbam-compact"
    assert config.optim.decay_steps == config.train.steps


@pytest.mark.slow
def test_gpu_run_trains_and_exports(packed, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    env = {
        **os.environ,
        "OUT": str(out),
        "DATA": str(packed),
        "RUN": str(tmp_path / "run"),
        "MINUTES": "3",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # python3 = this one
    }
    tiny = ["--steps", "2", "--batch-size", "2", "--crop-size", "128", "--device", "cpu"]
    for setting in (
        "data.num_workers=0",
        "data.load_size=144",
        "data.max_load_size=null",
        "data.val_count=2",
        "train.val_every=1",
        "train.checkpoint_every=1",
        "losses.feature_precision=fp32",
    ):
        tiny += ["--set", setting]
    done = subprocess.run(
        ["bash", str(RECIPES / "gpu_run.sh"), *tiny], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == [
        "best.safetensors",
        "config.yaml",
        "latest.safetensors",
        "metrics.jsonl",
        "train.log",
    ]
    model = load_model(out / "latest.safetensors")
    assert model.config.width == 0.25 and next(model.parameters()).dtype == torch.float32
    assert f"stlpips={packed}/vgg_loss_layers.pth" in (out / "config.yaml").read_text()
    assert "finished 2 steps" in (out / "train.log").read_text()

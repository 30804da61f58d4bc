"""Exact resume: 4 steps straight == 2 steps + resume + 2 steps, bitwise on the CPU.

Uses the tiny LBAM (width 0.0625, 128 px, batch 2) with the critic and gradient penalty on, so
every state a checkpoint must carry (generator, critic, both Adams, RNGs) is exercised.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from lbam.cli.main import main
from lbam.model.upsampling import project_to_resize_conv
from lbam.training import checkpoint as ckpt
from lbam.training import trainer
from lbam.training.logs import read_metrics
from lbam.training.trainer import load_run_config, train
from training_helpers import drop_meta_digest, make_photos, one_thread, tiny_cli_args, tiny_config  # noqa: F401 (autouse fixture)


def _weights(run_dir: Path, step: int) -> dict[str, torch.Tensor]:
    state = load_file(str(run_dir / "checkpoints" / ckpt.checkpoint_name(step) / "state.safetensors"))
    return {k: v for k, v in state.items() if not k.startswith("rng.")}


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [key for key in a if not torch.equal(a[key], b[key])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def straight_run(photos, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    started = time.perf_counter()
    result = train(tiny_config(photos, run_dir, steps=4, train__sample_every=2))
    print(f"4 tiny steps with critic: {time.perf_counter() - started:.2f} s including set-up")
    assert (result.step, result.interrupted) == (4, False)
    return run_dir


def test_run_folder_layout(straight_run):
    assert (straight_run / "config.yaml").is_file()
    assert (straight_run / "train.log").is_file()
    assert any((straight_run / "tb").iterdir())
    names = sorted(p.name for p in (straight_run / "checkpoints").iterdir())
    assert names == ["best_00000004", "best_checkpoint", "latest", "step_00000004"]
    assert (straight_run / "checkpoints" / "latest").read_text().strip() == "step_00000004"
    # sample grids: one row per validation image (2 here), columns input / output / composite / target
    samples = sorted(p.name for p in (straight_run / "samples").iterdir())
    assert samples == ["samples_00000002.png", "samples_00000004.png"]
    with Image.open(straight_run / "samples" / samples[0]) as grid:
        assert grid.size == (4 * 128 + 3 * 2, 2 * 128 + 2)
    records = read_metrics(straight_run / "metrics.jsonl")
    train_steps = [r["step"] for r in records if "train/g_total" in r]
    assert train_steps == [1, 2, 3, 4]
    for key in (
        "train/hole",
        "train/valid",
        "train/ssim",
        "train/d_loss",
        "train/gradient_penalty",
        "lr/generator",
    ):
        assert key in records[0], key
    validation = [r for r in records if "val/psnr" in r]
    assert len(validation) == 1 and validation[0]["step"] == 4 and 5 < validation[0]["val/psnr"] < 60
    assert "held out for validation" in (straight_run / "train.log").read_text()
    assert "finished 4 steps" in (straight_run / "train.log").read_text()
    # the resolved config is what --resume reads back
    config = load_run_config(straight_run)
    assert config.train.steps == 4 and config.model.generator["width"] == 0.0625


def test_two_steps_then_resume_equals_four_steps(photos, straight_run, tmp_path):
    run_dir = tmp_path / "run"
    first = train(tiny_config(photos, run_dir, steps=2))
    assert first.step == 2
    resumed = train(load_run_config(run_dir, ["train.steps=4"]), run_dir, resume=True)
    assert (resumed.step, resumed.interrupted) == (4, False)
    _assert_identical(_weights(straight_run, 4), _weights(run_dir, 4))
    assert "resumed from step 2" in (run_dir / "train.log").read_text()
    # metrics.jsonl has one training record per step, across both sessions
    steps = [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if "train/g_total" in r]
    assert steps == [1, 2, 3, 4]


def _three_steps_straight_and_split(photos: Path, tmp_path: Path, settings: dict) -> Path:
    """Train 3 steps at once and 2 + 1 with a resume; assert equal weights; the split run's folder."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train(tiny_config(photos, straight, steps=3, **settings)).step == 3
    assert train(tiny_config(photos, split, steps=2, **settings)).step == 2
    assert train(load_run_config(split, ["train.steps=3"]), split, resume=True).step == 3
    _assert_identical(_weights(straight, 3), _weights(split, 3))
    return split


def test_resume_is_exact_with_bf16_features_and_tv(photos, tmp_path):
    """The bf16 feature network and the TV term keep a run bit-exact across a resume."""
    settings = {
        "losses__perceptual": 0.05,
        "losses__style": 50.0,
        "losses__tv": 0.5,
        "losses__allow_random_vgg": True,
        "losses__feature_precision": "bf16",
        "losses__feature_scale": 0.5,
        "losses__adversarial": 0.0,
    }
    split = _three_steps_straight_and_split(photos, tmp_path, settings)
    records = [r for r in read_metrics(split / "metrics.jsonl") if "train/tv" in r]
    assert [r["step"] for r in records] == [1, 2, 3] and all(r["train/style"] > 0 for r in records)


def test_resume_is_exact_with_the_patch_critic_and_drift(photos, tmp_path):
    """The patch critic and its drift term resume bit-exactly; the drift pulls real scores to 0."""
    settings = {"model__critic": "patch", "losses__critic_drift": 0.001}
    split = _three_steps_straight_and_split(photos, tmp_path, settings)
    records = [r for r in read_metrics(split / "metrics.jsonl") if "train/real_score" in r]
    assert [r["step"] for r in records] == [1, 2, 3]
    # d_loss = -wasserstein + 10 * penalty + 0.001 * mean(real^2), and mean(real^2) >= mean(real)^2
    for r in records:
        drift_part = r["train/d_loss"] + r["train/wasserstein"] - 10 * r["train/gradient_penalty"]
        assert drift_part >= 0.001 * r["train/real_score"] ** 2 - 1e-6
    assert load_run_config(split).model.critic == "patch"


def test_resume_is_exact_with_tied_upsampling_and_a_lazy_penalty(photos, tmp_path):
    """resize_conv kernels stay tied through the run and its resume; the penalty runs every 2nd update."""
    settings = {"model__upsampling": "resize_conv", "model__critic": "patch", "optim__penalty_every": 2}
    split = _three_steps_straight_and_split(photos, tmp_path, settings)
    weights = _weights(split, 3)
    deconvs = [
        k for k in weights if k.startswith("generator.") and k.endswith(("deconv.weight", "head.weight"))
    ]
    assert len(deconvs) == 7
    for key in deconvs:
        torch.testing.assert_close(project_to_resize_conv(weights[key]), weights[key], rtol=0, atol=1e-6)
    assert "7 transposed convolutions tied" in (split / "train.log").read_text()
    penalties = [
        r["train/gradient_penalty"] for r in read_metrics(split / "metrics.jsonl") if "train/d_loss" in r
    ]
    assert len(penalties) == 3 and penalties[0] > 0 and penalties[1] == 0 and penalties[2] > 0


def test_runs_from_before_the_critic_choice_resume_with_the_two_column_critic(photos, straight_run, tmp_path):
    run_dir = tmp_path / "old"
    shutil.copytree(straight_run, run_dir)
    config_file = run_dir / "config.yaml"
    text = config_file.read_text()
    assert "  critic: two_column\n" in text
    config_file.write_text(text.replace("  critic: two_column\n", ""))
    meta_file = run_dir / "checkpoints" / "step_00000004" / ckpt.META_FILE
    drop_meta_digest(meta_file.parent)  # as lbam wrote checkpoints then
    meta = json.loads(meta_file.read_text())
    del meta["config"]["model"]["critic"]
    meta_file.write_text(json.dumps(meta))
    assert load_run_config(run_dir).model.critic == "two_column"
    assert train(load_run_config(run_dir, ["train.steps=5"]), run_dir, resume=True).step == 5
    assert (
        "config.yaml: model.critic 'two_column' (added: the run predates the key)"
        in (run_dir / "train.log").read_text()
    )
    assert "  critic: two_column\n" in config_file.read_text()


def _best_step(run_dir: Path) -> int:
    return int(ckpt.best_checkpoint(run_dir / "checkpoints").name.split("_")[1])


def test_select_by_st_lpips_keeps_the_lowest_and_a_resume_may_switch_metric(photos, tmp_path):
    run_dir = tmp_path / "run"
    settings = {"train__val_every": 1, "train__select_by": "st_lpips", "train__keep_last": 10}
    assert train(tiny_config(photos, run_dir, steps=4, **settings)).step == 4
    validation = [r for r in read_metrics(run_dir / "metrics.jsonl") if "val/psnr" in r]
    distances = {r["step"]: r["val/st_lpips"] for r in validation}
    assert sorted(distances) == [1, 2, 3, 4] and all(0 < d < 1 for d in distances.values())
    assert _best_step(run_dir) == min(distances, key=distances.get)
    assert "ST-LPIPS" in (run_dir / "train.log").read_text()
    # Switching to SSIM on resume: the ST-LPIPS best is not comparable, so step 5 becomes best.
    resumed = train(load_run_config(run_dir, ["train.steps=6", "train.select_by=ssim"]), run_dir, resume=True)
    assert resumed.step == 6
    validation = [r for r in read_metrics(run_dir / "metrics.jsonl") if "val/ssim" in r and r["step"] > 4]
    ssim = {r["step"]: r["val/ssim"] for r in validation}
    assert sorted(ssim) == [5, 6] and "val/st_lpips" not in validation[0]
    assert _best_step(run_dir) == max(ssim, key=ssim.get)
    assert resumed.best_score == max(ssim.values())
    # The overrides are written into config.yaml: a plain resume keeps SSIM and the new length.
    log = (run_dir / "train.log").read_text()
    assert "config.yaml: train.select_by 'st_lpips' -> 'ssim'" in log and "train.steps 4 -> 6" in log
    assert load_run_config(run_dir).train.select_by == "ssim"
    assert load_run_config(run_dir).train.steps == 6


@pytest.mark.parametrize("native", [False, True])
def test_bf16_features_warn_where_bfloat16_is_emulated(photos, tmp_path, monkeypatch, native):
    """An AVX2 CPU emulates bf16: a step of the v2 recipe took 12x fp32's, so the run says so."""
    from lbam.training import setup

    monkeypatch.setattr(setup, "bf16_supported", lambda device: native)
    settings = {
        "losses__perceptual": 0.05,
        "losses__allow_random_vgg": True,
        "losses__feature_precision": "bf16",
        "losses__adversarial": 0.0,
    }
    assert train(tiny_config(photos, tmp_path / "run", steps=1, **settings)).step == 1
    warned = "no native bfloat16" in (tmp_path / "run" / "train.log").read_text()
    assert warned is not native


def test_signal_stops_after_the_step_with_a_checkpoint_and_resume_is_exact(
    photos, straight_run, tmp_path, monkeypatch, capsys
):
    run_dir = tmp_path / "run"
    original_step = trainer.train_step
    calls = []

    def step_then_sigterm(*args, **kwargs):
        values = original_step(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:  # as if `kill -TERM` arrived during the second step
            os.kill(os.getpid(), signal.SIGTERM)
        return values

    monkeypatch.setattr(trainer, "train_step", step_then_sigterm)
    result = train(tiny_config(photos, run_dir, steps=4))
    assert (result.step, result.interrupted) == (2, True)
    assert len(calls) == 2
    assert ckpt.find_checkpoint(run_dir, "latest").name == "step_00000002"
    log_text = (run_dir / "train.log").read_text()
    assert f"interrupted at step 2; resume with lbam train --resume {run_dir}" in log_text
    assert signal.getsignal(signal.SIGTERM) is not None  # the previous handler is back
    monkeypatch.setattr(trainer, "train_step", original_step)

    resumed = train(load_run_config(run_dir), run_dir, resume=True)
    assert (resumed.step, resumed.interrupted) == (4, False)
    _assert_identical(_weights(straight_run, 4), _weights(run_dir, 4))


def test_resume_of_a_finished_run_asks_for_more_steps(straight_run):
    from lbam.errors import LbamError

    with pytest.raises(LbamError, match="already at step 4 of train.steps=4; pass --steps"):
        train(load_run_config(straight_run), straight_run, resume=True)


@pytest.mark.slow
def test_cli_sigterm_exits_cleanly_and_resumes(photos, tmp_path):
    run_dir = tmp_path / "run"
    args = tiny_cli_args(photos, run_dir, steps=100_000)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "lbam", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        metrics = run_dir / "metrics.jsonl"
        while time.monotonic() < deadline and process.poll() is None:
            if metrics.is_file() and len(read_metrics(metrics)) >= 2:
                break
            time.sleep(0.2)
        assert process.poll() is None, process.communicate()[1]
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    stopped = ckpt.load_checkpoint(ckpt.find_checkpoint(run_dir, "latest")).step
    assert stopped >= 2
    assert f"interrupted at step {stopped}; resume with lbam train --resume {run_dir}" in stderr
    # continue for two more steps through the command line
    assert main(["train", "--resume", str(run_dir), "--steps", str(stopped + 2)]) == 0
    assert ckpt.find_checkpoint(run_dir, "latest").name == ckpt.checkpoint_name(stopped + 2)


def test_training_leaves_no_global_state_changed(photos, tmp_path):
    import numpy as np

    torch.manual_seed(1234)
    np.random.seed(99)
    before = (torch.get_rng_state(), np.random.get_state()[1].copy(), torch.get_float32_matmul_precision())
    benchmark = torch.backends.cudnn.benchmark
    train(tiny_config(photos, tmp_path / "run", steps=1))
    assert torch.equal(torch.get_rng_state(), before[0])
    assert np.array_equal(np.random.get_state()[1], before[1])
    assert torch.get_float32_matmul_precision() == before[2]
    assert torch.backends.cudnn.benchmark == benchmark

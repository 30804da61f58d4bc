"""The learning-rate schedule: its values, its checks, and exact resume with it."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from lbam.errors import LbamError
from lbam.training import checkpoint as ckpt
from lbam.training.config import load_train_config
from lbam.training.logs import read_metrics
from lbam.training.schedule import lr_factor
from lbam.training.trainer import load_run_config, train
from training_helpers import one_thread, tiny_config  # noqa: F401 (autouse fixture)

SCHEDULE = {"optim__warmup_steps": 2, "optim__decay_steps": 4, "optim__min_lr_ratio": 0.1}


def test_warm_up_then_cosine_then_floor():
    factors = [lr_factor(step, warmup_steps=2, decay_steps=6, min_ratio=0.1) for step in range(8)]
    assert factors[:2] == [0.5, 1.0]  # the update that makes step 1 uses half the rate
    assert factors[2] == 1.0  # the cosine starts at the top
    assert factors[4] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert factors[6] == factors[7] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(factors[2:], factors[3:], strict=False))
    assert [lr_factor(step) for step in range(3)] == [1.0, 1.0, 1.0]  # the paper: constant


def test_bad_schedules_are_refused():
    with pytest.raises(LbamError, match="decay_steps"):
        load_train_config("compact_cpu", ["optim.warmup_steps=10", "optim.decay_steps=5"])
    with pytest.raises(LbamError, match="min_lr_ratio"):
        load_train_config("compact_cpu", ["optim.min_lr_ratio=2"])


def _weights(run_dir, step):
    state = load_file(str(run_dir / "checkpoints" / ckpt.checkpoint_name(step) / "state.safetensors"))
    return {k: v for k, v in state.items() if not k.startswith("rng.")}


def test_resume_with_a_schedule_is_exact(photos, tmp_path):
    straight = tmp_path / "straight"
    train(tiny_config(photos, straight, steps=4, **SCHEDULE))
    resumed = tmp_path / "resumed"
    train(tiny_config(photos, resumed, steps=2, **SCHEDULE))
    train(load_run_config(resumed, ["train.steps=4"]), resumed, resume=True)
    a, b = _weights(straight, 4), _weights(resumed, 4)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rates = [r["lr/generator"] for r in read_metrics(straight / "metrics.jsonl") if "lr/generator" in r]
    base = 1e-4  # compact_cpu's g_lr
    expected = [base * lr_factor(step, 2, 4, 0.1) for step in range(4)]
    assert rates == pytest.approx(expected)

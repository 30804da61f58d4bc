"""Training checkpoints: round trip of every state, atomic writes, pruning, corrupt files."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from torch import nn

from lbam.errors import LbamError
from lbam.model.loading import load_state_strict
from lbam.training import checkpoint as ckpt
from lbam.training.sampler import StepBatchSampler, epoch_permutation
from training_helpers import drop_meta_digest


def _trained_pair() -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 1, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.9))
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.rand(2, 3, 8, 8)).square().mean().backward()
        optimizer.step()
    return model, optimizer


def _state(step: int = 7) -> ckpt.TrainingState:
    model, optimizer = _trained_pair()
    return ckpt.TrainingState(
        step=step,
        config={"model": {"architecture": "lbam", "width": 0.5}},
        generator=model.state_dict(),
        g_optimizer=optimizer.state_dict(),
        critic=model.state_dict(),
        d_optimizer=optimizer.state_dict(),
        scalers={"g": {"scale": 1024.0, "_growth_tracker": 3}},
        rng=ckpt.capture_rng_state(),
        best_score=0.18,
        select_by="st_lpips",
        metrics={"psnr": 21.5, "ssim": 0.75, "st_lpips": 0.18},
    )


def test_checkpoints_from_before_select_by_keep_their_best_psnr(tmp_path):
    path = ckpt.save_checkpoint(tmp_path, ckpt.checkpoint_name(7), _state())
    drop_meta_digest(path)
    meta = json.loads((path / ckpt.META_FILE).read_text())
    del meta["best_score"], meta["select_by"]
    meta["best_psnr"] = 21.5  # how lbam 0.1 wrote it
    (path / ckpt.META_FILE).write_text(json.dumps(meta))
    loaded = ckpt.load_checkpoint(path)
    assert (loaded.best_score, loaded.select_by) == (21.5, "psnr")


def test_round_trip_restores_models_optimisers_and_metadata(tmp_path):
    state = _state()
    path = ckpt.save_checkpoint(tmp_path, ckpt.checkpoint_name(7), state)
    assert path.name == "step_00000007"
    assert sorted(p.name for p in path.iterdir()) == ["meta.json", "state.safetensors"]
    loaded = ckpt.load_checkpoint(path)
    assert (loaded.step, loaded.best_score, loaded.select_by) == (7, 0.18, "st_lpips")
    assert loaded.metrics == {"psnr": 21.5, "ssim": 0.75, "st_lpips": 0.18}
    assert loaded.config == state.config and loaded.scalers == state.scalers
    for key, value in state.generator.items():
        assert torch.equal(loaded.generator[key], value), key
        assert torch.equal(loaded.critic[key], value), key

    # the optimiser continues exactly as the original one would
    model_a, optimizer_a = _trained_pair()
    model_b, optimizer_b = _trained_pair()
    fresh = torch.optim.Adam(model_b.parameters(), lr=1.0, betas=(0.1, 0.2))
    fresh.load_state_dict(loaded.g_optimizer)
    assert fresh.param_groups[0]["lr"] == 1e-3 and tuple(fresh.param_groups[0]["betas"]) == (0.5, 0.9)
    batch = torch.rand(2, 3, 8, 8)
    for model, optimizer in ((model_a, optimizer_a), (model_b, fresh)):
        optimizer.zero_grad()
        model(batch).square().mean().backward()
        optimizer.step()
    for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(a, b)


def test_rng_states_are_restored(tmp_path):
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    path = ckpt.save_checkpoint(tmp_path, "step_00000001", _state(1))  # captures the RNGs last
    expected = (torch.rand(3), np.random.rand(3), random.random())  # what comes after the capture
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    ckpt.restore_rng_state(ckpt.load_checkpoint(path).rng)
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0])
    assert np.array_equal(got[1], expected[1])
    assert got[2] == expected[2]


def test_save_replaces_atomically_and_leaves_no_temporaries(tmp_path):
    ckpt.save_checkpoint(tmp_path, "best", _state(1))
    ckpt.save_checkpoint(tmp_path, "best", _state(2))
    assert ckpt.load_checkpoint(tmp_path / "best").step == 2
    assert [p.name for p in tmp_path.iterdir()] == ["best"]


def test_failed_save_keeps_the_previous_checkpoint(tmp_path):
    ckpt.save_checkpoint(tmp_path, "best", _state(1))
    broken = _state(2)
    broken.generator = {"shared": torch.zeros(2), "bad": "not a tensor"}  # type: ignore[dict-item]
    with pytest.raises(Exception):  # noqa: B017 - any failure inside the write must leave "best" intact
        ckpt.save_checkpoint(tmp_path, "best", broken)
    assert ckpt.load_checkpoint(tmp_path / "best").step == 1
    assert [p.name for p in tmp_path.iterdir()] == ["best"]


def test_latest_pointer_pruning_and_lookup(tmp_path):
    run = tmp_path / "run"
    root = run / "checkpoints"
    for step in (100, 200, 300, 400):
        path = ckpt.save_checkpoint(root, ckpt.checkpoint_name(step), _state(step))
        ckpt.write_latest(root, path.name)
        ckpt.prune_checkpoints(root, keep_last=2)
    ckpt.save_checkpoint(root, ckpt.BEST_NAME, _state(200))
    assert [step for step, _ in ckpt.step_checkpoints(root)] == [300, 400]
    assert ckpt.find_checkpoint(run, "latest").name == "step_00000400"
    assert ckpt.find_checkpoint(run, "best").name == "best"
    assert ckpt.find_checkpoint(run, 300).name == "step_00000300"
    assert ckpt.find_checkpoint(run, "300").name == "step_00000300"
    with pytest.raises(LbamError, match="no checkpoint for step 100; available: 300, 400"):
        ckpt.find_checkpoint(run, 100)
    with pytest.raises(LbamError, match="latest, best or a step number"):
        ckpt.find_checkpoint(run, "newest")
    with pytest.raises(LbamError, match="no checkpoint in"):
        ckpt.find_checkpoint(tmp_path / "empty_run", "latest")


def test_truncated_state_file_is_a_clear_error(tmp_path):
    path = ckpt.save_checkpoint(tmp_path, "step_00000005", _state(5))
    state_file = path / "state.safetensors"
    data = state_file.read_bytes()
    state_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(LbamError, match=r"corrupt checkpoint .*state.safetensors.*truncated"):
        ckpt.load_checkpoint(path)
    with pytest.raises(LbamError, match="corrupt checkpoint"):
        ckpt.load_generator_state(path)


def test_garbage_state_file_of_the_right_size_is_a_clear_error(tmp_path):
    path = ckpt.save_checkpoint(tmp_path, "step_00000005", _state(5))
    state_file = path / "state.safetensors"
    state_file.write_bytes(b"\0" * state_file.stat().st_size)
    with pytest.raises(LbamError, match="corrupt checkpoint"):
        ckpt.load_checkpoint(path)


@pytest.mark.parametrize(
    ("meta_text", "message"),
    [
        ("{not json", "corrupt checkpoint"),
        (json.dumps({"format": "something-else"}), "not an lbam training checkpoint"),
        (json.dumps({"format": ckpt.FORMAT, "version": 99}), "checkpoint version 99"),
    ],
)
def test_bad_meta_is_a_clear_error(tmp_path, meta_text, message):
    path = ckpt.save_checkpoint(tmp_path, "step_00000005", _state(5))
    (path / "meta.json").write_text(meta_text)
    with pytest.raises(LbamError, match=message):
        ckpt.load_checkpoint(path)


def test_missing_files_are_a_clear_error(tmp_path):
    with pytest.raises(LbamError, match="not a training checkpoint"):
        ckpt.load_checkpoint(tmp_path)


def test_load_state_strict_names_the_mismatching_key():
    small, big = nn.Linear(2, 3), nn.Linear(2, 4)
    with pytest.raises(LbamError, match=r"'weight' has shape \[4, 2\], the model has \[3, 2\]"):
        load_state_strict(small, big.state_dict(), "checkpoint X")
    with pytest.raises(LbamError, match="missing key 'bias'"):
        load_state_strict(small, {"weight": small.weight.detach()}, "checkpoint X")
    with pytest.raises(LbamError, match="unexpected key 'extra'"):
        load_state_strict(small, {**small.state_dict(), "extra": torch.zeros(1)}, "checkpoint X")


def test_sampler_union_of_ranks_is_the_global_batch_and_resume_skips_consumed_batches():
    indices = list(range(3, 23))  # 20 training images, e.g. after holding some out
    single = StepBatchSampler(indices, global_batch=4, seed=5)
    ranks = [StepBatchSampler(indices, global_batch=4, seed=5, rank=r, world_size=2) for r in range(2)]
    single_it, rank_its = iter(single), [iter(s) for s in ranks]
    seen_epoch0 = []
    for step in range(12):  # 5 steps per epoch: crosses two epoch boundaries
        expected = next(single_it)
        parts = [next(it) for it in rank_its]
        assert all(len(p) == 2 for p in parts)
        assert sorted(parts[0] + parts[1]) == sorted(expected)
        assert [i for _, i in expected] == single.global_batch_at(step)
        assert {e for e, _ in expected} == {step // 5}
        if step < 5:
            seen_epoch0 += [i for _, i in expected]
    assert sorted(seen_epoch0) == indices  # an epoch visits every image once
    resumed = iter(StepBatchSampler(indices, global_batch=4, seed=5, start_step=7))
    straight = iter(StepBatchSampler(indices, global_batch=4, seed=5))
    for _ in range(7):
        next(straight)
    assert [next(resumed) for _ in range(4)] == [next(straight) for _ in range(4)]
    assert epoch_permutation(20, 5, 0) != epoch_permutation(20, 5, 1)


def test_sampler_rejects_a_batch_that_does_not_split_over_processes():
    with pytest.raises(
        LbamError, match=r"batch_size \(4\) must be divisible by the number of processes \(3\)"
    ):
        StepBatchSampler(range(10), global_batch=4, seed=0, rank=0, world_size=3)
    with pytest.raises(LbamError, match="only 3 training images for a batch of 4"):
        StepBatchSampler(range(3), global_batch=4, seed=0)

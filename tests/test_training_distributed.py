"""DistributedDataParallel through torchrun: 2 CPU processes with gloo.

- With the critic on, the two replicas hold identical generator *and* critic weights after a few
  steps (the critic's gradients are averaged by hand, see lbam.training.distributed).
- With the critic off, 2 processes x batch 2 give the same generator as 1 process x batch 4 (up to
  float summation order). With the critic on they would not: each process draws its own gradient
  penalty interpolation factors, and a batch-norm critic normalises over its own half batch.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lbam.training.logs import read_metrics
from training_helpers import make_photos, tiny_cli_args

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HELPER = str(Path(__file__).with_name("train_and_dump.py"))


def _launch(args: list[str], dump: Path, processes: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if processes > 1:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={processes}",
            "--master_addr=127.0.0.1",
            f"--master_port={_free_port()}",
            HELPER,
            str(dump),
            *args,
        ]
    else:
        command = [sys.executable, HELPER, str(dump), *args]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return time.perf_counter() - started


def _tiny_args(photos: Path, run_dir: Path, *extra: str) -> list[str]:
    return [*tiny_cli_args(photos, run_dir, steps=3), "--batch-size", "4", *extra]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return make_photos(tmp_path_factory.mktemp("photos"), count=8)


def test_replicas_stay_identical_with_the_critic_on(photos, tmp_path):
    seconds = _launch(_tiny_args(photos, tmp_path / "run"), tmp_path / "dump", processes=2)
    print(f"torchrun 2 x gloo, 3 steps with critic: {seconds:.1f} s")
    rank0 = load_file(str(tmp_path / "dump" / "rank0.safetensors"))
    rank1 = load_file(str(tmp_path / "dump" / "rank1.safetensors"))
    assert any(key.startswith("critic.") for key in rank0)
    assert rank0.keys() == rank1.keys()
    different = [key for key in rank0 if not torch.equal(rank0[key], rank1[key])]
    assert not different, f"replicas differ in {different[:5]}"
    # only rank 0 wrote logs and checkpoints, and it logged both processes
    run_dir = tmp_path / "run"
    assert (run_dir / "checkpoints" / "step_00000003").is_dir()
    assert "2 process(es) x batch 2" in (run_dir / "train.log").read_text()
    assert [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if "train/g_total" in r] == [1, 2, 3]


def test_two_processes_match_one_process_with_the_same_global_batch(photos, tmp_path):
    no_critic = ("--set", "losses.adversarial=0")
    _launch(_tiny_args(photos, tmp_path / "two", *no_critic), tmp_path / "dump_two", processes=2)
    _launch(_tiny_args(photos, tmp_path / "one", *no_critic), tmp_path / "dump_one", processes=1)
    two = load_file(str(tmp_path / "dump_two" / "rank0.safetensors"))
    one = load_file(str(tmp_path / "dump_one" / "rank0.safetensors"))
    assert two.keys() == one.keys() and not any(key.startswith("critic.") for key in one)
    worst = max((two[key] - one[key]).abs().max().item() for key in one)
    assert worst < 1e-5, f"largest weight difference {worst}"
    changed = max((one[key] - build_initial()[key]).abs().max().item() for key in one)
    assert changed > 1e-5, "training must have moved the weights for the comparison to mean anything"


def build_initial() -> dict[str, torch.Tensor]:
    """The generator the runs start from (seed 0), with the dump's key names."""
    from lbam.model.registry import build_generator

    torch.manual_seed(0)
    model = build_generator("lbam", width=0.0625)
    return {f"generator.{k}": v for k, v in model.state_dict().items()}

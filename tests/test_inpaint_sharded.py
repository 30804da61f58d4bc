"""``torchrun -m lbam inpaint FOLDER``: each process takes every N-th photo; together they write
exactly the files one process writes, and rank 0 prints one summary with every failure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from test_cli_inpaint import mask, photo, tiny_model  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args: list[str], processes: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}"]
    launcher += ["--master_addr=127.0.0.1", f"--master_port={_free_port()}", "-m", "lbam"]
    command = launcher if processes > 1 else [sys.executable, "-m", "lbam"]
    return subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=300)


def test_two_processes_write_what_one_writes(tmp_path, tiny_model):  # noqa: F811
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    for k in range(5):
        photo(photos / f"p{k}.png", seed=k)
        mask(masks / f"p{k}.png")
    photo(photos / "lonely.png", seed=9)  # no mask: a failure both runs must report once
    outputs = {}
    for processes in (1, 2):
        out = tmp_path / f"out{processes}"
        done = run(
            ["inpaint", str(photos), str(masks), "-o", str(out), "--model", str(tiny_model)], processes
        )
        assert done.returncode == 1, done.stderr[-2000:]  # 1: a photo failed
        assert done.stdout.count("inpainted 5 photos, copied 0 without hole, 1 failed") == 1
        assert done.stderr.count("lonely.png: no mask named") == 1
        outputs[processes] = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(outputs[1]) == [f"p{k}.png" for k in range(5)]
    assert outputs[1] == outputs[2]

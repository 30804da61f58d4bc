"""One trainer per run folder: a second one is refused before it touches anything."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lbam.cli.main import main
from lbam.errors import LbamError
from lbam.training.lock import LOCK_FILE, RunLock
from lbam.training.trainer import load_run_config, train
from training_helpers import make_photos, one_thread, tiny_config  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def finished_run(photos, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("locked") / "run"
    train(tiny_config(photos, run_dir, steps=2))
    return run_dir


def _snapshot(run_dir: Path) -> dict[str, tuple[int, int]]:
    """Every file but the lock, with its size and modification time."""
    return {
        str(p.relative_to(run_dir)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in run_dir.rglob("*")
        if p.is_file() and p.name != LOCK_FILE
    }


def test_a_held_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    with RunLock(tmp_path) as first:
        first.acquire()
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
        with pytest.raises(LbamError, match=rf"in use by another lbam train \(process {os.getpid()}\)"):
            RunLock(tmp_path).acquire()
    second = RunLock(tmp_path)
    second.acquire()  # released when the first block ended
    second.release()


def test_resume_of_a_run_in_use_is_refused_and_changes_nothing(finished_run, tmp_path):
    run_dir = shutil.copytree(finished_run, tmp_path / "run")
    before = _snapshot(run_dir)
    with RunLock(run_dir) as holder:
        holder.acquire()
        with pytest.raises(LbamError, match="is in use by another lbam train"):
            train(load_run_config(run_dir, ["train.steps=3"]), run_dir, resume=True)
        assert _snapshot(run_dir) == before
    assert train(load_run_config(run_dir, ["train.steps=3"]), run_dir, resume=True).step == 3


def test_the_cli_says_it_in_one_line_with_exit_2(finished_run, tmp_path, capsys):
    run_dir = shutil.copytree(finished_run, tmp_path / "run")
    with RunLock(run_dir) as holder:
        holder.acquire()
        code = main(["train", "--resume", str(run_dir), "--steps", "3"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "in use by another lbam train" in err


def test_a_new_run_into_a_folder_in_use_is_refused(photos, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with RunLock(run_dir) as holder:
        holder.acquire()
        with pytest.raises(LbamError, match="is in use by another lbam train"):
            train(tiny_config(photos, run_dir, steps=1))
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_FILE]
    # a folder holding only a lock file (what that refused start left) takes a new run
    assert train(tiny_config(photos, run_dir, steps=1)).step == 1

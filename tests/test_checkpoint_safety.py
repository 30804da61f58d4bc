"""Checkpoints survive crashes and say when they are damaged."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from lbam.cli.main import main
from lbam.config import dump_yaml
from lbam.errors import LbamError
from lbam.export.generator import export_generator
from lbam.training import checkpoint as ckpt
from lbam.training.trainer import load_run_config, train
from training_helpers import drop_meta_digest, one_thread, tiny_config  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def finished_run(photos, tmp_path_factory) -> Path:
    """3 steps, a checkpoint and a validation at steps 2 and 3."""
    run_dir = tmp_path_factory.mktemp("safety") / "run"
    train(
        tiny_config(
            photos, run_dir, steps=3, train__checkpoint_every=2, train__val_every=2, train__keep_last=5
        )
    )
    return run_dir


def copy_run(run_dir: Path, target: Path) -> Path:
    shutil.copytree(run_dir, target)
    return target


def resume(run_dir: Path, steps: int = 4, **kwargs) -> None:
    train(load_run_config(run_dir, [f"train.steps={steps}"]), run_dir, resume=True, **kwargs)


def test_a_crash_before_the_best_pointer_moves_keeps_and_recovers_the_best(finished_run, tmp_path):
    run_dir = copy_run(finished_run, tmp_path / "run")
    root = run_dir / "checkpoints"
    assert ckpt.best_checkpoint(root).name in ("best_00000002", "best_00000003")
    # As if the process died after writing a newer best folder but before pointing at it.
    newer = root / "best_00000009"
    shutil.copytree(ckpt.best_checkpoint(root), newer)
    (root / ckpt.BEST_POINTER).write_text("best_00000002\n")
    (root / ".step_00000004.tmpabc").mkdir()  # a half-written checkpoint of a killed write
    resume(run_dir)
    assert ckpt.best_checkpoint(root) is not None
    assert not any(p.name.startswith(".") for p in root.iterdir())
    assert "removed 1 half-written checkpoint folder" in (run_dir / "train.log").read_text()


def test_lbam_0_1_crash_between_the_two_renames_of_best_is_recovered(finished_run, tmp_path):
    run_dir = copy_run(finished_run, tmp_path / "run")
    root = run_dir / "checkpoints"
    best = ckpt.best_checkpoint(root)
    (root / ckpt.BEST_POINTER).unlink()
    os.replace(best, root / ".best.tmp-old1234")  # the old layout's folder, moved aside
    assert ckpt.recover(root) == ["restored the best checkpoint from .best.tmp-old1234"]
    assert ckpt.find_checkpoint(run_dir, "best") == root / "best"
    assert export_generator(run_dir, tmp_path / "m.safetensors", which="best").is_file()


@pytest.mark.parametrize("damage", ["flip", "swap"])
def test_a_damaged_latest_checkpoint_is_named_and_an_intact_one_offered(
    finished_run, tmp_path, damage, capsys
):
    run_dir = copy_run(finished_run, tmp_path / "run")
    latest = ckpt.find_checkpoint(run_dir, "latest") / ckpt.STATE_FILE
    if damage == "flip":
        data = bytearray(latest.read_bytes())
        data[-100] ^= 0x01  # one bit in a tensor
        latest.write_bytes(bytes(data))
    else:  # the same size, another step's tensors
        shutil.copyfile(ckpt.find_checkpoint(run_dir, 2) / ckpt.STATE_FILE, latest)
    code = main(["train", "--resume", str(run_dir), "--steps", "4"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "SHA-256 does not match" in err and str(latest) in err
    assert f"lbam train --resume {run_dir} --checkpoint 2" in err
    with pytest.raises(LbamError, match="SHA-256"):
        export_generator(run_dir, tmp_path / "m.safetensors", which="latest")
    assert main(["train", "--resume", str(run_dir), "--steps", "4", "--checkpoint", "2"]) == 0
    assert ckpt.find_checkpoint(run_dir, "latest").name == "step_00000004"


def test_a_run_killed_before_its_first_checkpoint_resumes_or_restarts(photos, tmp_path):
    run_dir = tmp_path / "run"
    config = tiny_config(photos, run_dir, steps=2)
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(dump_yaml(config))
    (run_dir / "train.log").write_text("killed at step 1\n")
    result = train(load_run_config(run_dir), run_dir, resume=True)  # resume: from step 0
    assert result.step == 2
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.yaml").write_text(dump_yaml(config))
    assert train(tiny_config(photos, other, steps=1)).step == 1  # a fresh start into it works too


@pytest.mark.parametrize("digest", [True, False])
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"step": "abc"}, "bad or missing entry"),
        ({"rng": {"torch": "x"}}, "corrupt"),
        ({"g_optimizer": {"param_groups": "x"}}, "corrupt|does not match"),
    ],
)
def test_a_hand_edited_meta_json_is_a_one_line_error(finished_run, tmp_path, capsys, edit, message, digest):
    """Today's checkpoints catch any edit by the digest; older ones (no digest) by their values."""
    run_dir = copy_run(finished_run, tmp_path / "run")
    meta_path = ckpt.find_checkpoint(run_dir, "latest") / ckpt.META_FILE
    if digest:
        message = "meta.json does not match its state file"
    else:
        drop_meta_digest(meta_path.parent)
    meta = json.loads(meta_path.read_text())
    meta.update(edit)
    meta_path.write_text(json.dumps(meta))
    code = main(["train", "--resume", str(run_dir), "--steps", "4"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert re.search(message, err)

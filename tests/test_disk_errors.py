"""A full disk or a read-only folder loses nothing: the old output stays, the error is one line, exit 2.

Faults are injected by patching the write path of ``lbam.utils.files``: a write that raises ENOSPC
part-way, a writer that stops short while claiming success (what Pillow's JPEG encoder did on a
full disk), and a folder where no file can be created.
"""

from __future__ import annotations

import errno
import os

import pytest

from lbam.cli.main import main
from lbam.utils import files
from test_cli_inpaint import mask, photo, tiny_model  # noqa: F401  (fixture)

REAL_WRITE = os.write


def write_half_then_fail(fd, view):
    if len(view) > 64:
        return REAL_WRITE(fd, view[: len(view) // 2])
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def write_half_and_claim_all(fd, view):
    REAL_WRITE(fd, view[: len(view) // 2])
    return len(view)


@pytest.fixture()
def inputs(tmp_path):
    image, hole = photo(tmp_path / "a.png"), mask(tmp_path / "m.png")
    existing = tmp_path / "out.jpg"
    existing.write_bytes(b"the user's earlier result")
    return image, hole, existing


@pytest.mark.parametrize("fake_write", [write_half_then_fail, write_half_and_claim_all])
def test_full_disk_keeps_the_existing_output(inputs, tiny_model, capsys, monkeypatch, fake_write):  # noqa: F811
    image, hole, existing = inputs
    monkeypatch.setattr(files.os, "write", fake_write)
    code = main(["inpaint", str(image), str(hole), "-o", str(existing), "--model", str(tiny_model)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("lbam: error: cannot write") and err.count("\n") == 1
    assert existing.read_bytes() == b"the user's earlier result"
    assert sorted(p.name for p in existing.parent.iterdir()) == ["a.png", "m.png", "out.jpg"]  # no temp left


def test_read_only_folder_is_a_one_line_error(inputs, tiny_model, capsys, monkeypatch):  # noqa: F811
    image, hole, _ = inputs

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), kwargs.get("dir"))

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    code = main(
        ["inpaint", str(image), str(hole), "-o", str(image.parent / "new.png"), "--model", str(tiny_model)]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Read-only file system" in err and err.count("\n") == 1
    assert not (image.parent / "new.png").exists()


def test_export_and_masks_generate_on_a_full_disk_are_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(files.os, "write", write_half_then_fail)
    code = main(
        [
            *["masks", "generate", "--kind", "noise:1", "--count", "2", "--size"],
            "64",
            "--out",
            str(tmp_path / "m"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("lbam: error:") and err.count("\n") == 1


def test_a_full_disk_at_a_checkpoint_stops_training_with_one_line_and_keeps_the_last_one(
    photos, tmp_path, capsys, monkeypatch
):
    from lbam.training import checkpoint as ckpt
    from training_helpers import tiny_cli_args

    run_dir = tmp_path / "run"
    args = [*tiny_cli_args(photos, run_dir, steps=2), "--set", "train.checkpoint_every=1"]
    real_save = ckpt.save_file
    calls = []

    def save_then_fill_the_disk(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) > 1:  # the second checkpoint meets a full disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(ckpt, "save_file", save_then_fill_the_disk)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("lbam: error: cannot write checkpoint") and "No space left" in err
    assert ckpt.find_checkpoint(run_dir, "latest").name == "step_00000001"
    assert not any(p.name.startswith(".") for p in (run_dir / "checkpoints").iterdir())


def test_convert_and_export_share_save_model_and_a_full_disk_is_exit_2(tmp_path, capsys, monkeypatch):
    import torch

    from lbam.model import loading
    from lbam.model.lbam import LBAMGenerator
    from test_convert import official_state_dict

    torch.save(official_state_dict(LBAMGenerator(width=0.0625)), tmp_path / "g.pth")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(loading, "save_file", full)
    assert main(["convert", str(tmp_path / "g.pth"), str(tmp_path / "g.safetensors")]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert not (tmp_path / "g.safetensors").exists()


def test_evaluate_on_a_read_only_folder_is_exit_2(tmp_path, capsys, monkeypatch):
    from test_evaluation_protocol import write_binned_masks, write_images

    write_images(tmp_path / "images", 2)
    write_binned_masks(tmp_path / "masks", per_bin=1, size=32)

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), kwargs.get("dir"))

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    code = main(
        ["evaluate", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks")]
        + ["--out", str(tmp_path / "out"), "--size", "32", "--pairs", "1", "--no-progress"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("lbam: error: cannot write") and "Read-only" in err[-1]

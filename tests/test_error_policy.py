"""The last error-policy gaps: links, odd weight files, running out of memory; one line, exit 2 (1 for
folder runs with failures, each listed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from lbam.cli.main import main
from lbam.model.lbam import LBAMGenerator
from lbam.model.loading import save_model


@pytest.fixture()
def files(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
        tmp_path / "p.png"
    )
    mask = np.zeros((64, 64), np.uint8)
    mask[10:20, 10:20] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    model = save_model(LBAMGenerator(width=1 / 32), tmp_path / "tiny.safetensors")
    return tmp_path, model


def _one_line_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("lbam: error:") and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize("where", ["image", "mask", "output"])
def test_a_symlink_loop_anywhere_is_one_line(files, capsys, where):
    folder, model = files
    paths = {"image": folder / "p.png", "mask": folder / "m.png", "output": folder / "out.png"}
    paths[where] = folder / "loop1"
    argv = [
        "inpaint",
        str(paths["image"]),
        str(paths["mask"]),
        "-o",
        str(paths["output"]),
        "--model",
        str(model),
    ]
    _one_line_exit_2(capsys, argv, "loop")


def test_folder_runs_list_broken_links_and_refuse_a_file_as_output(files, capsys):
    folder, model = files
    (folder / "photos").mkdir()
    (folder / "masks").mkdir()
    for name in ("a", "b", "c"):
        (folder / "masks" / f"{name}.png").write_bytes((folder / "m.png").read_bytes())
    (folder / "photos" / "a.png").write_bytes((folder / "p.png").read_bytes())
    (folder / "photos" / "b.png").symlink_to(folder / "loop1")
    (folder / "photos" / "c.png").symlink_to(folder / "nothing-here.png")
    argv = ["inpaint", str(folder / "photos"), str(folder / "masks"), "--model", str(model)]
    assert main([*argv, "-o", str(folder / "out")]) == 1
    err = capsys.readouterr().err
    assert "2 photos failed" in err and err.count("broken symbolic link") == 2
    (folder / "a-file").write_text("x")
    _one_line_exit_2(capsys, [*argv, "-o", str(folder / "a-file")], "exists and is not a folder")


def test_odd_weight_files_are_one_line(files, capsys):
    folder, _ = files
    model = LBAMGenerator(width=1 / 32)
    config = json.dumps(model.config.to_dict())
    float8 = {k: v.to(torch.float8_e4m3fn) for k, v in model.state_dict().items()}
    save_file(float8, str(folder / "f8.safetensors"), metadata={"format": "lbam", "config": config})
    deep = "[" * 200_000 + "]" * 200_000
    save_file(
        model.state_dict(), str(folder / "deep.safetensors"), metadata={"format": "lbam", "config": deep}
    )
    torch.save({"ec1.conv.conv.weight": torch.zeros(4, 4).to_sparse()}, folder / "sparse.pth")
    base = ["inpaint", str(folder / "p.png"), str(folder / "m.png"), "-o", str(folder / "o.png"), "--model"]
    _one_line_exit_2(capsys, [*base, str(folder / "f8.safetensors")], "float8")
    _one_line_exit_2(capsys, [*base, str(folder / "deep.safetensors")], "corrupt lbam metadata")
    _one_line_exit_2(capsys, [*base, str(folder / "sparse.pth")], "not an LBAM generator checkpoint")


def test_running_out_of_memory_is_one_line_with_advice(files, capsys, monkeypatch):
    folder, model = files

    def no_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr("lbam.inference.pipeline.inpaint_picture", no_memory)
    monkeypatch.setattr("lbam.inference.batch.inpaint_picture", no_memory)
    argv = [
        "inpaint",
        str(folder / "p.png"),
        str(folder / "m.png"),
        "-o",
        str(folder / "o.png"),
        "--model",
        str(model),
    ]
    _one_line_exit_2(capsys, argv, "out of memory: use --strategy fit")

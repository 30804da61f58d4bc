"""Output paths stay inside -o, the overwrite policy, and one-line argument errors."""

from __future__ import annotations

import pytest

from lbam.cli.main import main
from test_cli_inpaint import mask, photo, tiny_model  # noqa: F401  (fixture)


@pytest.fixture()
def folder(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    photo(photos / "a.png")
    photo(photos / "b.png", seed=1)
    return photos, mask(tmp_path / "m.png")


@pytest.mark.parametrize("ext", ["png/../../x.png", "../x.png", "exe", ""])
def test_ext_cannot_smuggle_a_path(folder, tmp_path, tiny_model, capsys, ext):  # noqa: F811
    photos, hole = folder
    code = main(
        [
            "inpaint",
            str(photos),
            str(hole),
            "-o",
            str(tmp_path / "out"),
            "--ext",
            ext,
            "--model",
            str(tiny_model),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "is not an image suffix lbam writes" in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists() and not (tmp_path.parent / "x.png").exists()


def test_empty_output_is_refused(folder, tiny_model, capsys):  # noqa: F811
    photos, hole = folder
    assert main(["inpaint", str(photos / "a.png"), str(hole), "-o", "", "--model", str(tiny_model)]) == 2
    assert "must not be empty" in capsys.readouterr().err


def test_outputs_are_replaced_inputs_never_and_skip_existing_resumes(folder, tmp_path, tiny_model, capsys):  # noqa: F811
    photos, hole = folder
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"an earlier result")
    args = ["inpaint", str(photos), str(hole), "-o", str(out), "--model", str(tiny_model)]
    assert main([*args, "--skip-existing"]) == 0
    assert "skipped 1 already done" in capsys.readouterr().out
    assert (out / "a.png").read_bytes() == b"an earlier result" and (out / "b.png").is_file()
    assert main(args) == 0  # without --skip-existing the outputs are replaced
    assert (out / "a.png").read_bytes() != b"an earlier result"
    before = (photos / "a.png").read_bytes()
    assert (
        main(
            [
                "inpaint",
                str(photos / "a.png"),
                str(hole),
                "-o",
                str(photos / "a.png"),
                "--model",
                str(tiny_model),
            ]
        )
        == 2
    )
    assert (photos / "a.png").read_bytes() == before


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--config", "compact_cpu", "--resume", "x"],
        ["inpaint", "a.png"],
        ["evaluate", "--images"],
        ["masks", "generate", "--count", "many"],
    ],
)
def test_argument_errors_are_one_line(args, capsys):
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("lbam: error: ") and err.count("\n") == 1


def test_folder_runs_without_a_terminal_print_a_line_per_photo(folder, tmp_path, tiny_model, capsys):  # noqa: F811
    photos, hole = folder
    assert (
        main(
            [
                "inpaint",
                str(photos),
                str(hole),
                "-o",
                str(tmp_path / "out"),
                "--model",
                str(tiny_model),
                "--threads",
                "1",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "[1/2] a.png (" in err and "[2/2] b.png (" in err
    assert main(["inpaint", str(photos), str(hole), "-o", str(tmp_path / "o2"), "--threads", "0"]) == 2

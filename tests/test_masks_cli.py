"""`lbam masks generate` and `lbam masks stats`: files, reproducibility, index.csv, histogram, errors."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lbam.cli.main import main
from lbam.imaging.masks import hole_ratio_bin
from shared_data import SHARED_DATA

NVIDIA = SHARED_DATA / "masks" / "nvidia_irregular_test"


def generate(out: Path, *extra: str, kind: str = "lama_thick:2,deepfill:1", count: int = 6) -> int:
    return main(
        ["masks", "generate", "--kind", kind, "--count", str(count), "--seed", "5", "--out", str(out), *extra]
    )


def histogram(text: str) -> dict[str, tuple[int, float]]:
    """{bin name: (count, fraction)} parsed from the printed table."""
    rows = re.findall(r"^(below|above|[1-6])\s+\S+ \S+\s+(\d+)\s+([\d.]+)$", text, flags=re.M)
    return {name: (int(count), float(fraction)) for name, count, fraction in rows}


def test_generate_is_byte_reproducible_and_indexes_hole_ratios(tmp_path, capsys):
    assert generate(tmp_path / "a", "--size", "96x64") == 0
    assert generate(tmp_path / "b", "--size", "96x64") == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["index.csv"] + [f"mask_{k:05d}.png" for k in range(6)]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    with open(tmp_path / "a" / "index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["file"] for row in rows] == names[1:]
    for row in rows:
        image = Image.open(tmp_path / "a" / row["file"])
        assert image.mode == "L" and image.size == (96, 64)
        pixels = np.asarray(image)
        assert set(np.unique(pixels)) <= {0, 255}
        ratio = float((pixels == 255).mean())
        assert abs(ratio - float(row["hole_ratio"])) < 1e-6
        assert int(row["bin"]) == hole_ratio_bin(pixels == 255)
    assert "wrote 6 masks of 96x64" in capsys.readouterr().out


def test_generate_other_seed_or_kind_gives_other_masks_and_count_extends(tmp_path):
    generate(tmp_path / "a")
    generate(tmp_path / "more", count=8)
    main(
        [
            "masks",
            "generate",
            "--kind",
            "lama_thick:2,deepfill:1",
            "--count",
            "6",
            "--seed",
            "6",
            "--out",
            str(tmp_path / "seed6"),
        ]
    )
    for k in range(6):
        name = f"mask_{k:05d}.png"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "more" / name).read_bytes()
    assert any(
        (tmp_path / "a" / f"mask_{k:05d}.png").read_bytes()
        != (tmp_path / "seed6" / f"mask_{k:05d}.png").read_bytes()
        for k in range(6)
    )
    assert Image.open(tmp_path / "a" / "mask_00000.png").size == (256, 256)


def test_generate_refuses_to_overwrite_unless_asked(tmp_path, capsys):
    out = tmp_path / "set"
    assert generate(out, count=4) == 0
    capsys.readouterr()
    assert generate(out, kind="noise", count=2) == 2
    assert "is not empty" in capsys.readouterr().err
    assert len(list(out.glob("mask_*.png"))) == 4
    assert generate(out, "--overwrite", kind="noise", count=2) == 0
    assert sorted(p.name for p in out.iterdir()) == ["index.csv", "mask_00000.png", "mask_00001.png"]
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert generate(out, "--overwrite", kind="noise", count=2) == 2
    assert "did not write" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_generate_bad_arguments_exit_2_with_one_line(tmp_path, capsys):
    assert generate(tmp_path / "x", kind="blobs") == 2
    err = capsys.readouterr().err
    assert err.startswith("lbam: error: unknown mask kind 'blobs'") and err.count("\n") == 1
    assert generate(tmp_path / "x", "--size", "12y3") == 2
    assert "--size must be S or WxH" in capsys.readouterr().err
    assert generate(tmp_path / "x", count=0) == 2
    assert "--count must be from 1 to 1000000" in capsys.readouterr().err
    assert generate(tmp_path / "x", kind=f"files={tmp_path / 'nothing'}") == 2
    assert "mask folder not found" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_stats_counts_known_ratios_in_the_nvidia_bins(tmp_path, capsys):
    folder = tmp_path / "known"
    folder.mkdir()
    # hole ratios: 0.005 (below), 0.05, 0.05 (bin 1), 0.25 (bin 3), 0.55 (bin 6), 0.7 (above)
    for k, holes in enumerate([50, 500, 500, 2500, 5500, 7000]):
        pixels = np.zeros(10000, np.uint8)
        pixels[:holes] = 255
        Image.fromarray(pixels.reshape(100, 100)).save(folder / f"m{k}.png")
    (folder / "index.csv").write_text("not a mask")
    assert main(["masks", "stats", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("6 masks in")
    table = histogram(out)
    assert table == {
        "below": (1, round(1 / 6, 3)),
        "1": (2, round(2 / 6, 3)),
        "2": (0, 0.0),
        "3": (1, round(1 / 6, 3)),
        "4": (0, 0.0),
        "5": (0, 0.0),
        "6": (1, round(1 / 6, 3)),
        "above": (1, round(1 / 6, 3)),
    }
    mean = (50 + 500 + 500 + 2500 + 5500 + 7000) / 6 / 10000
    assert f"mean hole ratio: {mean:.4f}" in out


def test_stats_resizes_and_reports_unreadable_files(tmp_path, capsys):
    folder = tmp_path / "m"
    folder.mkdir()
    hole = np.zeros((8, 8), np.uint8)
    hole[:2, :2] = 255  # 4/64: bin 1; nearest to 4x4 keeps one of 16 pixels: 0.0625, still bin 1
    Image.fromarray(hole).save(folder / "a.png")
    (folder / "broken.png").write_bytes(b"garbage")
    assert main(["masks", "stats", str(folder), "--size", "4"]) == 0
    out = capsys.readouterr().out
    assert "resized to 4x4" in out and "skipped 1 unreadable files: broken.png" in out
    assert histogram(out)["1"] == (1, 1.0)
    assert main(["masks", "stats", str(tmp_path / "missing")]) == 2


@pytest.mark.slow
@pytest.mark.skipif(not NVIDIA.is_dir(), reason="shared NVIDIA test masks not present on this machine")
def test_stats_on_the_shared_nvidia_test_masks(capsys):
    assert main(["masks", "stats", str(NVIDIA)]) == 0
    table = histogram(capsys.readouterr().out)
    assert [table[str(b)][0] for b in range(1, 7)] == [200] * 6
    assert table["below"][0] == table["above"][0] == 0

"""The neutral image helpers: the one folder lister and the NVIDIA hole-ratio bins."""

from __future__ import annotations

import pytest

from lbam.errors import LbamError
from lbam.imaging.files import list_images
from lbam.imaging.masks import bin_label, hole_bin, hole_ratio_bin

# --- binning ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("holes", "total", "expected"),
    [
        (0, 1000, 0),
        (10, 1000, 0),  # exactly 0.01: the first bin is open at 0.01
        (11, 1000, 1),
        (100, 1000, 1),  # exactly 0.1 closes bin 1
        (101, 1000, 2),
        (200, 1000, 2),
        (201, 1000, 3),
        (300, 1000, 3),
        (500, 1000, 5),
        (501, 1000, 6),
        (600, 1000, 6),  # exactly 0.6 is still in
        (601, 1000, 7),
        (1000, 1000, 7),
        (6554, 65536, 2),  # 0.100006 at 256 x 256
        (6553, 65536, 1),  # 0.099991
    ],
)
def test_hole_bin_edges_are_exact(holes, total, expected):
    assert hole_bin(holes, total) == expected


def test_bin_labels():
    assert bin_label(0) == "[0, 0.01]"
    assert bin_label(1) == "(0.01, 0.1]"
    assert bin_label(6) == "(0.5, 0.6]"
    assert bin_label(7) == "(0.6, 1]"


def test_hole_ratio_bin_counts_hole_pixels():
    import numpy as np

    hole = np.zeros((100, 100), bool)
    hole[:30] = True  # exactly 0.3: bin 3, where float comparisons of 0.1 + 0.2 would say bin 4
    assert hole_ratio_bin(hole) == 3
    assert hole_ratio_bin(np.zeros((0, 0), bool)) == 0


# --- files ----------------------------------------------------------------------------------


def test_list_images_selects_by_extension_skips_hidden_and_sorts(tmp_path):
    names = ["b.png", "a.JPG", "index.csv", "LICENSE-NVIDIA.txt", "c.jpeg", "notes.md", "._a.jpg", "d.TIF"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "nested" / "deeper").mkdir(parents=True)
    (tmp_path / "nested" / "deeper" / "e.webp").write_bytes(b"x")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "f.png").write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, what="mask")]
    assert found == ["a.JPG", "b.png", "c.jpeg", "d.TIF", "nested/deeper/e.webp"]
    assert [p.name for p in list_images(tmp_path, recursive=False)] == ["a.JPG", "b.png", "c.jpeg", "d.TIF"]


def test_list_images_errors_name_the_folder(tmp_path):
    with pytest.raises(LbamError, match=r"mask folder not found: .*nowhere"):
        list_images(tmp_path / "nowhere", what="mask")
    (tmp_path / "index.csv").write_text("file\n")
    with pytest.raises(LbamError, match=r"image folder .* holds no image files \(png, jpg"):
        list_images(tmp_path)


def test_list_images_survives_a_symlink_loop(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    assert [p.name for p in list_images(tmp_path)] == ["a.png"]

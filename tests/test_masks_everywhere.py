"""The same mask file gives the same hole through every entry point that reads masks.

Inference (``lbam.inpaint``), training (``files`` masks), evaluation (the protocol's binning and
pairing), ``lbam masks stats`` and the demo all read masks through ``lbam.imaging.masks``; these
odd but real files (a red stroke, a 0/1 label map, strokes on a transparent layer, 16-bit, 1-bit,
palette) must mark exactly the same 16 pixels everywhere.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import lbam
from inference_helpers import StubConfig
from lbam.cli.main import main
from lbam.data.masks import FileMasks
from lbam.demo import demo_inputs
from lbam.evaluation.protocol import prepare_hole_mask, scan_masks
from lbam.imaging.masks import read_mask
from lbam.model.card import Generator

# These tests check exact hole geometry: the hole as given, without the default dilation.
inpaint = functools.partial(lbam.inpaint, dilate=0, refine="none")

SIZE = 8


def expected_hole() -> np.ndarray:
    hole = np.zeros((SIZE, SIZE), bool)
    hole[2:4, :] = True  # a horizontal stroke, 16 pixels
    return hole


def odd_masks(folder: Path) -> dict[str, Path]:
    """Mask files that each mark :func:`expected_hole`, in formats people actually produce."""
    hole = expected_hole()
    folder.mkdir(parents=True, exist_ok=True)
    red = np.zeros((SIZE, SIZE, 3), np.uint8)
    red[hole] = (220, 0, 0)
    alpha = np.zeros((SIZE, SIZE, 4), np.uint8)  # black strokes on a transparent layer
    alpha[hole, 3] = 255
    images = {
        "red_stroke.png": Image.fromarray(red),
        "label_map.png": Image.fromarray(hole.astype(np.uint8)),  # values 0 and 1: looks all black
        "alpha_strokes.png": Image.fromarray(alpha, "RGBA"),
        "sixteen_bit.png": Image.fromarray(hole.astype(np.uint16) * 65535),
        "one_bit.png": Image.fromarray(hole).convert("1"),
        "white.png": Image.fromarray(hole.astype(np.uint8) * 255),
    }
    palette = Image.fromarray(hole.astype(np.uint8)).convert("P")
    palette.putpalette([0, 0, 0, 255, 255, 255])
    images["palette.png"] = palette
    paths = {}
    for name, image in images.items():
        paths[name] = folder / name
        image.save(paths[name])
    return paths


class Ones(Generator):
    """A stand-in generator that paints every pixel white, so the changed pixels are the hole."""

    config = StubConfig()
    size_multiple = 1

    def forward(self, image: torch.Tensor, known_mask: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(image)


@pytest.fixture(scope="module")
def masks(tmp_path_factory) -> dict[str, Path]:
    return odd_masks(tmp_path_factory.mktemp("odd_masks"))


def hole_by_inference(path: Path) -> np.ndarray:
    photo = np.zeros((SIZE, SIZE, 3), np.uint8)
    # paste: the harmonic blend would shift the white fill back to the black photo around it
    result = inpaint(photo, str(path), model=Ones(), device="cpu", blend="paste")
    return (result != photo).any(axis=2)


def hole_by_training(path: Path) -> np.ndarray:
    masks = FileMasks(path.parent, augment=False, fit="crop")
    masks.files = [path]  # the one file under test
    known_mask = masks((SIZE, SIZE), np.random.default_rng(0))
    return known_mask < 0.5


def hole_by_evaluation(path: Path) -> np.ndarray:
    binned, unreadable, out_of_bin = scan_masks([path], size=0)
    assert not unreadable and not out_of_bin
    assert [info.path for info in binned[3]] == [path]  # 16 / 64 = 0.25
    return prepare_hole_mask(path, 0)


def ratio_by_stats(path: Path, capsys) -> float:
    folder = path.parent / f"only_{path.stem}"
    folder.mkdir(exist_ok=True)
    (folder / path.name).write_bytes(path.read_bytes())
    assert main(["masks", "stats", str(folder)]) == 0
    return float(re.search(r"mean hole ratio: ([0-9.]+)", capsys.readouterr().out).group(1))


@pytest.mark.parametrize(
    "name",
    [
        "red_stroke.png",
        "label_map.png",
        "alpha_strokes.png",
        "sixteen_bit.png",
        "one_bit.png",
        "white.png",
        "palette.png",
    ],
)
def test_every_entry_point_reads_the_same_hole(masks, name, capsys):
    path = masks[name]
    expected = expected_hole()
    np.testing.assert_array_equal(read_mask(path), expected)
    np.testing.assert_array_equal(hole_by_inference(path), expected)
    np.testing.assert_array_equal(hole_by_training(path), expected)
    np.testing.assert_array_equal(hole_by_evaluation(path), expected)
    assert ratio_by_stats(path, capsys) == pytest.approx(expected.mean(), abs=1e-4)


def test_the_demo_reads_its_mask_with_the_same_reader():
    photo, known = demo_inputs()
    with resources.as_file(resources.files("lbam") / "assets" / "demo_mask.png") as path:
        np.testing.assert_array_equal(~known, read_mask(path))
    assert photo.shape[:2] == known.shape and known.mean() < 1

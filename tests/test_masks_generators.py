"""Mask generators: shape, dtype, polarity (1 = known), determinism, hole ratios, mixtures, registry."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lbam.data.masks import (
    FileMasks,
    MaskMixture,
    build_mask_generator,
    mask_generator_from_spec,
    parse_kind_list,
)
from lbam.errors import LbamError
from lbam.imaging.masks import hole_ratio_bin, read_mask
from shared_data import SHARED_DATA

SYNTHETIC = ["noise", "lama_thin", "lama_medium", "lama_thick", "lama_boxes", "deepfill"]
SIZES = [(64, 64), (48, 96), (97, 33)]
NVIDIA = SHARED_DATA / "masks" / "nvidia_irregular_test"

# Mean hole ratio over 50 masks of 128x128 (measured over 300 masks at 256: noise 0.13,
# thin 0.30, medium 0.29, thick 0.35, boxes 0.23, deepfill 0.16).
MEAN_RANGES = {
    "noise": (0.09, 0.18),
    "lama_thin": (0.2, 0.4),
    "lama_medium": (0.2, 0.38),
    "lama_thick": (0.25, 0.45),
    "lama_boxes": (0.15, 0.32),
    "deepfill": (0.1, 0.25),
}


def write_hole_png(path: Path, hole: np.ndarray) -> None:
    """Save a hole array (1 = hole) as a mask file: white = hole."""
    Image.fromarray((hole * 255).astype(np.uint8)).save(path)


@pytest.fixture
def mask_folder(tmp_path: Path) -> Path:
    """Three 64x64 masks, a licence text and an index.csv (which must be ignored)."""
    folder = tmp_path / "masks"
    (folder / "sub").mkdir(parents=True)
    for k, (top, left) in enumerate([(8, 8), (20, 30), (40, 4)]):
        hole = np.zeros((64, 64), np.uint8)
        hole[top : top + 16, left : left + 20] = 1
        write_hole_png((folder / "sub" if k == 2 else folder) / f"{k:05d}.png", hole)
    (folder / "index.csv").write_text("file,hole_ratio\n")
    (folder / "LICENSE-NVIDIA.txt").write_text("research only\n")
    return folder


def all_kinds(mask_folder: Path) -> dict:
    generators = {kind: build_mask_generator(kind) for kind in SYNTHETIC}
    generators["files"] = build_mask_generator("files", path=str(mask_folder))
    return generators


@pytest.mark.parametrize("size", SIZES)
def test_every_kind_gives_binary_float32_known_masks_of_the_asked_size(mask_folder, size):
    for kind, generator in all_kinds(mask_folder).items():
        for seed in range(3):
            known_mask = generator(size, np.random.default_rng(seed))
            assert known_mask.shape == size, kind
            assert known_mask.dtype == np.float32, kind
            assert set(np.unique(known_mask)) <= {0.0, 1.0}, kind
            assert 0 < known_mask.mean() < 1, f"{kind} gave no hole or no known pixel"


def test_same_rng_seed_same_mask_and_other_seed_other_mask(mask_folder):
    for kind, generator in all_kinds(mask_folder).items():
        first = generator((80, 64), np.random.default_rng(7))
        again = generator((80, 64), np.random.default_rng(7))
        other = generator((80, 64), np.random.default_rng(8))
        np.testing.assert_array_equal(first, again, err_msg=kind)
        assert not np.array_equal(first, other), kind


@pytest.mark.parametrize("kind", SYNTHETIC)
def test_hole_ratios_are_sane_and_known_pixels_are_ones(kind):
    generator = build_mask_generator(kind)
    ratios = np.array([1 - generator((128, 128), np.random.default_rng(s)).mean() for s in range(50)])
    # the hole is the minority: were the polarity flipped these would be 0.4-0.9
    low, high = MEAN_RANGES[kind]
    assert low < ratios.mean() < high
    assert ratios.min() > 0.005
    assert ratios.max() <= 0.62


def test_noise_blobs_follow_the_authors_rejection_rule():
    generator = build_mask_generator("noise")
    ratios = [1 - generator((256, 256), np.random.default_rng(s)).mean() for s in range(30)]
    # the authors drop masks whose holes cover under 4286 of 65536 pixels
    assert min(ratios) >= 4286 / 65536
    assert max(ratios) < 0.45


def test_options_change_the_masks():
    thin = build_mask_generator("lama_thin", width=[2, 3], strokes=[3, 3], hole_ratio=[0, 1])
    ratio = 1 - thin((128, 128), np.random.default_rng(0)).mean()
    assert 0 < ratio < 0.1
    boxes = build_mask_generator("lama_boxes", boxes=1, box_size=32, margin=0, hole_ratio=[0, 1])
    known_mask = boxes((128, 128), np.random.default_rng(1))
    rows, cols = np.nonzero(known_mask == 0)
    # one 32x32 box at 256 scale is 16x16 at 128
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (16, 16)
    assert (known_mask == 0).sum() == 256


class Constant:
    """A generator that always returns the same known mask, tagged by its hole pixel count."""

    def __init__(self, holes: int) -> None:
        self.holes = holes

    def __call__(self, size, rng):
        known_mask = np.ones(size, np.float32)
        known_mask.flat[: self.holes] = 0
        return known_mask


def test_mixture_respects_weights():
    mixture = MaskMixture([(Constant(1), 3.0), (Constant(2), 1.0)])
    rng = np.random.default_rng(0)
    picks = [int((mixture((8, 8), rng) == 0).sum()) for _ in range(4000)]
    share = picks.count(1) / len(picks)
    assert abs(share - 0.75) < 0.03
    assert set(picks) == {1, 2}


def test_mixture_from_spec_mixes_real_kinds_and_is_deterministic(mask_folder):
    spec = [{"kind": "files", "path": str(mask_folder), "weight": 2}, {"kind": "noise"}]
    mixture = mask_generator_from_spec(spec)
    assert isinstance(mixture, MaskMixture)
    np.testing.assert_allclose(mixture.probabilities, [2 / 3, 1 / 3])
    a = [mixture((64, 64), np.random.default_rng(s)) for s in range(5)]
    b = [mixture((64, 64), np.random.default_rng(s)) for s in range(5)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    single = mask_generator_from_spec([{"kind": "deepfill", "weight": 1, "strokes": [1, 2]}])
    assert single.strokes == (1, 2)


def test_registry_errors_are_clear(tmp_path):
    with pytest.raises(LbamError, match="unknown mask kind 'blobs'.*files, noise, lama_thin.*deepfill"):
        build_mask_generator("blobs")
    with pytest.raises(LbamError, match="no option 'thickness'; valid options: strokes"):
        build_mask_generator("lama_thick", thickness=3)
    with pytest.raises(LbamError, match="needs a 'path'"):
        build_mask_generator("files")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LbamError, match="holds no mask files"):
        build_mask_generator("files", path=str(tmp_path / "empty"))
    with pytest.raises(LbamError, match="mask folder not found"):
        build_mask_generator("files", path=str(tmp_path / "missing"))
    with pytest.raises(LbamError, match="no masks configured"):
        mask_generator_from_spec([])
    with pytest.raises(LbamError, match="weight must be positive"):
        mask_generator_from_spec([{"kind": "noise", "weight": 0}])
    with pytest.raises(LbamError, match="needs a 'kind'"):
        mask_generator_from_spec([{"weight": 1}])
    with pytest.raises(LbamError, match="option 'width'"):
        build_mask_generator("deepfill", width=[40, 10])
    with pytest.raises(LbamError, match="option 'fit'"):
        build_mask_generator("files", path=str(tmp_path), fit="stretch")


def test_parse_kind_list():
    assert parse_kind_list("lama_thick:2,deepfill:1") == [
        {"kind": "lama_thick", "weight": 2.0},
        {"kind": "deepfill", "weight": 1.0},
    ]
    assert parse_kind_list("noise") == [{"kind": "noise", "weight": 1.0}]
    assert parse_kind_list("files=C:/masks:0.5") == [{"kind": "files", "weight": 0.5, "path": "C:/masks"}]
    with pytest.raises(LbamError, match="no mask kinds"):
        parse_kind_list(" , ")


def test_files_without_augmentation_read_white_as_hole(mask_folder):
    generator = FileMasks(mask_folder, augment=False)
    assert [p.name for p in generator.files] == ["00000.png", "00001.png", "00002.png"]
    seen = set()
    for seed in range(20):
        known_mask = generator((64, 64), np.random.default_rng(seed))
        assert (known_mask == 0).sum() == 16 * 20
        rows, cols = np.nonzero(known_mask == 0)
        seen.add((rows.min(), cols.min()))
    assert seen == {(8, 8), (20, 30), (40, 4)}


def test_files_fit_resize_scales_and_crop_keeps_resolution(mask_folder):
    resized = FileMasks(mask_folder, augment=False, fit="resize")((32, 32), np.random.default_rng(0))
    assert (resized == 0).sum() == 8 * 10  # the 16x20 hole at half scale
    cropped = FileMasks(mask_folder, augment=False, fit="crop")
    holes = [(cropped((32, 32), np.random.default_rng(s)) == 0).sum() for s in range(30)]
    assert max(holes) <= 16 * 20 and len(set(holes)) > 3  # windows cut the 16x20 hole differently
    wide = FileMasks(mask_folder, augment=False, fit="resize")((40, 128), np.random.default_rng(0))
    assert wide.shape == (40, 128)
    assert (wide == 0).sum() > 0


def test_files_augmentation_dilates_rotates_flips_and_shifts(mask_folder):
    only_dilation = FileMasks(mask_folder, dilation=(5, 5), rotation=False, flip=False, translate=0)
    known_mask = only_dilation((64, 64), np.random.default_rng(0))
    assert (known_mask == 0).sum() == (16 + 4) * (20 + 4)  # a 5x5 kernel grows each side by 2
    full = FileMasks(mask_folder)
    masks = [full((64, 64), np.random.default_rng(s)) for s in range(20)]
    boxes = set()
    for known_mask in masks:
        rows, cols = np.nonzero(known_mask == 0)
        boxes.add((rows.min(), cols.min(), rows.max(), cols.max()))
    assert len(boxes) > 10  # positions and shapes vary far beyond the three source files
    off = FileMasks(mask_folder, augment=False)
    assert len({off((64, 64), np.random.default_rng(s)).tobytes() for s in range(20)}) == 3


def test_files_skip_a_damaged_mask_file(mask_folder, caplog):
    (mask_folder / "00003.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    generator = FileMasks(mask_folder, augment=False)
    assert len(generator) == 4
    for seed in range(30):
        assert (generator((64, 64), np.random.default_rng(seed)) == 0).sum() == 320
    assert generator.bad_files == {generator.files.index(mask_folder / "00003.png")}
    assert "00003.png" in caplog.text


@pytest.mark.skipif(not NVIDIA.is_dir(), reason="shared NVIDIA test masks not present on this machine")
def test_nvidia_test_masks_read_as_indexed_and_fall_in_their_bins():
    with open(NVIDIA / "index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1200
    for row in rows:
        assert hole_ratio_bin(read_mask(NVIDIA / row["file"])) == int(row["bin"]), row["file"]
    for row in rows[::150]:
        hole = read_mask(NVIDIA / row["file"])
        assert abs(hole.mean() - float(row["hole_ratio"])) < 1e-6
    generator = build_mask_generator("files", path=str(NVIDIA))
    assert len(generator.files) == 1200  # index.csv and the licence text are not masks
    known_mask = generator((256, 256), np.random.default_rng(0))
    assert known_mask.shape == (256, 256) and 0 < known_mask.mean() < 1

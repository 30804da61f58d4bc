"""lbam.evaluation.protocol: binning, file selection, mask reading, seeded pairing, preparation.

The small folder builders at the top are reused by the other test_evaluation_* files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lbam.errors import LbamError
from lbam.evaluation.protocol import (
    make_pairs,
    prepare_pairs,
    scan_images,
    scan_masks,
)
from lbam.imaging.files import list_images


def write_images(folder: Path, count: int, size: int = 64, seed: int = 0) -> list[Path]:
    """``count`` smooth random RGB PNGs named img00.png, img01.png, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    paths = []
    for i in range(count):
        phase = rng.random(3) * 6
        image = 0.5 + 0.4 * np.sin(np.stack([xx * 5 + phase[c] + yy * (c + 1) * 3 for c in range(3)], -1))
        path = folder / f"img{i:02d}.png"
        Image.fromarray((image * 255).round().astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def write_mask(path: Path, hole_pixels: int, size: int = 64) -> Path:
    """A white-is-hole mask with exactly ``hole_pixels`` white pixels, filled row by row from the top."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = np.zeros(size * size, np.uint8)
    mask[:hole_pixels] = 255
    Image.fromarray(mask.reshape(size, size)).save(path)
    return path


def write_binned_masks(folder: Path, per_bin: int, size: int = 64) -> dict[int, list[Path]]:
    """``per_bin`` masks in each of the six bins, hole ratios spread inside each bin."""
    total = size * size
    result: dict[int, list[Path]] = {}
    for k in range(1, 7):
        low = 0.01 if k == 1 else (k - 1) / 10
        result[k] = []
        for j in range(per_bin):
            ratio = low + (k / 10 - low) * (j + 1) / (per_bin + 1)
            result[k].append(write_mask(folder / f"m{k}_{j:02d}.png", round(ratio * total), size))
    return result


def test_scan_masks_measures_after_resizing_and_reports_out_of_bin(tmp_path):
    # 128 x 128 with rows 0-21 and the odd rows 23, 25, 27 white: 25/128 = 0.195 -> bin 2. Nearest
    # resizing to 64 keeps the odd rows 1, 3, ...: 14 white rows, 14/64 = 0.219 -> bin 3.
    # The ratio after resizing decides.
    mask = np.zeros((128, 128), np.uint8)
    mask[:22] = 255
    mask[[23, 25, 27]] = 255
    Image.fromarray(mask).save(tmp_path / "edge.png")
    write_mask(tmp_path / "tiny.png", 10, size=64)  # 0.0024: outside every bin
    write_mask(tmp_path / "huge.png", 3000, size=64)  # 0.73: outside every bin
    (tmp_path / "broken.png").write_bytes(b"not a png")
    binned, unreadable, out_of_bin = scan_masks(list_images(tmp_path, what="mask"), size=64)
    assert [m.path.name for m in binned[3]] == ["edge.png"]
    assert binned[3][0].hole_ratio == pytest.approx(14 / 64)
    assert [name for name, _ in out_of_bin] == ["huge.png", "tiny.png"]
    assert out_of_bin[1][1] == pytest.approx(10 / 4096)
    assert [name for name, _ in unreadable] == ["broken.png"]
    binned_full, _, _ = scan_masks([tmp_path / "edge.png"], size=0)
    assert [m.path.name for m in binned_full[2]] == ["edge.png"]


def test_scan_images_reports_unreadable_files(tmp_path):
    good = write_images(tmp_path, 2)
    (tmp_path / "zz_broken.jpg").write_bytes(b"\xff\xd8 truncated")
    readable, unreadable = scan_images(list_images(tmp_path))
    assert readable == good
    assert unreadable[0][0] == "zz_broken.jpg" and unreadable[0][1]


# --- pairing ----------------------------------------------------------------------------------


def scanned(tmp_path: Path, images: int = 5, per_bin: int = 6):
    image_paths = write_images(tmp_path / "images", images)
    write_binned_masks(tmp_path / "masks", per_bin)
    binned, _, _ = scan_masks(list_images(tmp_path / "masks", what="mask"), size=64)
    return image_paths, binned


def test_pairing_is_deterministic_seeded_and_per_bin(tmp_path):
    images, binned = scanned(tmp_path)
    assert all(len(binned[k]) == 6 for k in range(1, 7))
    first = make_pairs(images, binned, pairs=4, seed=3)
    assert first == make_pairs(images, binned, pairs=4, seed=3)
    assert first != make_pairs(images, binned, pairs=4, seed=4)
    assert [p.pair_id for p in first] == list(range(24))
    assert [p.bin for p in first] == [k for k in range(1, 7) for _ in range(4)]
    for pair in first:
        assert pair.mask.name.startswith(f"m{pair.bin}_")
    for k in range(1, 7):  # masks drawn without replacement
        masks = [p.mask for p in first if p.bin == k]
        assert len(set(masks)) == 4


def test_pairing_cycles_the_same_image_order_in_every_bin_and_is_prefix_stable(tmp_path):
    images, binned = scanned(tmp_path, images=3, per_bin=6)
    pairs = make_pairs(images, binned, pairs=5, seed=0)
    order = [p.image for p in pairs if p.bin == 1]
    assert order[3:] == order[:2]  # cycling through 3 images
    assert sorted(set(order)) == images
    for k in range(2, 7):
        assert [p.image for p in pairs if p.bin == k] == order
    smaller = make_pairs(images, binned, pairs=2, seed=0)
    for k in range(1, 7):
        big = [(p.image, p.mask) for p in pairs if p.bin == k]
        assert [(p.image, p.mask) for p in smaller if p.bin == k] == big[:2]


def test_pairing_takes_all_masks_of_a_small_bin_and_skips_empty_bins(tmp_path):
    images, binned = scanned(tmp_path, per_bin=2)
    binned[4] = []
    pairs = make_pairs(images, binned, pairs=10, seed=0)
    counts = {k: sum(p.bin == k for p in pairs) for k in range(1, 7)}
    assert counts == {1: 2, 2: 2, 3: 2, 4: 0, 5: 2, 6: 2}


def test_pairing_rejects_no_images_and_bad_pairs(tmp_path):
    images, binned = scanned(tmp_path, per_bin=1)
    with pytest.raises(LbamError, match="no readable images"):
        make_pairs([], binned, pairs=1, seed=0)
    with pytest.raises(LbamError, match="--pairs must be at least 1"):
        make_pairs(images, binned, pairs=0, seed=0)


# --- preparation ------------------------------------------------------------------------------


def test_prepare_pairs_crops_resizes_and_inverts_masks(tmp_path):
    wide = np.zeros((40, 80, 3), np.uint8)
    wide[:, 20:60] = 200  # the centre square is uniformly 200
    Image.fromarray(wide).save(tmp_path / "wide.png")
    mask = np.zeros((64, 64), np.uint8)
    mask[:8] = 255  # 1/8 hole
    Image.fromarray(mask).save(tmp_path / "m.png")
    binned, _, _ = scan_masks([tmp_path / "m.png"], size=32)
    pairs = make_pairs([tmp_path / "wide.png"], binned, pairs=1, seed=0)
    (item,) = prepare_pairs(pairs, size=32)
    assert item.image.shape == (32, 32, 3) and item.image.dtype == np.uint8
    assert np.all(np.abs(item.image.astype(int) - 200) <= 1)  # only the centre square survives
    assert item.known_mask.shape == (32, 32) and item.known_mask.dtype == bool
    assert not item.known_mask[:4].any() and item.known_mask[4:].all()  # 1 = known after inversion
    assert item.hole_ratio == pytest.approx(1 / 8)
    (full,) = prepare_pairs(pairs, size=0)
    assert full.image.shape == (40, 80, 3)
    assert full.known_mask.shape == (40, 80)  # the mask follows the image at full resolution
    assert full.hole_ratio == pytest.approx(5 / 40)


def test_the_hole_neighbourhood_is_its_box_grown_and_at_least_64_px():
    from lbam.evaluation.protocol import hole_neighbourhood

    known = np.ones((512, 768), bool)
    known[200:300, 300:500] = False  # 100 x 200
    rows, cols = hole_neighbourhood(known)
    assert (rows.start, rows.stop, cols.start, cols.stop) == (175, 325, 250, 550)  # a quarter each side
    known = np.ones((512, 768), bool)
    known[0:10, 760:768] = False  # a speck in the corner: 64 px, inside the image
    rows, cols = hole_neighbourhood(known)
    assert rows.stop - rows.start >= 64 and cols.stop - cols.start >= 64
    assert rows.start >= 0 and cols.stop <= 768
    assert hole_neighbourhood(np.ones((80, 90), bool)) == (slice(0, 80), slice(0, 90))

"""The image-folder dataset: discovery, augmentation, seeding per (seed, epoch, index), damaged files, errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lbam.data.dataset import InpaintingDataset
from lbam.data.masks import build_mask_generator
from lbam.errors import LbamError
from lbam.imaging.files import list_images
from lbam.imaging.io import load_rgb


def photo(width: int, height: int, seed: int) -> Image.Image:
    """A smooth random colour image (smooth so JPEG keeps it recognisable)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    (root / "nested" / "deeper").mkdir(parents=True)
    photo(80, 60, 0).save(root / "a.png")
    photo(100, 120, 1).save(root / "nested" / "b.JPG", quality=95)
    photo(90, 70, 2).save(root / "nested" / "deeper" / "c.webp", lossless=True)
    photo(64, 64, 3).save(root / "d.jpeg", quality=95)
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(b"apple double")
    return root


def noise_masks():
    return build_mask_generator("noise")


def test_find_images_is_recursive_case_insensitive_and_sorted(folder, tmp_path):
    found = [p.relative_to(folder).as_posix() for p in list_images(folder)]
    assert found == ["a.png", "d.jpeg", "nested/b.JPG", "nested/deeper/c.webp"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(LbamError, match="holds no image files"):
        list_images(tmp_path / "empty")
    with pytest.raises(LbamError, match="image folder not found"):
        list_images(tmp_path / "missing")


def test_items_have_the_right_shapes_ranges_and_mask_values(folder):
    dataset = InpaintingDataset(folder, noise_masks(), crop_size=32, load_size=48)
    assert len(dataset) == 4 and dataset.skipped_files == []
    for i in range(len(dataset)):
        item = dataset[i]
        assert set(item) == {"image", "known_mask"}
        assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
        assert item["image"].min() >= 0 and item["image"].max() <= 1 and item["image"].std() > 0.01
        assert item["known_mask"].shape == (1, 32, 32) and item["known_mask"].dtype == torch.float32
        assert set(item["known_mask"].unique().tolist()) == {0.0, 1.0}
        assert item["known_mask"].mean() > 0.5  # 1 = known: noise holes cover ~13 %
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4)))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["known_mask"].shape == (4, 1, 32, 32)


def test_items_depend_only_on_seed_epoch_and_index(folder):
    first = InpaintingDataset(folder, noise_masks(), crop_size=32, load_size=48, seed=3)
    second = InpaintingDataset(folder, noise_masks(), crop_size=32, load_size=48, seed=3)
    _ = second[2], second[0]  # other calls first must not matter: no hidden RNG state
    for i in (0, 2):
        a, b = first[i], second[i]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["known_mask"], b["known_mask"])
    first.set_epoch(1)
    changed_crops = sum(not torch.equal(first[i]["image"], second[i]["image"]) for i in range(4))
    changed_masks = sum(not torch.equal(first[i]["known_mask"], second[i]["known_mask"]) for i in range(4))
    assert changed_crops >= 3 and changed_masks == 4
    first.set_epoch(0)
    assert torch.equal(first[1]["image"], second[1]["image"])
    other_seed = InpaintingDataset(folder, noise_masks(), crop_size=32, load_size=48, seed=4)
    assert not torch.equal(other_seed[1]["known_mask"], second[1]["known_mask"])


def test_training_crops_vary_and_flip(folder):
    dataset = InpaintingDataset(folder, noise_masks(), crop_size=32, load_size=48)
    full = np.asarray(load_rgb(folder / "a.png").resize((48, 48), Image.Resampling.BICUBIC))
    positions, flips = set(), 0
    for epoch in range(12):
        dataset.set_epoch(epoch)
        crop = (dataset[0]["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        matches = [
            (top, left, flip)
            for top in range(17)
            for left in range(17)
            for flip in (False, True)
            if np.array_equal((full[:, ::-1] if flip else full)[top : top + 32, left : left + 32], crop)
        ]
        assert matches, "a training item must be an exact (flipped) crop of the resized image"
        positions.add(matches[0][:2])
        flips += matches[0][2]
    assert len(positions) >= 6 and 0 < flips < 12


def test_validation_items_are_fixed_centre_crops(folder):
    dataset = InpaintingDataset(folder, noise_masks(), crop_size=32, load_size=48, train=False, seed=1)
    before = [dataset[i] for i in range(4)]
    dataset.set_epoch(5)
    after = [dataset[i] for i in range(4)]
    for a, b in zip(before, after, strict=True):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["known_mask"], b["known_mask"])
    expected = np.asarray(load_rgb(folder / "a.png").resize((48, 48), Image.Resampling.BICUBIC))[8:40, 8:40]
    got = (before[0]["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(got, expected)
    assert not torch.equal(before[0]["known_mask"], before[1]["known_mask"])


def test_shorter_side_mode_keeps_the_aspect(folder):
    dataset = InpaintingDataset(
        [folder / "a.png"], noise_masks(), 32, 48, train=False, resize_mode="shorter_side"
    )
    # 80x60 -> 64x48, centre crop 32 at (8, 16)
    expected = np.asarray(load_rgb(folder / "a.png").resize((64, 48), Image.Resampling.BICUBIC))[8:40, 16:48]
    got = (dataset[0]["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(got, expected)


def test_no_load_size_crops_at_full_size_and_skips_small_images(folder, caplog):
    with caplog.at_level(logging.WARNING):
        dataset = InpaintingDataset(folder, noise_masks(), crop_size=72, load_size=None)
    assert [p.name for p in dataset.files] == ["b.JPG"]  # the only image with both sides >= 72
    assert len(dataset.skipped_files) == 3 and "smaller than crop_size 72" in caplog.text
    assert dataset[0]["image"].shape == (3, 72, 72)
    with pytest.raises(LbamError, match="crop_size 200 is larger than every image"):
        InpaintingDataset(folder, noise_masks(), crop_size=200, load_size=None)


def test_unreadable_files_are_skipped_at_build_and_reported(folder, caplog):
    (folder / "broken.jpg").write_bytes(b"this is not a jpeg")
    (folder / "nested" / "empty.png").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        dataset = InpaintingDataset(folder, noise_masks(), crop_size=32, load_size=48)
    assert len(dataset) == 4
    assert sorted(p.name for p in dataset.skipped_files) == ["broken.jpg", "empty.png"]
    assert "skipping 2 of 6 images" in caplog.text and "broken.jpg" in caplog.text


def test_a_file_that_fails_to_decode_later_is_replaced_not_fatal(folder, caplog):
    data = (folder / "d.jpeg").read_bytes()
    (folder / "d.jpeg").write_bytes(data[: len(data) // 3])  # header intact, pixels truncated
    dataset = InpaintingDataset(folder, noise_masks(), crop_size=32, load_size=48, jpeg_draft=False)
    assert len(dataset) == 4 and dataset.skipped_files == []
    index = [p.name for p in dataset.files].index("d.jpeg")
    with caplog.at_level(logging.WARNING):
        item = dataset[index]
        again = dataset[index]
    assert dataset.failed_loads == 1 and caplog.text.count("using the next readable image") == 1
    assert item["image"].shape == (3, 32, 32) and torch.equal(item["image"], again["image"])
    # the replacement is the next file in the list, cut with the failed item's own randomness
    fresh = InpaintingDataset(folder, noise_masks(), crop_size=32, load_size=48, jpeg_draft=False)
    assert torch.equal(fresh[index]["image"], item["image"])


def test_bad_input_is_a_clear_error_before_training(folder, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LbamError, match="holds no image files"):
        InpaintingDataset(tmp_path / "empty", noise_masks())
    with pytest.raises(LbamError, match=r"crop_size \(256\) is larger than load_size \(200\)"):
        InpaintingDataset(folder, noise_masks(), crop_size=256, load_size=200)
    with pytest.raises(LbamError, match="no mask generator"):
        InpaintingDataset(folder, None, crop_size=32, load_size=48)
    with pytest.raises(LbamError, match="resize_mode"):
        InpaintingDataset(folder, noise_masks(), 32, 48, resize_mode="stretch")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.png").write_bytes(b"nope")
    with pytest.raises(LbamError, match="no readable image"):
        InpaintingDataset(tmp_path / "junk", noise_masks(), 32, 48)


def test_load_rgb_scales_16_bit_and_applies_exif_orientation(tmp_path):
    Image.fromarray(np.full((4, 6), 65535, np.uint16)).save(tmp_path / "deep.png")
    deep = load_rgb(tmp_path / "deep.png")
    assert deep.mode == "RGB" and deep.size == (6, 4) and np.asarray(deep).min() == 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    photo(40, 20, 5).save(tmp_path / "turned.jpg", exif=exif)
    assert load_rgb(tmp_path / "turned.jpg").size == (20, 40)


def _matching_load_sizes(item: dict, source: Image.Image, sizes: range) -> list[int]:
    """The shorter-side load sizes L for which some crop (or flipped crop) of the resized photo is the item."""
    got = (item["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    crop = got.shape[0]
    found = []
    for load_size in sizes:
        scale = load_size / min(source.size)
        target = (max(load_size, round(source.width * scale)), max(load_size, round(source.height * scale)))
        resized = np.asarray(source.resize(target, Image.Resampling.BICUBIC))
        windows = np.lib.stride_tricks.sliding_window_view(resized, (crop, crop, 3))[..., 0, :, :, :]
        for candidate in (got, got[:, ::-1]):
            if (windows == candidate).all(axis=(-3, -2, -1)).any():
                found.append(load_size)
                break
    return found


def test_max_load_size_draws_a_zoom_level_per_training_item(folder):
    source = load_rgb(folder / "a.png")  # 80 x 60, lossless
    masks = noise_masks()
    kwargs = {"crop_size": 32, "load_size": 36, "resize_mode": "shorter_side"}
    jittered = InpaintingDataset([folder / "a.png"], masks, max_load_size=60, **kwargs)
    drawn = []
    for epoch in range(10):
        jittered.set_epoch(epoch)
        matches = _matching_load_sizes(jittered[0], source, range(36, 61))
        assert len(matches) == 1, matches
        drawn.append(matches[0])
    assert len(set(drawn)) >= 4, drawn  # zoom levels differ between epochs

    fixed = InpaintingDataset([folder / "a.png"], masks, **kwargs)
    assert _matching_load_sizes(fixed[0], source, range(36, 61)) == [36]
    validation = InpaintingDataset([folder / "a.png"], masks, max_load_size=60, train=False, **kwargs)
    assert _matching_load_sizes(validation[0], source, range(36, 61)) == [36]  # validation stays fixed

    with pytest.raises(LbamError, match="max_load_size"):
        InpaintingDataset([folder / "a.png"], masks, crop_size=32, load_size=48, max_load_size=40)

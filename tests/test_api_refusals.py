"""The Python API refuses bad input with one LbamError, as the command line and the server do."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import lbam
from lbam.errors import LbamError, PixelLimitError
from lbam.imaging.masks import resize_hole
from lbam.model.lbam import LBAMGenerator


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LBAMGenerator(width=1 / 32).eval()


def photo() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)


def hole() -> np.ndarray:
    mask = np.zeros((40, 60), bool)
    mask[10:20, 10:30] = True
    return mask


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dilate": "3"}, "dilate must be a whole number"),
        ({"dilate": 2.5}, "dilate must be a whole number"),
        ({"dilate": True}, "dilate must be a whole number"),
        ({"context": "big"}, "context must be a number"),
        ({"context": float("nan")}, "context must be a number"),
        ({"max_size": 300.5}, "max_size must be a whole number"),
        ({"invert_mask": "yes"}, "invert_mask must be true or false"),
        ({"strategy": "tiles"}, "unknown strategy"),
        ({"colour": "red"}, "unknown inpainting option 'colour'"),
    ],
)
def test_bad_options_are_lbam_errors(model, options, message):
    with pytest.raises(LbamError, match=message):
        lbam.inpaint(photo(), hole(), model, **options)


@pytest.mark.parametrize("image", [None, [[1, 2]], "photo.jpg"])
def test_images_that_are_not_pictures_are_refused(model, image):
    with pytest.raises(LbamError, match="must be a PIL image or a numpy array"):
        lbam.inpaint(image, hole(), model)


def test_nan_masks_and_animated_images_are_refused(model):
    mask = hole().astype(np.float32)
    mask[0, 0] = np.nan
    with pytest.raises(LbamError, match="NaN"):
        lbam.inpaint(photo(), mask, model)
    frames = [Image.fromarray(photo()), Image.fromarray(255 - photo())]
    animated = Image.new("RGB", (60, 40))
    import io

    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    animated = Image.open(io.BytesIO(buffer.getvalue()))
    with pytest.raises(LbamError, match="2 frames"):
        lbam.inpaint(animated, hole(), model)


def test_max_pixels_holds_for_arrays_and_for_mask_files(model, tmp_path):
    with pytest.raises(PixelLimitError, match="image is 60x40"):
        lbam.inpaint(photo(), hole(), model, max_pixels=1000)
    path = tmp_path / "mask.png"
    Image.fromarray(hole().astype(np.uint8) * 255).save(path)
    big = np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    # the photo is within the caller's limit, the mask file is not: the caller's limit applies to both
    with pytest.raises(PixelLimitError, match="mask"):
        lbam.inpaint(Image.fromarray(big).resize((20, 10)), path, model, max_pixels=500, resize_mask=True)


def test_bad_devices_and_sizes_are_lbam_errors(model):
    with pytest.raises(LbamError, match="device"):
        lbam.inpaint(photo(), hole(), model, device=["cpu"])
    with pytest.raises(LbamError, match="multiples of 128"):
        model(torch.rand(1, 3, 100, 128), torch.ones(1, 1, 100, 128))


def test_the_one_mask_resize_samples_pixel_centres_as_pillow_does():
    rng = np.random.default_rng(3)
    for _ in range(20):
        mask = rng.random(tuple(rng.integers(5, 300, 2))) > 0.5
        height, width = (int(v) for v in rng.integers(5, 300, 2))
        pillow = Image.fromarray(mask.astype(np.uint8) * 255).resize(
            (width, height), Image.Resampling.NEAREST
        )
        np.testing.assert_array_equal(resize_hole(mask, (height, width)), np.asarray(pillow) >= 128)

"""Reading/writing photos (bit depth, EXIF orientation, alpha, formats) and reading masks."""

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from lbam.errors import LbamError
from lbam.imaging.io import (
    Picture,
    apply_orientation,
    output_format,
    picture_from_pil,
    read_image,
    write_image,
)
from lbam.imaging.masks import as_hole, dilate_hole, hole_from_array, prepare_hole, read_mask


def rng_image(height, width, channels=3, dtype=np.uint8, seed=0):
    top = np.iinfo(dtype).max
    shape = (height, width) if channels == 1 else (height, width, channels)
    return np.random.default_rng(seed).integers(0, top + 1, shape, dtype=dtype)


# ---------------------------------------------------------------- photos


def test_png_8bit_round_trip_is_exact(tmp_path):
    pixels = rng_image(33, 51)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    picture = read_image(tmp_path / "a.png")
    assert picture.color.dtype == np.uint8 and picture.color.shape == (33, 51, 3)
    assert picture.alpha is None and picture.format == "PNG"
    np.testing.assert_array_equal(picture.color, pixels)
    assert write_image(picture, tmp_path / "b.png") == []
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), pixels)


def test_png_16bit_colour_keeps_16_bits(tmp_path):
    rgb = rng_image(20, 30, dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "c.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    picture = read_image(tmp_path / "c.png")
    assert picture.color.dtype == np.uint16
    np.testing.assert_array_equal(picture.color, rgb)
    write_image(picture, tmp_path / "d.png")
    back = cv2.cvtColor(cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, rgb)


def test_png_16bit_rgba_and_grey(tmp_path):
    rgba = rng_image(12, 14, channels=4, dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "e.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    picture = read_image(tmp_path / "e.png")
    np.testing.assert_array_equal(picture.color, rgba[:, :, :3])
    np.testing.assert_array_equal(picture.alpha, rgba[:, :, 3])

    grey = rng_image(12, 14, channels=1, dtype=np.uint16)
    Image.fromarray(grey).save(tmp_path / "g.png")
    picture = read_image(tmp_path / "g.png")
    assert picture.color.shape == (12, 14, 1) and picture.color.dtype == np.uint16
    write_image(picture, tmp_path / "g2.png")
    back = Image.open(tmp_path / "g2.png")
    assert back.mode == "I;16"
    np.testing.assert_array_equal(np.asarray(back), grey)


def test_16bit_to_jpeg_is_written_8bit_with_a_note(tmp_path):
    picture = Picture(color=np.full((8, 8, 3), 65535, dtype=np.uint16))
    notes = write_image(picture, tmp_path / "x.jpg")
    assert any("8-bit" in note for note in notes)
    assert np.asarray(Image.open(tmp_path / "x.jpg")).min() >= 250


def test_rgba_to_jpeg_drops_alpha_with_a_note(tmp_path):
    picture = picture_from_pil(Image.fromarray(rng_image(16, 16, channels=4), "RGBA"))
    notes = write_image(picture, tmp_path / "x.jpg")
    assert any("alpha" in note for note in notes)
    assert Image.open(tmp_path / "x.jpg").mode == "RGB"
    assert write_image(picture, tmp_path / "x.webp") == []
    assert Image.open(tmp_path / "x.webp").mode == "RGBA"


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif"])
def test_every_output_format_writes_a_readable_file(tmp_path, suffix):
    picture = Picture(color=rng_image(16, 24))
    write_image(picture, tmp_path / f"o{suffix}")
    assert Image.open(tmp_path / f"o{suffix}").size == (24, 16)


def test_unknown_output_suffix_is_an_error(tmp_path):
    with pytest.raises(LbamError, match="unknown image suffix '.gif'"):
        output_format(tmp_path / "o.gif")
    with pytest.raises(LbamError, match="none"):
        output_format(tmp_path / "o")


def test_grey_and_palette_and_cmyk_photos(tmp_path):
    grey = rng_image(10, 12, channels=1)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    picture = read_image(tmp_path / "grey.png")
    assert picture.mode == "L" and picture.color.shape == (10, 12, 1)

    palette = Image.fromarray(rng_image(10, 12)).quantize(colors=8)
    palette.save(tmp_path / "p.png")
    picture = read_image(tmp_path / "p.png")
    assert picture.mode == "RGB" and picture.alpha is None
    np.testing.assert_array_equal(picture.color, np.asarray(palette.convert("RGB")))

    palette.info["transparency"] = 0
    palette.save(tmp_path / "pt.png", transparency=0)
    assert read_image(tmp_path / "pt.png").alpha is not None

    Image.fromarray(rng_image(10, 12)).convert("CMYK").save(tmp_path / "c.jpg")
    assert read_image(tmp_path / "c.jpg").color.shape == (10, 12, 3)


def jpeg_with_orientation(path, pixels, orientation):
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(path, exif=exif.tobytes(), quality=95)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow(tmp_path, orientation):
    pixels = np.zeros((16, 24, 3), dtype=np.uint8)
    pixels[:8, :8] = 255  # a white top-left block shows where the corner went
    path = tmp_path / f"o{orientation}.jpg"
    jpeg_with_orientation(path, pixels, orientation)
    picture = read_image(path)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    np.testing.assert_array_equal(picture.color, expected)
    assert picture.color.shape[:2] == ((24, 16) if orientation >= 5 else (16, 24))


def test_orientation_6_turns_clockwise():
    array = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(apply_orientation(array, 6), [[3, 0], [4, 1], [5, 2]])


def test_missing_and_non_image_and_truncated_files(tmp_path):
    with pytest.raises(LbamError, match="image not found"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "text.png").write_text("not a picture")
    with pytest.raises(LbamError, match="not an image file"):
        read_image(tmp_path / "text.png")
    for suffix in (".png", ".jpg"):
        full = tmp_path / f"full{suffix}"
        Image.fromarray(rng_image(64, 64)).save(full)
        cut = tmp_path / f"cut{suffix}"
        data = full.read_bytes()
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(LbamError, match="truncated"):
            read_image(cut)
    with pytest.raises(LbamError, match="not a file"):
        read_image(tmp_path)


# ---------------------------------------------------------------- masks


def test_mask_modes_white_is_hole(tmp_path):
    grey = np.zeros((6, 8), dtype=np.uint8)
    grey[1:3, 2:5] = 200
    grey[4, 4] = 127  # below half range: known
    expected = grey >= 128
    np.testing.assert_array_equal(as_hole(Image.fromarray(grey)), expected)
    np.testing.assert_array_equal(
        as_hole(Image.fromarray(grey).convert("1", dither=Image.Dither.NONE)), expected
    )
    np.testing.assert_array_equal(as_hole(Image.fromarray(grey).convert("RGB")), expected)
    np.testing.assert_array_equal(as_hole(Image.fromarray(grey).convert("P")), expected)
    sixteen = Image.fromarray(grey.astype(np.uint16) * 257)
    assert sixteen.mode == "I;16"
    np.testing.assert_array_equal(as_hole(sixteen), expected)
    sixteen.save(tmp_path / "m16.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m16.png"), expected)


def test_coloured_strokes_mark_holes():
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)  # red stroke on black
    rgb[1, 1] = (0, 200, 0)
    rgb[2, 2] = (60, 60, 60)  # dark grey: known
    np.testing.assert_array_equal(np.argwhere(hole_from_array(rgb)), [[0, 0], [1, 1]])


def test_alpha_is_the_mask_when_it_varies():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)  # black strokes painted on a transparent layer
    rgba[1:3, 1:3, 3] = 255
    np.testing.assert_array_equal(as_hole(Image.fromarray(rgba, "RGBA")), rgba[:, :, 3] > 0)
    opaque = np.full((4, 4, 4), 255, dtype=np.uint8)  # fully opaque: the colour decides
    opaque[:2, :, :3] = 0
    np.testing.assert_array_equal(
        as_hole(Image.fromarray(opaque, "RGBA")), np.repeat(np.arange(4)[:, None] >= 2, 4, axis=1)
    )
    la = np.stack([np.zeros((4, 4), np.uint8), np.eye(4, dtype=np.uint8) * 255], axis=2)
    np.testing.assert_array_equal(as_hole(Image.fromarray(la, "LA")), np.eye(4, dtype=bool))


def test_array_masks_bool_zero_one_float():
    eye = np.eye(3, dtype=bool)
    np.testing.assert_array_equal(hole_from_array(eye), eye)
    np.testing.assert_array_equal(hole_from_array(eye.astype(np.uint8)), eye)  # 0/1 label map
    np.testing.assert_array_equal(hole_from_array(eye.astype(np.int64) * 40000), eye)  # 16-bit range
    np.testing.assert_array_equal(hole_from_array(eye * 0.7), eye)
    np.testing.assert_array_equal(hole_from_array(eye * 0.3), np.zeros((3, 3), bool))


def test_mask_exif_orientation(tmp_path):
    mask = np.zeros((16, 24), dtype=np.uint8)
    mask[:8, :8] = 255
    image = Image.fromarray(mask)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "m.png", exif=exif.tobytes())
    hole = read_mask(tmp_path / "m.png")
    assert hole.shape == (24, 16)
    assert hole[:8, -8:].all() and hole.sum() == 64  # top-left corner turned to top-right


def test_prepare_hole_invert_resize_dilate_and_errors():
    hole = np.zeros((10, 10), dtype=bool)
    hole[5, 5] = True
    np.testing.assert_array_equal(prepare_hole(hole, (10, 10), invert=True), ~hole)
    grown = prepare_hole(hole, (10, 10), dilate=2)
    assert grown.sum() == 13  # Euclidean disc of radius 2
    assert grown[3, 5] and grown[4, 4] and not grown[3, 4]
    assert prepare_hole(hole, (20, 20), resize=True).sum() == 4
    with pytest.raises(LbamError, match="10x10 but the image is 20x15"):
        prepare_hole(hole, (15, 20))
    with pytest.raises(LbamError, match="whole image"):
        prepare_hole(np.ones((4, 4), bool), (4, 4))
    with pytest.raises(LbamError, match="after dilating by 20"):
        prepare_hole(hole, (10, 10), dilate=20)


def test_dilate_zero_and_empty_hole_are_identity():
    hole = np.zeros((5, 5), dtype=bool)
    assert dilate_hole(hole, 3) is hole
    hole[2, 2] = True
    assert dilate_hole(hole, 0) is hole

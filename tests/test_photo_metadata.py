"""Photographers' files: EXIF and ICC survive, orientation is reset, JPEG quality is an option."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageCms

from lbam.cli.main import main
from test_cli_inpaint import mask, tiny_model  # noqa: F401  (fixture)

ORIENTATION, MAKE, DATE = 0x0112, 0x010F, 0x0132


def camera_photo(path, orientation: int = 6):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[MAKE] = "LbamCam"
    exif[DATE] = "2026:12:02 10:00:00"
    exif[ORIENTATION] = orientation
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image.save(path, exif=exif.tobytes(), icc_profile=srgb, quality=95)
    return path, srgb


def test_exif_and_icc_are_kept_and_orientation_reset(tmp_path, tiny_model):  # noqa: F811
    photo_path, profile = camera_photo(tmp_path / "cam.jpg")  # orientation 6: stored sideways
    hole = mask(tmp_path / "m.png", height=128, width=96)  # the mask fits the upright photo
    for suffix in (".jpg", ".png"):
        out = tmp_path / f"out{suffix}"
        assert main(["inpaint", str(photo_path), str(hole), "-o", str(out), "--model", str(tiny_model)]) == 0
        with Image.open(out) as result:
            exif = result.getexif()
            assert result.size == (96, 128)  # upright
            assert exif[MAKE] == "LbamCam" and exif[DATE] == "2026:12:02 10:00:00"
            assert exif.get(ORIENTATION, 1) == 1  # a viewer must not rotate it again
            assert result.info.get("icc_profile") == profile


def test_quality_option_changes_the_jpeg(tmp_path, tiny_model):  # noqa: F811
    photo_path, _ = camera_photo(tmp_path / "cam.jpg", orientation=1)
    hole = mask(tmp_path / "m.png")
    sizes = {}
    for quality in (30, 95):
        out = tmp_path / f"q{quality}.jpg"
        assert (
            main(
                [
                    "inpaint",
                    str(photo_path),
                    str(hole),
                    "-o",
                    str(out),
                    "--model",
                    str(tiny_model),
                    "--quality",
                    str(quality),
                ]
            )
            == 0
        )
        sizes[quality] = out.stat().st_size
    assert sizes[30] < sizes[95]
    assert main(["inpaint", str(photo_path), str(hole), "-o", str(tmp_path / "x.jpg"), "--quality", "0"]) == 2
    Image.open(io.BytesIO((tmp_path / "q95.jpg").read_bytes())).verify()

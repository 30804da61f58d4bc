"""lbam's PNG encoder: every decoder reads back the exact pixels, profile and EXIF included."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from lbam.imaging import png
from lbam.imaging.io import Picture, encode_picture
from lbam.imaging.png import encode_png, up_filtered


def photo_like(height: int, width: int, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, width)[None, :, None] * np.ones((height, 1, channels))
    return np.clip(ramp + rng.normal(0, 20, (height, width, channels)), 0, 255).astype(np.uint8)


def chunks(data: bytes) -> dict[bytes, bytes]:
    """The chunks of a PNG file by type (IDATs joined), each CRC checked."""
    assert data[:8] == png.SIGNATURE
    found: dict[bytes, bytes] = {}
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        assert struct.unpack(">I", data[at + 8 + length : at + 12 + length])[0] == zlib.crc32(kind + body)
        found[kind] = found.get(kind, b"") + body
        at += 12 + length
    return found


@pytest.mark.parametrize("channels,mode", [(1, "L"), (2, "LA"), (3, "RGB"), (4, "RGBA")])
def test_pillow_and_opencv_read_back_the_pixels(channels, mode):
    pixels = photo_like(37, 53, channels)
    data = encode_png(pixels)
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == mode
        assert np.array_equal(np.asarray(image).reshape(pixels.shape), pixels)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if channels == 2:  # OpenCV gives grey + alpha as BGRA
        decoded = decoded[..., [0, 3]]
    elif channels >= 3:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB if channels == 3 else cv2.COLOR_BGRA2RGBA)
    assert np.array_equal(decoded.reshape(pixels.shape), pixels)


def test_a_large_photo_is_deflated_in_parts_that_form_one_valid_stream(monkeypatch):
    monkeypatch.setattr(png, "PARALLEL_BYTES", 1000)
    pixels = photo_like(300, 200, 3, seed=1)
    data = encode_png(pixels, threads=3)
    stream = chunks(data)[b"IDAT"]
    # Six parts: five end in a sync flush (00 00 ff ff); zlib checks the Adler-32 of the whole.
    assert stream.count(b"\x00\x00\xff\xff") >= 5
    assert zlib.decompress(stream) == up_filtered(pixels).tobytes()
    with Image.open(io.BytesIO(data)) as image:
        assert np.array_equal(np.asarray(image), pixels)


def test_up_filter_by_hand():
    pixels = np.array([[[10], [250]], [[5], [4]]], dtype=np.uint8)  # 2x2 grey
    assert up_filtered(pixels).tolist() == [[2, 10, 250], [2, 251, 10]]  # 5 - 10 and 4 - 250 wrap


def test_profile_and_exif_survive():
    icc = bytes(range(256)) * 3  # any bytes: Pillow keeps the profile without parsing it
    exif = Image.Exif()
    exif[0x010F] = "lbam camera"  # Make
    data = encode_png(photo_like(8, 8, 3), icc_profile=icc, exif=exif.tobytes())
    with Image.open(io.BytesIO(data)) as image:
        assert image.info["icc_profile"] == icc
        assert image.getexif()[0x010F] == "lbam camera"


def test_png_outputs_use_it_and_stay_lossless():
    pixels = photo_like(20, 30, 3)
    data, notes = encode_picture(Picture(color=pixels[..., :3], alpha=photo_like(20, 30, 1)[..., 0]), "PNG")
    assert notes == [] and b"IDAT" in data
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == "RGBA" and np.array_equal(np.asarray(image)[..., :3], pixels)
    assert chunks(data)[b"IDAT"][:2] == b"\x78\x01"  # lbam's stream, not Pillow's


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.uint16), np.zeros((4, 4, 5), np.uint8)]
)
def test_refuses_what_it_cannot_store(bad):
    with pytest.raises(ValueError, match="uint8 pixels"):
        encode_png(bad)

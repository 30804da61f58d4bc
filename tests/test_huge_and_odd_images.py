"""Huge, animated, multi-page and truncated images are refused with one line, before decoding."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lbam
from lbam.cli.main import main
from lbam.errors import LbamError
from lbam.imaging.io import read_image
from test_cli_inpaint import mask, photo, tiny_model  # noqa: F401  (fixture)


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A valid PNG signature and header declaring ``width`` x ``height``, with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    data = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + data)
    return path


def inpaint_cli(folder: Path, image: Path, model: Path, *extra: str) -> int:
    hole = mask(folder / "m.png")
    return main(
        ["inpaint", str(image), str(hole), "-o", str(folder / "o.png"), "--model", str(model), *extra]
    )


@pytest.mark.parametrize("side", [30000, 100000])
def test_huge_headers_are_refused_with_the_limit_named(tmp_path, side, tiny_model, capsys, monkeypatch):  # noqa: F811
    huge = png_header_only(tmp_path / "huge.png", side, side)
    with pytest.raises(LbamError, match=r"above the limit of 144 Mpx \(--max-pixels"):
        read_image(huge)
    code = inpaint_cli(tmp_path, huge, tiny_model)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"{side}x{side}" in err
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # a caller who lifted Pillow's own limit
    with pytest.raises(LbamError, match="above the limit"):
        lbam.inpaint(Image.open(huge), np.zeros((8, 8), bool))


def test_max_pixels_is_configurable_and_no_warning_below_it(tmp_path, tiny_model, capsys):  # noqa: F811
    image = photo(tmp_path / "a.png", height=96, width=128)
    code = inpaint_cli(tmp_path, image, tiny_model, "--max-pixels", "5000")
    assert code == 2 and "above the limit" in capsys.readouterr().err
    big = png_header_only(tmp_path / "big.png", 10000, 10000)  # 100 Mpx: over Pillow's warning limit
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning would fail here
        with pytest.raises(LbamError, match="cannot decode"):  # passes the limit, then the data is short
            read_image(big)


def test_animated_and_multi_page_inputs_are_refused(tmp_path):
    frames = [Image.new("RGB", (8, 8), color) for color in ("red", "blue")]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "b.tiff", save_all=True, append_images=frames[1:])
    for name in ("a.gif", "b.tiff"):
        with pytest.raises(LbamError, match="has 2 frames"):
            read_image(tmp_path / name)


def test_a_lazily_opened_truncated_image_is_an_lbam_error(tmp_path):
    path = photo(tmp_path / "a.png", height=64, width=64)
    path.write_bytes(path.read_bytes()[:300])
    hole = np.zeros((64, 64), bool)
    hole[10:20, 10:20] = True
    with pytest.raises(LbamError, match="cannot decode"):
        lbam.inpaint(Image.open(path), hole)
    with pytest.raises(LbamError, match="cannot decode the mask"):
        lbam.inpaint(np.zeros((64, 64, 3), np.uint8), Image.open(path))

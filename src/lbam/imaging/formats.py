"""The one table of image file formats lbam reads and writes, and what each can hold.

Every other list is derived from :data:`FORMATS`: the suffixes a folder listing takes, the format
of an output path, which formats keep EXIF, 16-bit pixels or alpha, and the formats the server
answers in (which the page learns from ``GET /api/v1/options``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageFormat:
    """One file format: its Pillow name, suffixes (the first is written), media type and capacities."""

    pillow: str
    suffixes: tuple[str, ...]
    media_type: str
    exif: bool  # carries EXIF (camera, date, GPS) through Pillow
    sixteen_bit: bool  # stores 16 bits per channel
    alpha: bool  # stores an alpha channel
    served: bool  # the server answers in it (the formats every browser shows)

    @property
    def name(self) -> str:
        """The lower-case name a request uses: png, jpeg, webp, ..."""
        return self.pillow.lower()


FORMATS = (
    ImageFormat("PNG", (".png",), "image/png", exif=True, sixteen_bit=True, alpha=True, served=True),
    ImageFormat(
        "JPEG", (".jpg", ".jpeg"), "image/jpeg", exif=True, sixteen_bit=False, alpha=False, served=True
    ),
    ImageFormat("WEBP", (".webp",), "image/webp", exif=True, sixteen_bit=False, alpha=True, served=True),
    ImageFormat("BMP", (".bmp",), "image/bmp", exif=False, sixteen_bit=False, alpha=False, served=False),
    ImageFormat(
        "TIFF", (".tif", ".tiff"), "image/tiff", exif=True, sixteen_bit=True, alpha=True, served=False
    ),
)
BY_PILLOW = {f.pillow: f for f in FORMATS}
# Suffix -> Pillow format name. Every suffix here can be read and written.
SUFFIX_FORMATS = {suffix: f.pillow for f in FORMATS for suffix in f.suffixes}
EXIF_FORMATS = {f.pillow for f in FORMATS if f.exif}
SIXTEEN_BIT_FORMATS = {f.pillow for f in FORMATS if f.sixteen_bit}
ALPHA_FORMATS = {f.pillow for f in FORMATS if f.alpha}
SERVED_FORMATS = tuple(f.name for f in FORMATS if f.served)

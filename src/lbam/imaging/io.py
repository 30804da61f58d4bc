"""Reading and writing photos for inpainting: common formats, 8 or 16 bits, EXIF orientation.

A decoded photo is a :class:`Picture`: its colour channels (RGB or one grey channel) and, kept
aside, its alpha channel, both in the file's own integer type (uint8 or uint16). Inpainting only
touches the colour channels and gives the alpha back as it was.

Pillow decodes everything except 16-bit colour PNG/TIFF, which it would cut to 8 bits; those are
decoded with OpenCV instead. Every file is fully decoded by Pillow first, so a truncated or broken
file fails here with a one-line :class:`~lbam.errors.LbamError` instead of half-decoding later.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lbam.defaults import DEFAULT_MAX_PIXELS
from lbam.errors import LbamError, NotAnImageError, PixelLimitError
from lbam.imaging.formats import ALPHA_FORMATS, EXIF_FORMATS, SIXTEEN_BIT_FORMATS, SUFFIX_FORMATS
from lbam.imaging.png import encode_png
from lbam.utils.files import atomic_path, atomic_write_bytes

_PIXEL_LIMIT_LOCK = threading.Lock()
# Errors Pillow raises for damaged, truncated, unsupported or absurdly large files.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)
# zlib level of PNG outputs: 1 encodes a 12 Mpx photo in a fraction of the time of Pillow's
# default 6 for files about 10 % larger (benchmarks/end_to_end.py); lossless either way.
PNG_COMPRESS_LEVEL = 1

EXIF_ORIENTATION = 0x0112

# Pillow modes that are read by converting to RGB (CMYK JPEGs, ...) or RGBA.
_TO_RGB = {"CMYK", "YCbCr", "LAB", "HSV", "RGBX"}
_TO_RGBA = {"RGBa", "PA"}


@dataclasses.dataclass
class Picture:
    """A decoded photo, colour and alpha kept apart.

    Attributes:
        color: (H, W, C) uint8 or uint16, C = 3 (RGB) or 1 (grey).
        alpha: (H, W), same dtype as ``color``, or None.
        mode: the Pillow mode to give back as a PIL image ("RGB", "RGBA", "L", "LA", "1", "I;16").
        icc_profile: the colour profile to write back, if the file had one.
        format: the Pillow format of the file it was read from ("PNG", "JPEG", ...), if any.
        exif: the file's EXIF block (camera, date, GPS... as the file had them) with the orientation
            tag reset to 1, since the pixels are stored upright; None if it had none.
    """

    color: np.ndarray
    alpha: np.ndarray | None = None
    mode: str = "RGB"
    icc_profile: bytes | None = None
    format: str | None = None
    exif: bytes | None = None

    @property
    def height(self) -> int:
        return self.color.shape[0]

    @property
    def width(self) -> int:
        return self.color.shape[1]

    @property
    def bits(self) -> int:
        return 16 if self.color.dtype == np.uint16 else 8

    def with_color(self, color: np.ndarray) -> Picture:
        """The same picture with new colour pixels (same shape and dtype)."""
        return dataclasses.replace(self, color=color)


def output_format(path: str | os.PathLike) -> str:
    """The Pillow format name for an output path, from its suffix; LbamError for others."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        known = ", ".join(sorted(SUFFIX_FORMATS))
        raise LbamError(
            f"cannot write {path}: unknown image suffix {suffix or '(none)'!r}; use one of {known}"
        )
    return SUFFIX_FORMATS[suffix]


# An image given as a file, or as the bytes of one (an upload to the server, never written to disk).
Source = str | os.PathLike | bytes


def open_pil(
    source: Source, what: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS, draft_size: int | None = None
) -> Image.Image:
    """Open and fully decode an image file (or its bytes) with Pillow; one-line LbamError on any problem.

    The one image reader of lbam: every photo and mask goes through here. ``what`` ("image",
    "mask") names the file in error messages. The pixel count is checked from the header against
    ``max_pixels`` before anything is decoded (:class:`PixelLimitError`); Pillow's own
    decompression-bomb limit and warning are replaced by this check. ``draft_size`` lets JPEG
    decoding skip detail (DCT scaling by 1/2, 1/4, 1/8) while both sides stay at least that size.
    """
    image, path = _open_header(source, what)
    check_pixels(image.size, max_pixels, f"{what} {path}")
    if getattr(image, "n_frames", 1) > 1:
        raise LbamError(
            f"{what} {path} has {image.n_frames} frames (animated or multi-page); give a single image"
        )
    if draft_size is not None and image.format == "JPEG":
        image.draft("RGB", (draft_size, draft_size))
    try:
        # Pillow decodes lazily: force the whole decode now so truncated files fail here.
        image.load()
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, EOFError... on bad data
        raise LbamError(f"cannot decode {what} {path} (truncated or corrupt?): {error}") from None
    return image


def _open_header(source: Source, what: str) -> tuple[Image.Image, str | Path]:
    """The image opened lazily (only its header read) and the name errors give it."""
    if isinstance(source, bytes):
        path, opened = f"(uploaded {what})", io.BytesIO(source)
    else:
        path = opened = Path(source)
        if not path.exists():
            raise LbamError(f"{what} not found: {path}")
        if not path.is_file():
            raise LbamError(f"{what} is not a file: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return _open_unlimited(opened), path
    except UnidentifiedImageError:
        raise NotAnImageError(
            f"{what} {path} is not an image file (or a format Pillow cannot read)"
        ) from None
    except (OSError, ValueError) as error:
        raise LbamError(f"cannot open {what} {path}: {error}") from None


def image_size(source: Source, what: str = "image") -> tuple[int, int]:
    """(width, height) of an image file or its bytes, from its header alone (nothing is decoded)."""
    image, _ = _open_header(source, what)
    with image:
        return image.size


def _open_unlimited(path: Path | io.BytesIO) -> Image.Image:
    """``Image.open`` without Pillow's global pixel limit (lbam checks its own, per call)."""
    with _PIXEL_LIMIT_LOCK:  # Pillow's limit is a global: threads (the server) take turns here
        limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = limit


def check_pixels(size: tuple[int, int], max_pixels: int, what: str) -> None:
    """LbamError when an image of ``size`` = (width, height) has more than ``max_pixels`` pixels."""
    width, height = size
    if width * height > max_pixels:
        raise PixelLimitError(
            f"{what} is {width}x{height} = {width * height / 1e6:.0f} Mpx, above the limit of "
            f"{max_pixels / 1e6:.0f} Mpx (--max-pixels / max_pixels raises it)"
        )


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1..8) of an opened image; 1 when absent or invalid."""
    try:
        orientation = int(image.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block must not make the photo unreadable
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an (H, W[, C]) array the way EXIF ``orientation`` says, like ``ImageOps.exif_transpose``."""
    if orientation == 2:
        array = array[:, ::-1]
    elif orientation == 3:
        array = array[::-1, ::-1]
    elif orientation == 4:
        array = array[::-1]
    elif orientation == 5:
        array = array.swapaxes(0, 1)
    elif orientation == 6:
        array = np.rot90(array, k=-1)
    elif orientation == 7:
        array = array[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        array = np.rot90(array, k=1)
    return np.ascontiguousarray(array)


def read_image(path: Source, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode a photo file, applying its EXIF orientation.

    16-bit PNG/TIFF stay 16-bit (grey through Pillow, colour through OpenCV); palette images become
    RGB (RGBA when they have transparency); CMYK and other colour spaces become RGB.

    Raises:
        LbamError: missing file, not an image, truncated or corrupt data, unsupported pixel type.
    """
    image = open_pil(path, "image", max_pixels)
    orientation = exif_orientation(image)
    icc_profile = image.info.get("icc_profile")
    if _is_16bit_color(image, path):
        picture = _read_16bit_color(path, grey=image.mode == "LA")
    else:
        picture = picture_from_pil(
            image, source="the uploaded image" if isinstance(path, bytes) else str(path)
        )
    picture.icc_profile = icc_profile
    picture.format = image.format
    picture.exif = _upright_exif(image)
    if orientation != 1:
        picture.color = apply_orientation(picture.color, orientation)
        if picture.alpha is not None:
            picture.alpha = apply_orientation(picture.alpha, orientation)
    return picture


def _upright_exif(image: Image.Image) -> bytes | None:
    """The image's EXIF with orientation 1 (lbam applies the rotation to the pixels); None if none."""
    exif = image.getexif()
    if not exif:
        return None
    if EXIF_ORIENTATION in exif:
        exif[EXIF_ORIENTATION] = 1
    return exif.tobytes()


def _is_16bit_color(image: Image.Image, path: Source) -> bool:
    """True for a 16-bit RGB(A) or grey+alpha PNG/TIFF, which Pillow would decode to 8 bits."""
    if image.mode not in ("RGB", "RGBA", "LA"):
        return False
    if image.format == "PNG":
        if isinstance(path, bytes):
            header = path[:26]
        else:
            with open(path, "rb") as f:
                header = f.read(26)
        # IHDR is always the first chunk: 8-byte signature, length, "IHDR", width, height, bit depth.
        return len(header) == 26 and header[12:16] == b"IHDR" and header[24] == 16
    if image.format == "TIFF":
        bits = image.tag_v2.get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        return max(bits) == 16
    return False


def _read_16bit_color(path: Source, grey: bool) -> Picture:
    data = np.frombuffer(path, np.uint8) if isinstance(path, bytes) else np.fromfile(path, dtype=np.uint8)
    array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if array is None or array.dtype != np.uint16:
        raise LbamError("cannot decode the 16-bit image" + ("" if isinstance(path, bytes) else f" {path}"))
    if array.ndim == 2:
        return Picture(color=array[:, :, None], mode="I;16")
    if array.shape[2] == 2:
        return Picture(color=array[:, :, :1].copy(), alpha=array[:, :, 1].copy(), mode="LA")
    if array.shape[2] == 4:
        rgba = cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA)
        color = rgba[:, :, :1] if grey else rgba[:, :, :3]  # OpenCV expands grey+alpha to BGRA
        return Picture(
            color=np.ascontiguousarray(color), alpha=rgba[:, :, 3].copy(), mode="LA" if grey else "RGBA"
        )
    return Picture(color=cv2.cvtColor(array, cv2.COLOR_BGR2RGB), mode="RGB")


def picture_from_pil(image: Image.Image, source: str = "image") -> Picture:
    """Split a PIL image into a :class:`Picture` (no EXIF orientation applied: pixels as given).

    Raises:
        LbamError: the image's data cannot be decoded (e.g. a lazily opened, truncated file).
    """
    try:
        image.load()
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, EOFError... on bad data
        raise LbamError(f"cannot decode {source} (truncated or corrupt?): {error}") from None
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in _TO_RGBA:
        image = image.convert("RGBA")
    elif mode == "La":
        image = image.convert("LA")
    elif mode in _TO_RGB:
        image = image.convert("RGB")
    mode = image.mode
    if mode in ("RGB", "RGBA", "L", "LA", "1"):
        array = np.asarray(image.convert("L") if mode == "1" else image)
        if array.ndim == 2:
            return Picture(color=array[:, :, None].copy(), mode=mode)
        color_channels = 1 if mode in ("L", "LA") else 3
        alpha = array[:, :, color_channels].copy() if mode in ("RGBA", "LA") else None
        return Picture(color=array[:, :, :color_channels].copy(), alpha=alpha, mode=mode)
    if mode.startswith("I;16") or mode == "I":
        array = np.asarray(image)
        if mode == "I" and array.size and (array.min() < 0 or array.max() > 65535):
            raise LbamError(f"{source}: 32-bit integer pixels outside 0..65535 are not supported")
        return Picture(color=array.astype(np.uint16)[:, :, None], mode="I;16")
    raise LbamError(f"{source}: unsupported pixel mode {mode!r}")


def picture_to_pil(picture: Picture) -> Image.Image:
    """The PIL image for a picture, in ``picture.mode`` (or the nearest mode Pillow has)."""
    color = picture.color
    if picture.bits == 16:
        if color.shape[2] == 1 and picture.alpha is None:
            return Image.fromarray(np.ascontiguousarray(color[:, :, 0]))  # uint16 -> "I;16"
        raise LbamError("Pillow has no 16-bit colour image type: pass a numpy array or write a PNG/TIFF file")
    if color.shape[2] == 1:
        if picture.alpha is not None:
            return Image.fromarray(np.dstack([color, picture.alpha[:, :, None]]))  # -> "LA"
        grey = Image.fromarray(np.ascontiguousarray(color[:, :, 0]))
        return grey.convert("1", dither=Image.Dither.NONE) if picture.mode == "1" else grey
    if picture.alpha is not None:
        return Image.fromarray(np.dstack([color, picture.alpha[:, :, None]]))  # -> "RGBA"
    return Image.fromarray(np.ascontiguousarray(color))


def picture_from_array(array: np.ndarray) -> Picture:
    """A picture from an (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA uint8/uint16 array."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(array).__name__}")
    if array.dtype not in (np.uint8, np.uint16):
        raise LbamError(f"image array must be uint8 or uint16, got {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise LbamError(f"image array must be HxW, HxWx1, HxWx3 or HxWx4, got shape {array.shape}")
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[array.shape[2]]
    if array.dtype == np.uint16:
        mode = "I;16" if array.shape[2] == 1 else mode
    if array.shape[2] == 4:
        return Picture(color=array[:, :, :3].copy(), alpha=array[:, :, 3].copy(), mode=mode)
    return Picture(color=array.copy(), mode=mode)


def picture_to_array(picture: Picture, ndim: int = 3) -> np.ndarray:
    """The pixels as one array: (H, W, C) with alpha last, or (H, W) when ``ndim`` is 2 (grey only)."""
    array = picture.color
    if picture.alpha is not None:
        array = np.dstack([array, picture.alpha[:, :, None]])
    if ndim == 2 and array.shape[2] == 1:
        return array[:, :, 0]
    return array


def to_8bit(picture: Picture) -> Picture:
    """The picture with 16-bit channels scaled and rounded to 8 bits (8-bit pictures unchanged)."""
    if picture.bits == 8:
        return picture

    def scale(x: np.ndarray) -> np.ndarray:
        return ((x.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)

    alpha = None if picture.alpha is None else scale(picture.alpha)
    mode = "L" if picture.mode == "I;16" else picture.mode
    return dataclasses.replace(picture, color=scale(picture.color), alpha=alpha, mode=mode)


def write_image(picture: Picture, path: str | os.PathLike, jpeg_quality: int = 95) -> list[str]:
    """Write a picture atomically, in the format its suffix names (see :func:`encode_picture`).

    Returns one-line notes for the user about what the format could not keep.
    """
    data, notes = encode_picture(picture, output_format(path), jpeg_quality)
    # Encoded in memory first: the file write is then checked byte for byte (a full disk made
    # Pillow's JPEG encoder stop short without an error).
    try:
        atomic_write_bytes(path, data)
    except OSError as error:
        raise LbamError(f"cannot write {path}: {error.strerror or error}") from None
    return notes


def encode_picture(picture: Picture, fmt: str, jpeg_quality: int = 95) -> tuple[bytes, list[str]]:
    """The file bytes of ``picture`` in Pillow format ``fmt``, and notes about what was lost.

    16 bits are kept in PNG and TIFF; other formats get 8 bits. Alpha is kept in PNG, WebP and
    TIFF; JPEG and BMP drop it. The ICC profile and EXIF block travel with the pixels.
    """
    notes = []
    if picture.bits == 16 and fmt not in SIXTEEN_BIT_FORMATS:
        picture = to_8bit(picture)
        notes.append(f"{fmt} stores 8 bits per channel: the 16-bit result was written as 8-bit")
    if picture.alpha is not None and fmt not in ALPHA_FORMATS:
        picture = dataclasses.replace(picture, alpha=None, mode="L" if picture.color.shape[2] == 1 else "RGB")
        notes.append(f"{fmt} has no alpha channel: the alpha channel was dropped")
    if picture.bits == 16 and not (picture.color.shape[2] == 1 and picture.alpha is None):
        return _encode_16bit_color(picture, fmt), notes
    return _encode_8bit(picture, fmt, jpeg_quality), notes


def _encode_8bit(picture: Picture, fmt: str, jpeg_quality: int) -> bytes:
    if fmt == "PNG" and picture.bits == 8 and picture.mode != "1":
        pixels = picture.color if picture.alpha is None else np.dstack([picture.color, picture.alpha])
        return encode_png(np.ascontiguousarray(pixels), PNG_COMPRESS_LEVEL, picture.icc_profile, picture.exif)
    image = picture_to_pil(picture)
    if fmt == "JPEG" and image.mode == "1":
        image = image.convert("L")
    options: dict[str, object] = {}
    if picture.icc_profile:
        options["icc_profile"] = picture.icc_profile
    if picture.exif and fmt in EXIF_FORMATS:
        options["exif"] = picture.exif
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = jpeg_quality
    if fmt == "PNG":
        options["compress_level"] = PNG_COMPRESS_LEVEL
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@contextlib.contextmanager
def _writing(path: str | os.PathLike, expected_size: int | None = None) -> Iterator[Path]:
    """``atomic_path`` with file-system errors (no permission, a file where a folder should be) as LbamError."""
    try:
        with atomic_path(path, expected_size) as tmp:
            yield tmp
    except OSError as error:
        raise LbamError(f"cannot write {path}: {error.strerror or error}") from None


def _encode_16bit_color(picture: Picture, fmt: str) -> bytes:
    color = picture.color
    if color.shape[2] == 1:  # 16-bit grey + alpha: OpenCV and Pillow only write it as RGBA
        color = np.repeat(color, 3, axis=2)
    if picture.alpha is not None:
        array = cv2.cvtColor(np.dstack([color, picture.alpha[:, :, None]]), cv2.COLOR_RGBA2BGRA)
    else:
        array = cv2.cvtColor(np.ascontiguousarray(color), cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png" if fmt == "PNG" else ".tiff", array)
    if not ok:
        raise LbamError(f"cannot encode a 16-bit {fmt} image")
    return encoded.tobytes()


def copy_file(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy a file byte for byte, atomically."""
    with _writing(target, os.path.getsize(source)) as tmp:
        shutil.copyfile(source, tmp)


def load_rgb(path: Path, draft_size: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``path`` (through :func:`open_pil`) as 8-bit RGB with its EXIF orientation applied.

    For training and evaluation, which want plain RGB: ``draft_size`` as in :func:`open_pil` (the
    image is resized below that size afterwards anyway).

    Raises:
        LbamError: as :func:`open_pil`.
    """
    with open_pil(path, "image", max_pixels, draft_size) as image:
        image = ImageOps.exif_transpose(image)
        if image.mode.startswith("I;16") or image.mode == "I":
            # 16-bit grey: Pillow's RGB conversion would clip instead of scaling
            values = np.asarray(image, dtype=np.float64) / 257.0
            image = Image.fromarray(np.clip(values + 0.5, 0, 255).astype(np.uint8))
        return image.convert("RGB")

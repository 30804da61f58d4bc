"""A fast lossless PNG encoder for 8-bit photos: one filter, zlib level 1, compressed in parallel.

Pillow's PNG encoder chooses a filter per row and compresses on one core: 1.0 s for a 4000x3000
photo at zlib level 1 on this project's CPU. This encoder uses the *Up* filter for every row (a
photo's rows resemble the rows above them, and numpy computes the difference of all rows at once),
splits the filtered rows into parts and deflates them on several threads (zlib releases the GIL),
joined into one zlib stream with sync flushes: 0.5 to 0.6 s for the same photo, and a file about
5 % smaller than Pillow's at level 1 (``benchmarks/end_to_end.py``). Any PNG decoder reads it.

Spec: PNG (ISO/IEC 15948): chunks IHDR, iCCP, eXIf, IDAT, IEND; filter type 2 (Up) on every row.
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from lbam.utils.files import atomic_write_bytes
from lbam.utils.machine import usable_cpus

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour types by channel count: grey, grey + alpha, RGB, RGBA.
COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}
FILTER_UP = 2
# Below this many filtered bytes, one part on the calling thread: threads cost more than they save.
PARALLEL_BYTES = 4 << 20


def encode_png(
    pixels: np.ndarray,
    level: int = 1,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    threads: int | None = None,
) -> bytes:
    """The bytes of a PNG file holding ``pixels``.

    Args:
        pixels: (H, W, C) uint8, C = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA).
        level: zlib level, 0 (stored) to 9.
        icc_profile: a colour profile to embed (iCCP chunk).
        exif: an EXIF block (eXIf chunk), with or without Pillow's ``Exif\\0\\0`` prefix.
        threads: deflate threads; None: up to 4, at most the CPU count.
    """
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in COLOR_TYPES:
        raise ValueError(f"want (H, W, 1..4) uint8 pixels, got {pixels.dtype} {pixels.shape}")
    height, width, channels = pixels.shape
    header = struct.pack(">IIBBBBB", width, height, 8, COLOR_TYPES[channels], 0, 0, 0)
    chunks = [_chunk(b"IHDR", header)]
    if icc_profile:
        chunks.append(_chunk(b"iCCP", b"icc\0\0" + zlib.compress(icc_profile)))
    if exif:
        chunks.append(_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif))
    chunks.append(_chunk(b"IDAT", _deflate(up_filtered(pixels), level, threads)))
    chunks.append(_chunk(b"IEND", b""))
    return SIGNATURE + b"".join(chunks)


def up_filtered(pixels: np.ndarray) -> np.ndarray:
    """The PNG scanlines of ``pixels`` (H, W, C) uint8 with filter Up: (H, 1 + W*C) uint8.

    Each row starts with the filter byte 2 and holds its bytes minus the row above, modulo 256
    (the first row minus a row of zeros).
    """
    height = pixels.shape[0]
    rows = pixels.reshape(height, -1)
    lines = np.empty((height, rows.shape[1] + 1), dtype=np.uint8)
    lines[:, 0] = FILTER_UP
    lines[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=lines[1:, 1:])  # uint8 arithmetic wraps modulo 256
    return lines


def _deflate(lines: np.ndarray, level: int, threads: int | None) -> bytes:
    """One zlib stream of ``lines``' bytes, its parts deflated in parallel and joined."""
    workers = threads or min(4, usable_cpus())
    parts = 1 if lines.nbytes < PARALLEL_BYTES or workers == 1 else 2 * workers
    bounds = np.linspace(0, lines.shape[0], parts + 1).astype(int)
    pieces = [lines[bounds[i] : bounds[i + 1]].tobytes() for i in range(parts)]

    def deflate(index: int) -> bytes:
        # Raw deflate; a sync flush ends each part on a byte boundary so that the parts concatenate.
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
        last = index == parts - 1
        return compressor.compress(pieces[index]) + compressor.flush(
            zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH
        )

    if parts == 1:
        bodies = [deflate(0)]
    else:
        with ThreadPoolExecutor(workers) as pool:
            bodies = list(pool.map(deflate, range(parts)))
    checksum = 1
    for piece in pieces:
        checksum = zlib.adler32(piece, checksum)
    # zlib header: deflate with a 32 KiB window, no preset dictionary; 0x7801 passes its check.
    return b"\x78\x01" + b"".join(bodies) + struct.pack(">I", checksum)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(path: str | os.PathLike, pixels: np.ndarray | Image.Image, level: int = 9) -> Path:
    """Write 8-bit pixels as a PNG file: encoded in memory, then written atomically and verified.

    The one PNG writer for lbam's own pictures (masks, contact sheets, samples, plots).

    Args:
        pixels: (H, W) or (H, W, C) uint8, C = 1 to 4, or a Pillow image (converted to RGB or L).
        level: zlib level; 9 (the default) for small files, 1 for speed.
    """
    if isinstance(pixels, Image.Image):
        pixels = np.asarray(pixels if pixels.mode in ("L", "RGB", "RGBA", "LA") else pixels.convert("RGB"))
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    atomic_write_bytes(path, encode_png(np.ascontiguousarray(pixels), level=level))
    return Path(path)

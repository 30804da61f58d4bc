"""Atomic, verified file writes: an output either appears complete or not at all.

Every write goes to a temporary file next to the target, is flushed and ``fsync``-ed, is checked to
hold exactly the bytes written (a full disk can make a writer stop short without an error; Pillow's
JPEG encoder did), and only then renamed over the target; the folder is then ``fsync``-ed so the
rename survives a crash. Any failure leaves the target as it was and removes the temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lbam.errors import LbamError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, expected_size: int | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file lives in the same folder so the final ``os.replace`` is atomic on POSIX.
    It keeps the target's suffix, because writers such as Pillow pick the format from it. Before
    the rename the file is synced to disk and, with ``expected_size``, its size is checked.
    On any exception the temporary file is removed and ``path`` is left as it was.

    Raises:
        LbamError: the file is shorter than ``expected_size`` (e.g. the disk is full).
        OSError: the file system refused the write (full disk, read-only folder, permissions).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file owner-only; give it the permissions a plain open() would have.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        _sync_and_check(tmp, target, expected_size)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    sync_folder(target.parent)


def _sync_and_check(tmp: Path, target: Path, expected_size: int | None) -> None:
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
        size = os.fstat(handle.fileno()).st_size
    if expected_size is not None and size != expected_size:
        raise LbamError(
            f"cannot write {target}: only {size} of {expected_size} bytes reached the disk (is it full?)"
        )


def sync_folder(folder: Path) -> None:
    """``fsync`` a folder so that renames inside it survive a crash (where the OS supports it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written; a write that makes no progress is ENOSPC."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, checking that every byte reached the disk."""
    with atomic_path(path, expected_size=len(data)) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def resolve_path(path: str | os.PathLike) -> Path:
    """``Path(path).resolve()``, with a symbolic-link loop as a one-line LbamError (it is a
    RuntimeError in Python) instead of a crash."""
    try:
        return Path(path).expanduser().resolve()
    except RuntimeError:
        raise LbamError(f"{path} is a loop of symbolic links") from None
    except OSError as error:
        raise LbamError(f"cannot resolve {path}: {error.strerror or error}") from None

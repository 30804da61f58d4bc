"""One trainer per run folder.

Two ``lbam train`` processes writing one run folder (a second ``--resume`` started by mistake, or
a new run started with an ``--out`` that another one is using) interleave their checkpoints,
pointers and logs. The trainer holds an advisory lock (``flock``) on ``RUN_DIR/lock`` for as long
as it runs; the file keeps the holder's process id so the refusal can name it. The operating system
drops the lock when the process ends, however it ends, so a crash never leaves a stale lock. Where
``fcntl`` does not exist (Windows) no lock is taken.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from lbam.errors import LbamError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "lock"


class RunLock:
    """``with RunLock(run_dir) as lock: lock.acquire()`` holds ``run_dir/lock`` until the block ends."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock; nothing to take while the run folder does not exist (set-up reports that).

        Raises:
            LbamError: another process holds it, or the lock file cannot be written.
        """
        if fcntl is None or self._fd is not None or not self.path.parent.is_dir():
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise LbamError(f"cannot lock run folder {self.path.parent}: {error.strerror or error}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LbamError(
                f"run folder {self.path.parent} is in use by another lbam train (process {holder}); "
                "wait for it to end or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Drop the lock; the file stays (removing it would let a third process lock another file)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()

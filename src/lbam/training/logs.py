"""Where a run reports to: ``train.log``, ``metrics.jsonl``, TensorBoard and sample images.

Only rank 0 writes; the other processes get a :class:`RunLogger` with ``enabled=False`` whose
methods do nothing, so the training loop needs no ``if rank == 0`` around its logging.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from lbam.errors import LbamError
from lbam.imaging.pixels import to_uint8
from lbam.imaging.png import write_png
from lbam.utils.files import atomic_write_text

LOGGER_NAME = "lbam.train"


class _TqdmStream:
    """Console handler target that does not break an active tqdm bar."""

    def write(self, text: str) -> None:
        text = text.rstrip("\n")
        if text:
            tqdm.write(text, file=sys.stderr)

    def flush(self) -> None:
        sys.stderr.flush()


class RunLogger:
    """Log lines, scalar series and image grids of one training run.

    Args:
        run_dir: the run folder; ``train.log``, ``metrics.jsonl``, ``tb/`` and ``samples/`` go there.
        enabled: False on ranks other than 0.
        start_step: the step the run (re)starts from; TensorBoard events and metrics lines after it,
            left by a run that crashed after its last checkpoint, are dropped.
    """

    def __init__(self, run_dir: Path, enabled: bool = True, start_step: int = 0) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self.logger = logging.getLogger(LOGGER_NAME)
        self._handlers: list[logging.Handler] = []
        self._writer = None
        if not enabled:
            return
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        file_handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        console = logging.StreamHandler(_TqdmStream())  # type: ignore[arg-type]
        console.setFormatter(logging.Formatter("%(message)s"))
        for handler in (file_handler, console):
            self.logger.addHandler(handler)
            self._handlers.append(handler)
        _truncate_metrics(run_dir / "metrics.jsonl", start_step)
        try:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events at and after it: keep those of the checkpointed step itself
            self._writer = SummaryWriter(
                str(run_dir / "tb"), purge_step=start_step + 1 if start_step else None
            )
        except ImportError as error:  # tensorboard comes with the [train] extra; train without it too
            self.logger.warning(
                'TensorBoard unavailable (%s; pip install "lbam[train]"); scalars go to metrics.jsonl only',
                error,
            )

    def info(self, message: str, *args: Any) -> None:
        if self.enabled:
            self.logger.info(message, *args)

    def warning(self, message: str, *args: Any) -> None:
        if self.enabled:
            self.logger.warning(message, *args)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """One line of ``metrics.jsonl`` and one TensorBoard scalar per value (names like ``train/hole``)."""
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.time(), 3)}
        record.update({key: _finite_or_none(value) for key, value in values.items()})
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(key, value, step)

    def image_grid(self, step: int, tag: str, grid: Tensor) -> Path | None:
        """Save a (3, H, W) image in [0, 1] to TensorBoard and to ``samples/<tag>_<step>.png``."""
        if not self.enabled:
            return None
        if self._writer is not None:
            self._writer.add_image(tag, grid, step)
        path = self.run_dir / "samples" / f"{tag}_{step:08d}.png"
        try:
            write_png(path, to_uint8(grid.permute(1, 2, 0)))
        except (OSError, LbamError) as error:  # a sample is not worth stopping the run for
            self.warning("could not write sample %s: %s", path, error)
            return None
        return path

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()
        for handler in self._handlers:
            handler.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for handler in self._handlers:
            self.logger.removeHandler(handler)
            handler.close()
        self._handlers.clear()


def sample_grid(image: Tensor, known_mask: Tensor, output: Tensor, columns: int = 4) -> Tensor:
    """Rows of (input with the hole shown white, raw output, composite, target) for each sample.

    image, output: (B, 3, H, W) in [0, 1]; known_mask: (B, 1, H, W), 1 = known. Returns
    (3, B*H + pad, 4*W + pad) in [0, 1] with a 2-pixel grey gap between tiles.
    """
    known = known_mask.to(image.dtype).expand_as(image)
    masked_input = image * known + (1 - known)
    composite = output * (1 - known) + image * known
    tiles = torch.stack([masked_input, output, composite, image], dim=1)  # (B, 4, 3, H, W)
    b, n, c, h, w = tiles.shape
    gap = 2
    grid = torch.full((c, b * (h + gap) - gap, n * (w + gap) - gap), 0.5, dtype=image.dtype)
    for i in range(b):
        for j in range(n):
            grid[:, i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = tiles[i, j].cpu()
    return grid


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file (what :meth:`RunLogger.scalars` wrote)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _truncate_metrics(path: Path, start_step: int) -> None:
    """Drop records after ``start_step``: a resumed run writes those steps again."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = []
    for line in lines:
        try:
            if json.loads(line).get("step", 0) <= start_step:
                kept.append(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(line + "\n" for line in kept))


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None

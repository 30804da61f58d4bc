"""What the server does with one request, free of HTTP: decode, inpaint, encode; and its single worker.

Uploads are decoded from memory (nothing reaches the disk unless ``--output-dir`` asks for it),
with the same readers and the same options as ``lbam inpaint``. One model runs one inference at a
time on a worker thread, so requests never race on the model and never block the event loop; at
most ``queue_size`` more wait, and any further request is turned away at once (503).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from lbam.errors import Cancelled
from lbam.imaging.formats import BY_PILLOW
from lbam.imaging.io import encode_picture, image_size, read_image, to_8bit
from lbam.imaging.masks import prepare_hole, read_mask
from lbam.imaging.png import encode_png
from lbam.imaging.select import make_hints, select_object
from lbam.inference.budget import check_budget
from lbam.inference.optimize import OptimizedGenerator
from lbam.inference.pipeline import inpaint_picture
from lbam.model.card import card_of
from lbam.options import InpaintOptions
from lbam.utils.files import atomic_write_bytes

T = TypeVar("T")


@dataclass
class Result:
    """An inpainted image: its bytes and what the response headers report."""

    data: bytes
    fmt: str
    seconds: float
    strategy: str
    hole_fraction: float
    refine: str


class Busy(Exception):
    """Every slot of the queue is taken (the server answers 503 with Retry-After)."""


class Worker:
    """One inference at a time on one thread, at most ``queue_size`` more waiting.

    A request takes its slot (:meth:`slot`) before its upload is read, so a full queue costs the
    server nothing; :meth:`run` gives up a job whose client has gone: a waiting one never starts, a
    running one stops before its next model pass (the job's ``stop`` event is set).
    """

    POLL_SECONDS = 0.2

    def __init__(self, queue_size: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lbam-inpaint")
        self._slots = threading.BoundedSemaphore(queue_size + 1)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one place in the queue; Busy at once when there is none."""
        if not self._slots.acquire(blocking=False):
            raise Busy
        try:
            yield
        finally:
            self._slots.release()

    async def run(
        self,
        job: Callable[[threading.Event], T],
        gone: Callable[[], Awaitable[bool]] | None = None,
        stop: threading.Event | None = None,
    ) -> T:
        """Run ``job(stop)`` on the worker thread.

        Cancelled as soon as ``gone()`` says the client left or someone sets ``stop`` (a cancel):
        the caller's slot is free at once, a waiting job never starts and a running one stops
        before its next model pass.
        """
        stop = stop or threading.Event()
        future = self._executor.submit(_then_release_memory, job, stop)
        waiting = asyncio.wrap_future(future)
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=self.POLL_SECONDS)
            if done:
                return waiting.result()
            if stop.is_set():
                raise _abandon(future, waiting, "cancelled")
            if gone is not None and await gone():
                stop.set()
                raise _abandon(future, waiting, "the client went away")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _abandon(future: Any, waiting: asyncio.Future, why: str) -> Cancelled:
    """Give up on a job: a waiting one never starts; a running one's end (its Cancelled) is read
    and dropped, so asyncio does not log it as never retrieved."""
    future.cancel()
    waiting.add_done_callback(lambda done: done.cancelled() or done.exception())
    return Cancelled(why)


def _then_release_memory(job: Callable[[threading.Event], T], stop: threading.Event) -> T:
    try:
        return job(stop)
    finally:
        release_memory()


def release_memory() -> None:
    """Give the heap pages a large request freed back to the system (glibc keeps them otherwise:
    1.1 to 1.3 GB stayed resident after one large photo)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class Job:
    """What one request is doing, for ``GET /api/v1/jobs/{id}``; ``stop`` cancels it.

    Stages: queued, reading, filling (``done`` of ``total`` windows), encoding, done.
    """

    def __init__(self) -> None:
        self.stage = "queued"
        self.done = 0
        self.total = 0
        self.started = time.monotonic()
        self.stop = threading.Event()

    def report(self, stage: str, done: int = 0, total: int = 0) -> None:
        if self.stop.is_set():
            raise Cancelled(f"cancelled while {self.stage}")
        self.stage, self.done, self.total = stage, done, total

    def progress(self, done: int, total: int) -> None:
        """The pipeline's progress callback: a cancelled job stops before its next window."""
        if self.stop.is_set():
            raise Cancelled(f"stopped after {done} of {total} model passes")
        self.report("filling", done, total)

    def to_dict(self) -> dict[str, Any]:
        seconds = round(time.monotonic() - self.started, 3)
        return {"stage": self.stage, "done": self.done, "total": self.total, "seconds": seconds}


class JobBoard:
    """The jobs in flight, by the id their client chose (``X-Lbam-Job``); at most one per slot."""

    ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    @contextlib.contextmanager
    def track(self, job_id: str | None) -> Iterator[Job]:
        """A new job, listed under ``job_id`` while the request runs (not listed when None)."""
        job = Job()
        if job_id is not None:
            self._jobs[job_id] = job
        try:
            yield job
        finally:
            if job_id is not None:
                self._jobs.pop(job_id, None)

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)


def inpaint_bytes(
    model: nn.Module,
    image: bytes,
    mask: bytes,
    options: InpaintOptions,
    fmt: str | None,
    quality: int,
    job: Job | None = None,
    budget: int | None = None,
) -> Result:
    """Inpaint an uploaded photo with an uploaded mask (white = hole); ``fmt`` None keeps the photo's
    format when the server answers in it, else PNG. ``job`` hears of every stage and model pass (and
    stops the work when cancelled); a photo whose work would need more than ``budget`` bytes is
    refused before it is decoded.

    Raises:
        LbamError: unreadable image or mask (NotAnImageError for non-images, PixelLimitError for
            oversized ones), a size mismatch, a mask that is all hole.
    """
    start = time.perf_counter()
    job = job or Job()
    job.report("reading")
    how = "send it with strategy fit (the default) or smaller (lbam serve --max-memory-mb raises it)"
    check_budget(image_size(image), options, card_of(model), budget, how)
    picture = read_image(image, options.max_pixels)
    hole = prepare_hole(
        read_mask(mask, options.max_pixels),
        (picture.height, picture.width),
        options.invert_mask,
        options.dilate,
        options.resize_mask,
        name="mask",
    )
    if hole.any():
        picture, report = inpaint_picture(picture, hole, model, options, job.progress)
        strategy, refine = report.strategy, report.refine
    else:
        strategy, refine = "none", "none"
    served = picture.format in BY_PILLOW and BY_PILLOW[picture.format].served
    chosen = fmt or (picture.format if served else "PNG")
    job.report("encoding")
    data, _ = encode_picture(picture, chosen, quality)
    job.report("done")
    return Result(data, chosen, time.perf_counter() - start, strategy, float(hole.mean()), refine)


def select_bytes(image: bytes, points: Any, box: Any, max_pixels: int, job: Job | None = None) -> bytes:
    """The object the hints point at in an uploaded photo, as a PNG of its size (white = selected).

    Raises:
        LbamError: an unreadable or oversized image, or hints that do not fit it
            (:func:`lbam.imaging.select.make_hints`).
    """
    job = job or Job()
    job.report("reading")
    picture = to_8bit(read_image(image, max_pixels))
    rgb = picture.color if picture.color.shape[2] == 3 else np.repeat(picture.color, 3, axis=2)
    hints = make_hints(points, box, (picture.height, picture.width))
    job.report("selecting")
    selected = select_object(rgb, hints)
    job.report("encoding")
    return encode_png(selected.astype(np.uint8)[..., None] * 255)


def save_output(folder: Path, result: Result) -> Path:
    """Keep a result in ``folder`` under a new, unique name (atomically)."""
    suffix = BY_PILLOW[result.fmt].suffixes[0]
    path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}{suffix}"
    atomic_write_bytes(path, result.data)
    return path


def model_facts(model: nn.Module, name: str, device: Any) -> dict[str, Any]:
    """What ``GET /api/v1/model`` and the page show about the loaded generator: its name (a file's
    name, never its folder: the page may be read by other sites' scripts) and its card."""
    card, backend = card_of(model), backend_name(model)
    return {
        "name": Path(name).name,
        **card.to_dict(),
        "device": str(device),
        "compiled": "inductor" in backend,
        "backend": backend,
    }


def backend_name(model: nn.Module) -> str:
    """The engine that runs ``model``: e.g. "eager", "inductor", "onnxruntime" (a BackendGenerator's
    choice per size bucket, "auto: onnxruntime at 256 px", once it has chosen)."""
    from lbam.inference.backends import BackendGenerator

    if isinstance(model, BackendGenerator):
        chosen = ", ".join(f"{name} at {bucket} px" for bucket, name in sorted(model.chosen.items()))
        return f"{model.backend}: {chosen}" if model.backend == "auto" and chosen else model.backend
    if isinstance(model, OptimizedGenerator):
        name = "eager" if model.compiled is None else "inductor"
        return f"{name}-bf16" if model.dtype == torch.bfloat16 else name
    return "eager"

"""Inpainting files: one photo, or a folder of photos paired with masks by file name.

Inputs are never overwritten: an output path that is the photo or its mask is refused, and so is
an output folder that is the photo or mask folder. Outputs are written atomically, so a failure
leaves no partial file.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from torch import nn
from tqdm import tqdm

from lbam.errors import LbamError
from lbam.imaging.files import list_images
from lbam.imaging.formats import SUFFIX_FORMATS
from lbam.imaging.io import Picture, copy_file, image_size, output_format, read_image, write_image
from lbam.imaging.masks import prepare_hole, read_mask
from lbam.inference.budget import check_budget, default_budget_bytes
from lbam.inference.pipeline import InpaintReport, inpaint_picture
from lbam.model.card import card_of
from lbam.options import InpaintOptions
from lbam.utils.files import resolve_path

# A mask named "<stem>_mask.<ext>" also pairs with the photo "<stem>.<ext>".
MASK_SUFFIX = "_mask"


@dataclasses.dataclass
class FileResult:
    """What happened to one photo: ``report`` is None when the mask had no hole and it was copied."""

    image: Path
    output: Path
    width: int
    height: int
    report: InpaintReport | None
    notes: list[str]
    seconds: float
    # where the time went: decoding photo and mask, the model passes, encoding and writing
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    def summary(self) -> str:
        """One line for the user."""
        size = f"{self.width}x{self.height}"
        if self.report is None:
            return f"mask has no hole: wrote an unchanged copy of {self.image} ({size}) to {self.output}"
        r = self.report
        passes = (
            f", {r.model_calls} window{'s' * (r.model_calls != 1)}" if r.strategy in ("crop", "fit") else ""
        )
        return (
            f"inpainted {self.image} ({size}, hole {100 * r.hole_fraction:.1f}%, "
            f"strategy {r.strategy}{passes}) in {self.seconds:.2f} s -> {self.output}"
        )


@dataclasses.dataclass
class FolderSummary:
    """The outcome of a folder run: results, failures (photo, reason) and masks no photo used."""

    results: list[FileResult]
    failures: list[tuple[Path, str]]
    unused_masks: list[Path]
    seconds: float
    skipped: list[Path] = dataclasses.field(default_factory=list)  # outputs that existed (--skip-existing)


def refuse_overwriting_inputs(output: Path, inputs: list[Path]) -> None:
    """LbamError if ``output`` is (or links to) one of the input files."""
    for source in inputs:
        same = resolve_path(output) == resolve_path(source)
        if not same and output.exists() and source.exists():
            same = os.path.samefile(output, source)
        if same:
            raise LbamError(f"output {output} is the input file {source}: refusing to overwrite an input")


@dataclasses.dataclass
class Job:
    """One photo of a folder run; ``problem`` says why it cannot be done (no mask, ...)."""

    image: Path
    mask: Path | None
    output: Path
    problem: str | None = None


def _read_pair(image_path: Path, mask_path: Path, options: InpaintOptions) -> tuple[Picture, np.ndarray]:
    """The photo and its hole map (True = hole), fitted to the photo as ``options`` say."""
    picture = read_image(image_path, options.max_pixels)
    hole = prepare_hole(
        read_mask(mask_path, options.max_pixels),
        (picture.height, picture.width),
        invert=options.invert_mask,
        dilate=options.dilate,
        resize=options.resize_mask,
        name=f"mask {mask_path}",
    )
    return picture, hole


def inpaint_file(
    job: Job,
    model_loader: Callable[[], nn.Module],
    options: InpaintOptions | None = None,
    jpeg_quality: int = 95,
) -> FileResult:
    """Inpaint the photo ``job.image`` with the mask file ``job.mask`` (white = hole) into ``job.output``.

    Every check (paths, decoding, mask size, mask covering everything) happens before the model is
    asked for, through ``model_loader()``, so bad input fails fast. A mask with no hole writes a copy
    of the photo (byte for byte when the output format is the photo's own).

    Raises:
        LbamError: missing/unreadable files, mask size mismatch, all-hole mask, output = an input.
    """
    options = options or InpaintOptions()
    start = time.perf_counter()
    if job.mask is None:
        raise LbamError(f"no mask for {job.image}")
    image_path, mask_path, output_path = Path(job.image), Path(job.mask), Path(job.output)
    fmt = output_format(output_path)
    refuse_overwriting_inputs(output_path, [image_path, mask_path])
    if options.strategy == "full":  # the one strategy whose memory grows with the whole photo
        how = "use --strategy fit (the default), which fills each hole in a window of its own"
        check_budget(image_size(image_path), options, card_of(model_loader()), default_budget_bytes(0.8), how)
    picture, hole = _read_pair(image_path, mask_path, options)
    if not hole.any():
        if picture.format == fmt:
            copy_file(image_path, output_path)
            notes = []
        else:
            notes = write_image(picture, output_path, jpeg_quality)
        seconds = time.perf_counter() - start
        return FileResult(image_path, output_path, picture.width, picture.height, None, notes, seconds)
    read = time.perf_counter()
    model = model_loader()
    loaded = time.perf_counter()
    result, report = inpaint_picture(picture, hole, model, options)
    written = time.perf_counter()
    notes = write_image(result, output_path, jpeg_quality)
    seconds = time.perf_counter() - start
    timings = {
        "read": read - start,
        "load": loaded - read,
        "model": report.seconds,
        "write": time.perf_counter() - written,
    }
    return FileResult(image_path, output_path, picture.width, picture.height, report, notes, seconds, timings)


def plan_folder(
    images_dir: Path, masks: Path, out_dir: Path, ext: str | None = None
) -> tuple[list[Job], list[Path]]:
    """Pair every photo of ``images_dir`` with its mask and output path.

    ``masks`` is either one mask file for every photo, or a folder where the mask of ``a.jpg`` is
    ``a.<any image suffix>`` or ``a_mask.<suffix>`` (only the latter when it is the photo folder).
    Outputs are ``out_dir/<stem><ext>``, ``ext`` defaulting to each photo's own suffix.

    Returns:
        The jobs, and the mask files no photo uses.
    """
    same_folder = masks.is_dir() and resolve_path(masks) == resolve_path(images_dir)
    images = [
        p
        for p in list_images(images_dir, recursive=False)
        if not (same_folder and p.stem.endswith(MASK_SUFFIX))
    ]
    if not images:
        raise LbamError(f"image folder {str(images_dir)!r} holds only masks ({MASK_SUFFIX} names)")
    masks_by_stem: dict[str, list[Path]] = defaultdict(list)
    if masks.is_dir():
        for mask in list_images(masks, recursive=False, what="mask"):
            if not same_folder:
                masks_by_stem[mask.stem].append(mask)
            if mask.stem.endswith(MASK_SUFFIX):
                masks_by_stem[mask.stem[: -len(MASK_SUFFIX)]].append(mask)
    jobs, used, outputs = [], set(), {}
    for image in images:
        output = out_dir / (image.stem + (ext or image.suffix))
        if resolve_path(output).parent != resolve_path(out_dir):  # never write outside the output folder
            raise LbamError(f"output {output} of {image.name} would lie outside {out_dir}")
        job = Job(image, masks, output)
        if not image.exists():
            job.problem = "a broken symbolic link (or a loop of them): there is no photo to read"
        elif masks.is_dir():
            candidates = masks_by_stem.get(image.stem, [])
            used.update(candidates)
            if not candidates:
                job.problem = f"no mask named {image.stem}.* or {image.stem}{MASK_SUFFIX}.* in {masks}"
            elif len(candidates) > 1:
                job.problem = f"several masks match: {', '.join(p.name for p in candidates)}"
            else:
                job.mask = candidates[0]
        if output in outputs:
            job.problem = f"its output {output.name} would overwrite the result of {outputs[output].name}"
        outputs.setdefault(output, image)
        jobs.append(job)
    all_masks = {m for ms in masks_by_stem.values() for m in ms}
    return jobs, sorted(all_masks - used)


class Progress:
    """A folder run's progress: a bar naming the current photo on a terminal, else one line per
    photo on stderr (a log file or a CI job would otherwise see nothing until the end)."""

    def __init__(self, total: int, enabled: bool | None) -> None:
        terminal = sys.stderr.isatty()
        self.lines = enabled is None and not terminal
        self.bar = tqdm(total=total, unit="image", disable=not (enabled if enabled is not None else terminal))
        self.total, self.count, self.name, self.started = total, 0, "", 0.0

    def start(self, name: str) -> None:
        self.name, self.started = name, time.perf_counter()
        self.bar.set_postfix_str(name, refresh=True)

    def done(self) -> None:
        self.count += 1
        self.bar.update(1)
        if self.lines:
            seconds = time.perf_counter() - self.started
            print(f"[{self.count}/{self.total}] {self.name} ({seconds:.1f} s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        self.bar.close()


def normalise_ext(ext: str | None) -> str | None:
    """ ".png" from "png" or ".png"; LbamError for anything but a suffix this package writes."""
    if ext is None:
        return None
    ext = ext if ext.startswith(".") else f".{ext}"
    if ext.lower() not in SUFFIX_FORMATS:  # also refuses "png/../../x.png": no path may hide in it
        raise LbamError(
            f"--ext {ext[1:]!r} is not an image suffix lbam writes; use one of {', '.join(s[1:] for s in SUFFIX_FORMATS)}"
        )
    return ext.lower()


def _check_folders(images_dir: Path, masks: Path, out_dir: Path) -> None:
    if not images_dir.is_dir():
        raise LbamError(f"image folder not found: {images_dir}")
    if not masks.exists():
        raise LbamError(f"mask not found: {masks}")
    if out_dir.exists() and not out_dir.is_dir():
        raise LbamError(f"output folder {out_dir} exists and is not a folder: choose another -o")
    for folder in (images_dir, masks):
        if resolve_path(out_dir) == resolve_path(folder):
            raise LbamError(f"output folder {out_dir} is the input folder {folder}: choose another one")


def inpaint_folder(
    images_dir: str | os.PathLike,
    masks: str | os.PathLike,
    out_dir: str | os.PathLike,
    model_loader: Callable[[], nn.Module],
    options: InpaintOptions | None = None,
    *,
    ext: str | None = None,
    jpeg_quality: int = 95,
    progress: bool | None = None,
    skip_existing: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> FolderSummary:
    """Inpaint every photo of a folder (see :func:`plan_folder` for the pairing), going on after failures.

    ``model_loader`` is called once, before the first photo, so a bad model stops the run at once.
    ``progress``: show a tqdm bar (None = only on a terminal). ``skip_existing``: leave photos whose
    output file exists (to resume an interrupted batch); otherwise outputs are replaced.
    ``shard`` = (index, count): do only every count-th photo, from the index-th (lbam.inference.shard).

    Raises:
        LbamError: missing folders, no photos, an output folder that is an input folder, a bad model.
    """
    start = time.perf_counter()
    images_dir, masks, out_dir = Path(images_dir), Path(masks), Path(out_dir)
    _check_folders(images_dir, masks, out_dir)
    ext = normalise_ext(ext)
    jobs, unused = plan_folder(images_dir, masks, out_dir, ext)
    jobs = jobs[shard[0] :: shard[1]]
    model = model_loader()
    results, failures, skipped = [], [], []
    report = Progress(len(jobs), progress)
    for job in jobs:
        report.start(job.image.name)
        if job.problem:
            failures.append((job.image, job.problem))
        elif skip_existing and job.output.exists():
            skipped.append(job.output)
        else:
            try:
                results.append(inpaint_file(job, lambda: model, options, jpeg_quality))
            except LbamError as error:
                failures.append((job.image, str(error)))
            except Exception as error:  # a bug or out of memory on one photo must not stop the others
                failures.append((job.image, f"internal error: {type(error).__name__}: {error}"))
        report.done()
    report.close()
    return FolderSummary(results, failures, unused, time.perf_counter() - start, skipped)

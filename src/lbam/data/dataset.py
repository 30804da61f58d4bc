"""The image-folder dataset: photos cut into training crops, each paired with a random hole mask.

Training items follow the paper: resize to ``load_size`` x ``load_size`` (bicubic, aspect ignored),
a random ``crop_size`` square crop, a random horizontal flip, and a mask from the mask generator.
With ``max_load_size`` each training item draws its load size from [load_size, max_load_size]
(scale augmentation: a small photo set then yields crops at many zoom levels).
Everything random about item ``i`` in epoch ``e`` comes from ``numpy.random.default_rng((seed, e, i))``
and nothing else, so an item is the same whichever DataLoader worker builds it, and a resumed run
sees the very same crops and masks. Validation items (``train=False``) are fixed: a centre crop
and a mask drawn from ``default_rng((seed, i))``, the same in every epoch.

Damaged files never stop an epoch: files whose header cannot be read are dropped (and reported)
when the dataset is built; a file that still fails to decode later is logged once and replaced by
the next readable file in the list.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from lbam.data.masks.base import MaskGenerator
from lbam.errors import LbamError
from lbam.imaging.files import list_images
from lbam.imaging.io import DECODE_ERRORS, load_rgb

LOG = logging.getLogger(__name__)

RESIZE_MODES = ("square", "shorter_side")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels; raises DECODE_ERRORS."""
    with Image.open(path) as image:
        return image.size


class InpaintingDataset(Dataset):
    """Photos from a folder as ``{"image", "known_mask"}`` items for training or validation.

    Args:
        root: image folder (searched recursively, see :func:`lbam.imaging.files.list_images`) or a list of image files.
        mask_generator: ``generator((H, W), rng) -> known_mask`` (see :mod:`lbam.data.masks`).
        crop_size: side S of the square crops.
        load_size: resize target before cropping (the paper: 350); None keeps the original size.
        train: True: random crop + flip, masks per (seed, epoch, index); False: the fixed
            validation set (centre crop, masks per (seed, index)).
        seed: base of every random draw.
        resize_mode: "square" (the paper: load_size x load_size, aspect ignored) or "shorter_side"
            (aspect kept, shorter side = load_size).
        max_load_size: training only: draw each item's load size uniformly from
            [load_size, max_load_size]; None (the paper) always uses load_size.
        jpeg_draft: let JPEG decoding downscale by powers of two first (much faster for large photos).

    Items: ``{"image": FloatTensor (3, S, S) in [0, 1] RGB, "known_mask": FloatTensor (1, S, S),
    1 = known, 0 = hole}``.

    Attributes:
        files: the usable image files, in item order.
        skipped_files: files dropped at construction (unreadable header, or smaller than the crop
            when ``load_size`` is None).
        failed_loads: decode failures met in ``__getitem__`` by this process.

    Raises:
        LbamError: no images, no mask generator, bad sizes, ``crop_size > load_size``,
            ``max_load_size < load_size``, or no file
            readable and large enough.
    """

    def __init__(
        self,
        root: str | os.PathLike | Sequence[str | os.PathLike],
        mask_generator: MaskGenerator,
        crop_size: int = 256,
        load_size: int | None = 350,
        train: bool = True,
        seed: int = 0,
        resize_mode: str = "square",
        jpeg_draft: bool = True,
        max_load_size: int | None = None,
    ) -> None:
        if mask_generator is None or not callable(mask_generator):
            raise LbamError("no mask generator given: configure at least one mask kind")
        if resize_mode not in RESIZE_MODES:
            raise LbamError(f"resize_mode must be one of {', '.join(RESIZE_MODES)}, got {resize_mode!r}")
        if int(crop_size) < 1 or (load_size is not None and int(load_size) < 1):
            raise LbamError(f"crop_size and load_size must be positive, got {crop_size} and {load_size}")
        if load_size is not None and int(crop_size) > int(load_size):
            raise LbamError(f"crop_size ({crop_size}) is larger than load_size ({load_size})")
        if max_load_size is not None and (load_size is None or int(max_load_size) < int(load_size)):
            raise LbamError(
                f"max_load_size ({max_load_size}) needs a load_size no larger than it, got {load_size}"
            )
        if int(seed) < 0:
            raise LbamError(f"seed must be >= 0, got {seed}")
        self.mask_generator = mask_generator
        self.crop_size = int(crop_size)
        self.load_size = None if load_size is None else int(load_size)
        self.max_load_size = None if max_load_size is None else int(max_load_size)
        self.train = bool(train)
        self.seed = int(seed)
        self.resize_mode = resize_mode
        self.jpeg_draft = bool(jpeg_draft)
        self.epoch = 0
        self.failed_loads = 0
        self._bad: set[int] = set()

        if isinstance(root, (str, os.PathLike)):
            self.root = str(root)
            candidates = list_images(root)
        else:
            self.root = "<file list>"
            candidates = [Path(p) for p in root]
            if not candidates:
                raise LbamError("the list of image files is empty")
        self.files, self.skipped_files = self._check_files(candidates)

    def _check_files(self, candidates: list[Path]) -> tuple[list[Path], list[Path]]:
        """Read every header (threads: this is I/O); keep readable files big enough to crop."""

        def probe(path: Path) -> str | tuple[int, int]:
            try:
                return image_size(path)
            except (LbamError, *DECODE_ERRORS) as error:
                return f"{type(error).__name__}: {error}"

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(probe, candidates))
        files, unreadable, small = [], [], []
        for path, result in zip(candidates, results, strict=True):
            if isinstance(result, str):
                unreadable.append(path)
                LOG.info("unreadable image %s (%s)", path, result)
            elif self.load_size is None and min(result) < self.crop_size:
                small.append(path)
            else:
                files.append(path)
        if not files:  # one error line, no warnings before it
            if small:
                raise LbamError(
                    f"crop_size {self.crop_size} is larger than every image in {self.root!r}; "
                    "lower crop_size or set a load_size"
                )
            first = f", e.g. {unreadable[0].name}" if unreadable else ""
            raise LbamError(f"no readable image in {self.root!r} ({len(unreadable)} unreadable files{first})")
        _report(unreadable, len(candidates), self.root, "unreadable")
        _report(small, len(candidates), self.root, f"smaller than crop_size {self.crop_size}")
        return files, unreadable + small

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose crops and masks training items show (ignored for validation).

        DataLoader workers hold copies of the dataset: call this before creating the epoch's
        iterator, and do not use ``persistent_workers=True`` (those copies would keep the old epoch).
        """
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self.files):
            raise IndexError(f"item {index} out of range for {len(self.files)} images")
        if self.train:
            rng = np.random.default_rng((self.seed, self.epoch, index))
        else:
            rng = np.random.default_rng((self.seed, index))
        load_size = self.load_size
        if self.train and self.max_load_size is not None:  # drawn only then: other runs keep their draws
            load_size = int(rng.integers(self.load_size, self.max_load_size + 1))
        image = self._load_first_readable(index, load_size)
        pixels = self._crop_and_flip(image, rng)
        known_mask = self.mask_generator((self.crop_size, self.crop_size), rng)
        return {
            # astype copies: the crop may be a read-only view of the decoded photo (torch warns on those)
            "image": torch.from_numpy(pixels.astype(np.float32)).permute(2, 0, 1).div_(255.0),
            "known_mask": torch.from_numpy(np.ascontiguousarray(known_mask, dtype=np.float32))[None],
        }

    def _load_first_readable(self, index: int, load_size: int | None) -> Image.Image:
        """Image ``index`` resized for cropping, or the next readable file after it in the list."""
        for offset in range(len(self.files)):
            candidate = (index + offset) % len(self.files)
            if candidate in self._bad:
                continue
            try:
                return self._load(self.files[candidate], load_size)
            except (LbamError, *DECODE_ERRORS) as error:
                self._bad.add(candidate)
                self.failed_loads += 1
                LOG.warning("%s; using the next readable image", error)
        raise LbamError(f"no image in {self.root!r} could be decoded")

    def _load(self, path: Path, load_size: int | None) -> Image.Image:
        """Decode and resize one image to ``load_size`` per ``resize_mode`` (None: original size)."""
        if load_size is None:
            return load_rgb(path)
        # both modes need both sides >= load_size, which is what the JPEG draft guarantees
        image = load_rgb(path, load_size if self.jpeg_draft else None)
        if self.resize_mode == "square":
            target = (load_size, load_size)
        else:
            scale = load_size / min(image.width, image.height)
            target = (
                max(load_size, round(image.width * scale)),
                max(load_size, round(image.height * scale)),
            )
        return image.resize(target, Image.Resampling.BICUBIC)

    def _crop_and_flip(self, image: Image.Image, rng: np.random.Generator) -> np.ndarray:
        """A crop_size square as uint8 (S, S, 3): random crop + flip for training, centre crop else."""
        size = self.crop_size
        if image.width < size or image.height < size:  # the file changed since the dataset was built
            image = image.resize((max(size, image.width), max(size, image.height)), Image.Resampling.BICUBIC)
        pixels = np.asarray(image)
        height, width = pixels.shape[:2]
        if self.train:
            top = int(rng.integers(0, height - size + 1))
            left = int(rng.integers(0, width - size + 1))
            flip = bool(rng.random() < 0.5)
        else:
            top, left, flip = (height - size) // 2, (width - size) // 2, False
        pixels = pixels[top : top + size, left : left + size]
        if flip:
            pixels = pixels[:, ::-1]
        return np.ascontiguousarray(pixels)


def _report(files: list[Path], total: int, root: str, reason: str) -> None:
    """One warning naming (up to ten of) the files skipped for ``reason``."""
    if not files:
        return
    names = ", ".join(str(p) for p in files[:10]) + (
        f" and {len(files) - 10} more" if len(files) > 10 else ""
    )
    LOG.warning("skipping %d of %d images in %s (%s): %s", len(files), total, root, reason, names)

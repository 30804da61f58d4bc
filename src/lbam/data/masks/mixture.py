"""Mask kinds by name, weighted mixtures of them, and the config / command-line forms that build them.

A config lists mask sources as dicts, e.g. (YAML)::

    masks:
      - {kind: files, path: /data/nvidia_masks, weight: 2}
      - {kind: noise, weight: 1}
      - {kind: lama_thick, weight: 1, width: [20, 80]}

Every key other than ``kind`` and ``weight`` is an option of that kind (see the generator classes).
The short text form ``kind[=path][:weight],...`` (``files=/data/masks:2,noise:1``) gives the same.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import numpy as np

from lbam.data.masks.base import MaskGenerator, check_size
from lbam.data.masks.files import FileMasks
from lbam.data.masks.noise import NoiseBlobs
from lbam.data.masks.objects import ObjectMasks
from lbam.data.masks.strokes import (
    DeepFillStrokes,
    LamaBoxes,
    LamaStrokes,
    lama_medium,
    lama_thick,
    lama_thin,
)
from lbam.errors import LbamError

# kind name -> (factory, class whose __init__ lists the accepted options)
KINDS: dict[str, tuple[Callable[..., MaskGenerator], type]] = {
    "files": (FileMasks, FileMasks),
    "noise": (NoiseBlobs, NoiseBlobs),
    "lama_thin": (lama_thin, LamaStrokes),
    "lama_medium": (lama_medium, LamaStrokes),
    "lama_thick": (lama_thick, LamaStrokes),
    "lama_boxes": (LamaBoxes, LamaBoxes),
    "deepfill": (DeepFillStrokes, DeepFillStrokes),
    "objects": (ObjectMasks, ObjectMasks),
}


def known_kinds() -> str:
    return ", ".join(KINDS)


def kind_options(kind: str) -> list[str]:
    """Option names that ``kind`` accepts."""
    _, cls = _lookup(kind)
    return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]


def _lookup(kind: str) -> tuple[Callable[..., MaskGenerator], type]:
    if kind not in KINDS:
        raise LbamError(f"unknown mask kind {kind!r}; known kinds: {known_kinds()}")
    return KINDS[kind]


def build_mask_generator(kind: str, **options) -> MaskGenerator:
    """The generator of ``kind`` ("files", "noise", "lama_thin", "lama_medium", "lama_thick",
    "lama_boxes", "deepfill") with keyword ``options``.

    Raises:
        LbamError: unknown kind (lists the known ones), unknown option (lists the valid ones),
            bad option value, "files" without ``path`` or with an empty folder.
    """
    factory, _ = _lookup(kind)
    valid = kind_options(kind)
    for name in options:
        if name not in valid:
            raise LbamError(f"mask kind {kind!r} has no option {name!r}; valid options: {', '.join(valid)}")
    if kind == "files" and not options.get("path"):
        raise LbamError("mask kind 'files' needs a 'path' (the folder of mask images, white = hole)")
    return factory(**options)


class MaskMixture:
    """Picks one of several generators per mask, with probability proportional to its weight.

    Args:
        parts: ``[(generator, weight), ...]`` with positive weights.

    Call: ``mixture((H, W), rng) -> known_mask`` float32 (H, W), 1 = known, 0 = hole; one number
    drawn from ``rng`` chooses the generator, which then draws from the same ``rng``.
    """

    def __init__(self, parts: Sequence[tuple[MaskGenerator, float]]) -> None:
        parts = list(parts)
        if not parts:
            raise LbamError("no mask generators given (the mask list is empty)")
        for generator, weight in parts:
            if not callable(generator):
                raise LbamError(f"mask mixture part {generator!r} is not a mask generator")
            if not float(weight) > 0:
                raise LbamError(f"mask weights must be positive, got {weight!r}")
        self.generators = [generator for generator, _ in parts]
        weights = np.array([float(weight) for _, weight in parts])
        self.probabilities = weights / weights.sum()
        self._cumulative = np.cumsum(self.probabilities)

    def __call__(self, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        size = check_size(size)
        index = min(
            int(np.searchsorted(self._cumulative, rng.random(), side="right")), len(self.generators) - 1
        )
        return self.generators[index](size, rng)


def mask_generator_from_spec(spec: Sequence[dict]) -> MaskGenerator:
    """A generator from config dicts ``[{"kind": ..., "weight": ..., <options>}, ...]``.

    One entry gives that kind's generator; several give a :class:`MaskMixture`. ``weight``
    defaults to 1.

    Raises:
        LbamError: empty list, entry without ``kind``, non-positive weight, or what
            :func:`build_mask_generator` rejects.
    """
    if isinstance(spec, dict):
        spec = [spec]
    if not spec:
        raise LbamError(f"no masks configured: give at least one mask kind ({known_kinds()})")
    parts = []
    for entry in spec:
        if not isinstance(entry, dict) or "kind" not in entry:
            raise LbamError(f"each mask entry needs a 'kind' ({known_kinds()}), got {entry!r}")
        options = dict(entry)
        kind = str(options.pop("kind"))
        weight = options.pop("weight", 1.0)
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            raise LbamError(f"mask kind {kind!r}: weight must be a number, got {weight!r}") from None
        if not weight > 0:
            raise LbamError(f"mask kind {kind!r}: weight must be positive, got {weight}")
        parts.append((build_mask_generator(kind, **options), weight))
    if len(parts) == 1:
        return parts[0][0]
    return MaskMixture(parts)


def parse_kind_list(text: str) -> list[dict]:
    """Specs from the short form ``kind[=path][:weight],...``, e.g. ``lama_thick:2,deepfill:1``.

    The weight defaults to 1; only a trailing ``:number`` is read as a weight, so a path may hold
    ``:`` (but not ``,``). ``files=/data/masks:2`` gives ``{"kind": "files", "path": "/data/masks",
    "weight": 2.0}``.
    """
    specs = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        weight = 1.0
        head, sep, tail = item.rpartition(":")
        if sep:
            try:
                weight = float(tail)
                item = head
            except ValueError:
                pass  # a colon inside a path, not a weight
        kind, sep, path = item.partition("=")
        kind = kind.strip()
        if not kind:
            raise LbamError(f"empty mask kind in {text!r} (expected kind[=path][:weight],...)")
        spec: dict = {"kind": kind, "weight": weight}
        if sep:
            spec["path"] = path.strip()
        specs.append(spec)
    if not specs:
        raise LbamError(f"no mask kinds in {text!r} (expected kind[=path][:weight],... of {known_kinds()})")
    return specs

"""Model names: which file a name means, and the list ``lbam models`` shows.

A name resolves, in this order, to a model packaged inside ``lbam/weights``, or to
``<name>.safetensors`` / ``<name>.pth`` in the cache folder (``$LBAM_HOME``, default
``~/.cache/lbam``): drop a weight file there and its name works everywhere a model is asked for.
Nothing is downloaded; the authors' releases must be fetched by hand (``lbam models`` says how).
"""

from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from lbam.defaults import DEFAULT_TRAIN_SIZE
from lbam.errors import LbamError

# Names with a meaning of their own: the packaged model and the authors' two releases.
KNOWN_MODELS = {
    "lbam-compact": "a compact LBAM trained by this project, shipped inside the package",
    "lbam-psv": "the authors' Paris StreetView generator (LBAM_Pytorch release)",
    "lbam-places2": "the authors' Places2 generator (LBAM_Pytorch release)",
}
WHERE_TO_GET = {
    "lbam-psv": "the Paris StreetView generator of the authors' LBAM_Pytorch release (its README links it)",
    "lbam-places2": "the Places2 generator of the authors' LBAM_Pytorch release (its README links it)",
}
SUFFIXES = (".safetensors", ".pth")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def cache_dir() -> Path:
    """Where named models are looked for: ``$LBAM_HOME`` or ``~/.cache/lbam``."""
    return Path(os.environ.get("LBAM_HOME", Path.home() / ".cache" / "lbam")).expanduser()


def packaged_path(name: str) -> Path | None:
    packaged = resources.files("lbam") / "weights" / f"{name}.safetensors"
    return Path(str(packaged)) if packaged.is_file() else None


def cached_path(name: str) -> Path | None:
    for suffix in SUFFIXES:
        cached = cache_dir() / f"{name}{suffix}"
        if cached.is_file():
            return cached
    return None


def resolve_model_path(path_or_name: str | os.PathLike) -> Path:
    """The file behind a path or a model name; a clear error when there is none."""
    candidate = Path(path_or_name).expanduser()
    if candidate.is_file():
        return candidate
    if candidate.exists():
        raise LbamError(f"model path is not a file: {candidate}")
    name = str(path_or_name)
    found = (packaged_path(name) or cached_path(name)) if _NAME.match(name) else None
    if found is not None:
        return found
    if name in KNOWN_MODELS:
        raise LbamError(
            f"model {name!r} ({KNOWN_MODELS[name]}) is not installed: put its file at "
            f"{cache_dir() / (name + '.pth')} (or .safetensors), or pass a path"
        )
    raise LbamError(
        f"model not found: {name!r} is neither a file, nor one of {', '.join(KNOWN_MODELS)}, "
        f"nor a weight file in {cache_dir()} (see lbam models)"
    )


def list_models() -> list[dict[str, Any]]:
    """Every model a name resolves to, and the known ones that are not installed yet.

    Each entry: name, file (or None), size in MB, where it comes from, and for lbam files the
    architecture, variant, width and parameters read from the file's header (nothing is loaded).
    """
    names = dict.fromkeys(KNOWN_MODELS)
    if cache_dir().is_dir():
        for path in sorted(cache_dir().iterdir()):
            if path.suffix in SUFFIXES and _NAME.match(path.stem):
                names.setdefault(path.stem)
    entries = []
    for name in names:
        path = packaged_path(name) or cached_path(name)
        entry: dict[str, Any] = {"name": name, "file": str(path) if path else None}
        if path is None:
            entry["source"] = "not installed"
            entry["get"] = (
                f"{WHERE_TO_GET.get(name, KNOWN_MODELS.get(name, ''))}; save it as {cache_dir() / (name + '.pth')}"
            )
        else:
            entry["source"] = "packaged" if path == packaged_path(name) else "cache folder"
            entry["size_mb"] = round(path.stat().st_size / 1e6, 1)
            entry.update(describe_file(path))
        entries.append(entry)
    return entries


def describe_file(path: Path) -> dict[str, Any]:
    """The :class:`~lbam.model.card.GeneratorCard` of an lbam .safetensors file, as a dict, from its
    header (the layers are built on the ``meta`` device: nothing is read or allocated).

    ``.pth`` files (the authors' format) are described as such without reading their tensors.
    """
    import torch

    from lbam.model.registry import build_from_metadata

    if path.suffix != ".safetensors":
        return {"architecture": "lbam (authors' .pth)", "train_size": DEFAULT_TRAIN_SIZE}
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            dtypes = {str(handle.get_slice(key).get_dtype()) for key in handle.keys()}  # noqa: SIM118
        stored = _json_mapping(metadata.get("card"))
        with torch.device("meta"):
            model = build_from_metadata(
                _json_mapping(metadata.get("config")), int(metadata.get("train_size", DEFAULT_TRAIN_SIZE))
            )
    except (SafetensorError, OSError, ValueError, LbamError):
        return {"architecture": "unreadable"}
    card = model.card.to_dict()
    card["precision"] = stored.get("precision", "fp16" if dtypes == {"F16"} else "fp32")
    return card


def _json_mapping(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}

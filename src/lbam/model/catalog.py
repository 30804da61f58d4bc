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
    """Architecture, variant, width and parameter count of an lbam .safetensors file, from its header.

    ``.pth`` files (the authors' format) are described as such without reading their tensors.
    """
    if path.suffix != ".safetensors":
        return {"architecture": "lbam (authors' .pth)"}
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            parameters = sum(_numel(handle.get_slice(key).get_shape()) for key in handle.keys())  # noqa: SIM118
        config = json.loads(metadata.get("config", "{}"))
    except (SafetensorError, OSError, ValueError):
        return {"architecture": "unreadable"}
    return {
        "architecture": config.get("architecture"),
        "variant": config.get("variant"),
        "width": config.get("width"),
        "parameters": parameters,
        "train_size": int(metadata.get("train_size", 256)),
    }


def _numel(shape: list[int]) -> int:
    count = 1
    for side in shape:
        count *= side
    return count

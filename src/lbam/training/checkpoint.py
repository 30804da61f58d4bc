"""Training checkpoints: one folder per checkpoint, written atomically, no pickle anywhere.

Layout under ``RUN_DIR/checkpoints``::

    step_00000400/state.safetensors   generator.*, critic.*, g_optim.*, d_optim.*, rng.* tensors
    step_00000400/meta.json           step, config, optimiser hyper-parameters, scaler and RNG state
    best_00000250/                    the same, for the best validation PSNR so far
    latest                            text file naming the newest step_* folder
    best_checkpoint                   text file naming the best_* folder

A checkpoint folder is written under a temporary name in the same parent and renamed into place,
so a crash leaves either the old checkpoint or the new one, never half of one. The pointers
``latest`` and ``best_checkpoint`` are replaced atomically after the folder they name is complete,
and a new best gets a new folder, so no crash can lose the best checkpoint. ``meta.json`` records
the size and SHA-256 of ``state.safetensors``, and the state file's header records the SHA-256 of
the rest of ``meta.json`` (step, config, RNG and optimiser state): a truncated, bit-flipped,
swapped or hand-edited file, either one, is a clear :class:`LbamError` on resume and export. Runs
of lbam 0.1 (a ``best/`` folder, no hash) still load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from lbam.errors import LbamError
from lbam.utils.files import atomic_write_text

FORMAT = "lbam-train-checkpoint"
VERSION = 1
STATE_FILE = "state.safetensors"
META_FILE = "meta.json"
LATEST_FILE = "latest"
BEST_NAME = "best"
BEST_POINTER = "best_checkpoint"
META_DIGEST = "meta_sha256"  # in the state file's header: the digest of meta.json's content
_STEP_DIR = re.compile(r"^step_(\d+)$")
_BEST_DIR = re.compile(r"^best_(\d+)$")


@dataclass
class TrainingState:
    """Everything needed to continue a run exactly where it stopped.

    Model and optimiser states are ordinary ``state_dict()`` values; ``critic`` and ``d_optimizer``
    are None when the run has no critic. ``scalers`` holds the GradScaler states (plain numbers),
    ``rng`` the output of :func:`capture_rng_state`, ``config`` the resolved config as plain data.
    """

    step: int
    config: dict[str, Any]
    generator: dict[str, Tensor]
    g_optimizer: dict[str, Any]
    critic: dict[str, Tensor] | None = None
    d_optimizer: dict[str, Any] | None = None
    scalers: dict[str, Any] = field(default_factory=dict)
    rng: dict[str, Any] = field(default_factory=dict)
    best_score: float | None = None  # the best validation value of select_by so far
    select_by: str = "psnr"
    metrics: dict[str, float] = field(default_factory=dict)  # validation results at this step


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}"


def save_checkpoint(root: str | os.PathLike, name: str, state: TrainingState) -> Path:
    """Write ``state`` to ``root/name`` atomically (replacing an older folder of that name)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, Tensor] = {}
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "step": state.step,
        "config": state.config,
        "best_score": state.best_score,
        "select_by": state.select_by,
        "metrics": state.metrics,
        "scalers": state.scalers,
        "has_critic": state.critic is not None,
    }
    _add_tensors(tensors, "generator.", state.generator)
    meta["g_optimizer"] = _flatten_optimizer(state.g_optimizer, "g_optim.", tensors)
    if state.critic is not None:
        _add_tensors(tensors, "critic.", state.critic)
    if state.d_optimizer is not None:
        meta["d_optimizer"] = _flatten_optimizer(state.d_optimizer, "d_optim.", tensors)
    meta["rng"] = _flatten_rng(state.rng, tensors)

    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp", dir=root))
    try:
        save_file(tensors, str(tmp / STATE_FILE), metadata={"format": FORMAT, META_DIGEST: meta_digest(meta)})
        meta["state_bytes"] = (tmp / STATE_FILE).stat().st_size
        meta["state_sha256"] = file_sha256(tmp / STATE_FILE)
        atomic_write_text(tmp / META_FILE, json.dumps(meta, indent=1))
        _fsync_dir_files(tmp)
        _replace_dir(tmp, root / name)
    except (SafetensorError, OSError) as error:  # a full disk: the previous checkpoints stay as they were
        shutil.rmtree(tmp, ignore_errors=True)
        raise LbamError(
            f"cannot write checkpoint {root / name}: {getattr(error, 'strerror', None) or error}"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root / name


def load_checkpoint(directory: str | os.PathLike) -> TrainingState:
    """Read a checkpoint folder written by :func:`save_checkpoint`.

    Raises:
        LbamError: a missing, truncated or foreign checkpoint, naming the folder and the problem.
    """
    directory = Path(directory)
    meta_path, state_path = directory / META_FILE, directory / STATE_FILE
    if not meta_path.is_file() or not state_path.is_file():
        raise LbamError(f"not a training checkpoint (needs {META_FILE} and {STATE_FILE}): {directory}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise LbamError(f"corrupt checkpoint {meta_path}: {error}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise LbamError(f"{meta_path} is not an lbam training checkpoint")
    if meta.get("version") != VERSION:
        raise LbamError(
            f"{meta_path} has checkpoint version {meta.get('version')}, this lbam reads {VERSION}"
        )
    verify_state_file(state_path, meta)
    verify_meta(state_path, meta)
    try:
        tensors = load_file(str(state_path))
    except (SafetensorError, OSError, ValueError) as error:
        raise LbamError(f"corrupt checkpoint {state_path}: {error}") from None
    try:
        return _state_from(meta, tensors)
    except (KeyError, TypeError, ValueError) as error:
        raise LbamError(f"corrupt checkpoint {meta_path}: bad or missing entry {error}") from None


def _state_from(meta: dict[str, Any], tensors: dict[str, Tensor]) -> TrainingState:
    step = meta["step"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step {step!r}")
    return TrainingState(
        step=step,
        config=meta["config"],
        generator=_take(tensors, "generator."),
        g_optimizer=_unflatten_optimizer(meta["g_optimizer"], tensors),
        critic=_take(tensors, "critic.") if meta["has_critic"] else None,
        d_optimizer=_unflatten_optimizer(meta["d_optimizer"], tensors) if "d_optimizer" in meta else None,
        scalers=meta.get("scalers", {}),
        rng=_unflatten_rng(meta["rng"], tensors),
        # Runs from before train.select_by kept the best PSNR under "best_psnr".
        best_score=meta.get("best_score", meta.get("best_psnr")),
        select_by=meta.get("select_by", "psnr"),
        metrics=meta.get("metrics", {}),
    )


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for piece in iter(lambda: handle.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


def verify_state_file(state_path: Path, meta: dict[str, Any]) -> None:
    """LbamError unless ``state.safetensors`` has the size and SHA-256 its ``meta.json`` records.

    Checkpoints of lbam 0.1 record no hash; only their size is checked.
    """
    if not state_path.is_file():
        raise LbamError(f"corrupt checkpoint {state_path}: missing")
    size = state_path.stat().st_size
    if size != meta.get("state_bytes"):
        raise LbamError(
            f"corrupt checkpoint {state_path}: {size} bytes, expected {meta.get('state_bytes')} (truncated?)"
        )
    expected = meta.get("state_sha256")
    if expected is not None and file_sha256(state_path) != expected:
        raise LbamError(
            f"corrupt checkpoint {state_path}: its SHA-256 does not match {META_FILE} "
            "(damaged, or swapped with another checkpoint's)"
        )


def meta_digest(meta: dict[str, Any]) -> str:
    """The SHA-256 of ``meta.json``'s content, less the two entries that describe the state file."""
    core = {key: value for key, value in meta.items() if key not in ("state_bytes", "state_sha256")}
    return hashlib.sha256(json.dumps(core, sort_keys=True).encode("utf-8")).hexdigest()


def verify_meta(state_path: Path, meta: dict[str, Any]) -> None:
    """LbamError unless ``meta.json`` is the one written with ``state.safetensors`` (whose header
    holds its digest). Checkpoints written before the digest existed are not checked."""
    try:
        with safe_open(str(state_path), framework="pt") as handle:
            recorded = (handle.metadata() or {}).get(META_DIGEST)
    except (SafetensorError, OSError, ValueError) as error:
        raise LbamError(f"corrupt checkpoint {state_path}: {error}") from None
    if recorded is not None and recorded != meta_digest(meta):
        raise LbamError(
            f"checkpoint {state_path.parent}: {META_FILE} does not match its state file (edited or damaged "
            "after it was written: its step, config, RNG or optimiser state cannot be trusted)"
        )


def read_meta(directory: str | os.PathLike) -> dict[str, Any]:
    """The ``meta.json`` of a checkpoint folder (cheap: no tensors are read)."""
    path = Path(directory) / META_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LbamError(f"not a training checkpoint (no {META_FILE}): {directory}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise LbamError(f"corrupt checkpoint {path}: {error}") from None


def write_latest(root: str | os.PathLike, name: str) -> None:
    atomic_write_text(Path(root) / LATEST_FILE, name + "\n")


def step_checkpoints(root: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, folder)`` for every ``step_*`` checkpoint under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP_DIR.match(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return sorted(found)


def find_checkpoint(run_dir: str | os.PathLike, which: str | int = "latest") -> Path:
    """The checkpoint folder of a run: ``"latest"``, ``"best"`` or a step number.

    Raises:
        LbamError: the run has no such checkpoint (the message lists what it has).
    """
    root = Path(run_dir) / "checkpoints"
    available = step_checkpoints(root)
    have = ", ".join(str(step) for step, _ in available) or "none"
    if which == "latest":
        pointer = root / LATEST_FILE
        if pointer.is_file():
            path = root / pointer.read_text(encoding="utf-8").strip()
            if path.is_dir():
                return path
        if available:
            return available[-1][1]
        raise LbamError(f"no checkpoint in {root}")
    if which == BEST_NAME:
        best = best_checkpoint(root)
        if best is not None:
            return best
        raise LbamError(
            f"run {run_dir} has no best checkpoint (no validation ran yet); step checkpoints: {have}"
        )
    try:
        step = int(which)
    except (TypeError, ValueError):
        raise LbamError(f"checkpoint must be latest, best or a step number, got {which!r}") from None
    for found_step, path in available:
        if found_step == step:
            return path
    raise LbamError(f"run {run_dir} has no checkpoint for step {step}; available: {have}")


def best_checkpoint(root: str | os.PathLike) -> Path | None:
    """The folder ``best_checkpoint`` names (or an lbam 0.1 ``best/`` folder); None if there is none."""
    root = Path(root)
    pointer = root / BEST_POINTER
    if pointer.is_file():
        path = root / pointer.read_text(encoding="utf-8").strip()
        if _BEST_DIR.match(path.name) and path.is_dir():
            return path
    return root / BEST_NAME if (root / BEST_NAME).is_dir() else None


def save_best(root: str | os.PathLike, state: TrainingState) -> Path:
    """Save a new best checkpoint in its own folder, point ``best_checkpoint`` at it, drop older ones."""
    root = Path(root)
    path = save_checkpoint(root, f"best_{state.step:08d}", state)
    atomic_write_text(root / BEST_POINTER, path.name + "\n")
    for old in root.iterdir():
        if old != path and old.is_dir() and (_BEST_DIR.match(old.name) or old.name == BEST_NAME):
            shutil.rmtree(old, ignore_errors=True)
    return path


def recover(root: str | os.PathLike) -> list[str]:
    """Repair what a crash may have left under ``root`` (a run's checkpoints folder); returns notes.

    A best checkpoint orphaned by a crash (between saving it and updating the pointer, or between
    the two renames of lbam 0.1) gets its pointer back; half-written temporary folders are deleted.
    """
    root = Path(root)
    notes: list[str] = []
    if not root.is_dir():
        return notes
    if best_checkpoint(root) is None:
        for old in sorted(root.glob(f".{BEST_NAME}.tmp-old*")):  # lbam 0.1: moved aside, not yet replaced
            if (old / META_FILE).is_file():
                os.replace(old, root / BEST_NAME)
                notes.append(f"restored the best checkpoint from {old.name}")
                break
    candidates = sorted(p for p in root.iterdir() if _BEST_DIR.match(p.name) and (p / META_FILE).is_file())
    current = best_checkpoint(root)
    if candidates and (current is None or current.name < candidates[-1].name):
        atomic_write_text(root / BEST_POINTER, candidates[-1].name + "\n")
        notes.append(f"pointed {BEST_POINTER} at {candidates[-1].name}")
    removed = remove_stale_temporaries(root)
    if removed:
        notes.append(f"removed {removed} half-written checkpoint folder(s) left by a crash")
    return notes


def prune_checkpoints(root: str | os.PathLike, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` step checkpoints (``best`` is never touched)."""
    removed = []
    for _, path in step_checkpoints(root)[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def remove_stale_temporaries(root: str | os.PathLike) -> int:
    """Delete half-written folders a crash may have left (names start with a dot); returns how many."""
    root = Path(root)
    count = 0
    if root.is_dir():
        for path in root.iterdir():
            if path.name.startswith(".") and ".tmp" in path.name:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                count += 1
    return count


# --- random number generators -------------------------------------------------------------------


def capture_rng_state() -> dict[str, Any]:
    """The state of every global RNG: torch CPU (and CUDA when present), NumPy, Python ``random``."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state_to_json(np.random.get_state(legacy=False)),
        "python": _python_state_to_json(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Undo :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(_numpy_state_from_json(state["numpy"]))
    random.setstate(_python_state_from_json(state["python"]))
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _numpy_state_to_json(state: dict[str, Any]) -> dict[str, Any]:
    inner = dict(state["state"])
    inner["key"] = [int(v) for v in inner["key"]]
    return {**state, "state": inner}


def _numpy_state_from_json(state: dict[str, Any]) -> dict[str, Any]:
    inner = dict(state["state"])
    inner["key"] = np.asarray(inner["key"], dtype=np.uint32)
    return {**state, "state": inner}


def _python_state_to_json(state: tuple) -> list:
    version, internal, gauss_next = state
    return [version, list(internal), gauss_next]


def _python_state_from_json(state: list) -> tuple:
    version, internal, gauss_next = state
    return (version, tuple(internal), gauss_next)


def _flatten_rng(rng: dict[str, Any], tensors: dict[str, Tensor]) -> dict[str, Any]:
    meta = {key: value for key, value in rng.items() if key not in ("torch", "cuda")}
    if "torch" in rng:
        tensors["rng.torch"] = _cpu_copy(rng["torch"])
    meta["cuda_count"] = len(rng.get("cuda", []))
    for i, cuda_state in enumerate(rng.get("cuda", [])):
        tensors[f"rng.cuda.{i}"] = _cpu_copy(cuda_state)
    return meta


def _unflatten_rng(meta: dict[str, Any], tensors: dict[str, Tensor]) -> dict[str, Any]:
    rng = {key: value for key, value in meta.items() if key != "cuda_count"}
    if "rng.torch" in tensors:
        rng["torch"] = tensors["rng.torch"]
    if meta.get("cuda_count"):
        rng["cuda"] = [tensors[f"rng.cuda.{i}"] for i in range(meta["cuda_count"])]
    return rng


# --- optimiser state: tensors to safetensors, everything else to JSON ---------------------------


def _flatten_optimizer(state_dict: dict[str, Any], prefix: str, tensors: dict[str, Tensor]) -> dict[str, Any]:
    """Move the tensors of an optimiser ``state_dict`` into ``tensors``; return the JSON rest."""
    per_param: dict[str, dict[str, Any]] = {}
    for index, param_state in state_dict["state"].items():
        entry: dict[str, Any] = {}
        for name, value in param_state.items():
            if isinstance(value, Tensor):
                key = f"{prefix}{index}.{name}"
                tensors[key] = _cpu_copy(value)
                entry[name] = {"tensor": key}
            else:
                entry[name] = {"value": value}
        per_param[str(index)] = entry
    return {"state": per_param, "param_groups": state_dict["param_groups"]}


def _unflatten_optimizer(meta: dict[str, Any], tensors: dict[str, Tensor]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for index, entry in meta["state"].items():
        state[int(index)] = {
            name: tensors[item["tensor"]] if "tensor" in item else item["value"]
            for name, item in entry.items()
        }
    return {"state": state, "param_groups": meta["param_groups"]}


def _add_tensors(tensors: dict[str, Tensor], prefix: str, state: dict[str, Tensor]) -> None:
    for key, value in state.items():
        tensors[prefix + key] = _cpu_copy(value)


def _cpu_copy(tensor: Tensor) -> Tensor:
    # Always a copy: safetensors refuses tensors that share storage (tied weights, or the same
    # state passed twice), and the training step must not change what is being written.
    return tensor.detach().to("cpu", copy=True).contiguous()


def _take(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}


# --- file system --------------------------------------------------------------------------------


def _replace_dir(source: Path, target: Path) -> None:
    """Rename ``source`` onto ``target``; an existing ``target`` is moved aside first, then deleted."""
    if not target.exists():
        os.replace(source, target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-old", dir=target.parent))
    aside.rmdir()
    os.replace(target, aside)
    os.replace(source, target)
    shutil.rmtree(aside, ignore_errors=True)


def _fsync_dir_files(directory: Path) -> None:
    for path in directory.iterdir():
        with contextlib.suppress(OSError), open(path, "rb") as f:
            os.fsync(f.fileno())


def load_generator_state(directory: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Only the generator weights of a checkpoint (and its meta), without the optimiser states."""

    directory = Path(directory)
    meta = read_meta(directory)
    state_path = directory / STATE_FILE
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise LbamError(f"{directory / META_FILE} is not an lbam training checkpoint")
    verify_state_file(state_path, meta)
    try:
        with safe_open(str(state_path), framework="pt") as f:
            names = [key for key in f.keys() if key.startswith("generator.")]  # noqa: SIM118 (not a dict)
            state = {key[len("generator.") :]: f.get_tensor(key) for key in names}
    except (SafetensorError, OSError, ValueError) as error:
        raise LbamError(f"corrupt checkpoint {state_path}: {error}") from None
    return state, meta

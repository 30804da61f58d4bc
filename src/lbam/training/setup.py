"""Everything a run needs before its first step, checked in the order a user would fix it.

:func:`prepare` fails with one :class:`~lbam.errors.LbamError` on bad config values, a run folder
that cannot be started or resumed, a crop size the generator cannot take, weights to fine-tune
from that do not fit, masks or photos that cannot be used, or a missing VGG16 file -- before any
step runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lbam.config import flatten, load_config, to_dict
from lbam.data.dataset import InpaintingDataset
from lbam.data.masks import mask_generator_from_spec
from lbam.errors import LbamError
from lbam.features.stlpips import load_st_lpips, load_stlpips_vgg
from lbam.features.vgg import load_vgg16
from lbam.losses.inpainting import InpaintingLoss
from lbam.model.card import card_of
from lbam.model.loading import load_model, load_state_strict, resolve_model_path
from lbam.model.upsampling import constrain_upsampling_, upsampling_layers
from lbam.training import checkpoint as ckpt
from lbam.training.config import RESUME_SAFE_KEYS, TrainConfig, check_values, upgrade_config_data
from lbam.training.distributed import DistributedContext
from lbam.training.lock import LOCK_FILE
from lbam.training.state import TrainState, build_state
from lbam.utils.device import bf16_supported

CONFIG_FILE = "config.yaml"


@dataclass
class TrainData:
    """The training and validation datasets and the item indices used from each."""

    train: InpaintingDataset
    val: InpaintingDataset
    train_indices: list[int]
    val_indices: list[int]
    note: str


@dataclass
class Prepared:
    """What :func:`prepare` hands the loop; ``rng`` and ``checkpoint_dir`` are set on resume."""

    state: TrainState
    data: TrainData
    loss: InpaintingLoss
    rng: dict[str, Any]
    checkpoint_dir: Path | None
    notes: list[str]
    st_lpips: nn.Module | None = None  # the validation's ST-LPIPS, when train.select_by needs it


def prepare(
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    context: DistributedContext,
    use_amp: bool,
    resume_from: str | int = "latest",
) -> Prepared:
    """Check the config and folders, build the state, data and loss; restore a checkpoint on resume."""
    check_values(config)
    if config.train.batch_size % context.world_size:
        raise LbamError(
            f"train.batch_size ({config.train.batch_size}) must be divisible by the number of processes "
            f"({context.world_size})"
        )
    notes: list[str] = []
    if resume:
        _check_resumable(run_dir)
        if context.is_main:
            notes += ckpt.recover(run_dir / "checkpoints")
    else:
        notes += _check_new_run_dir(run_dir)
    state = build_state(config, context, use_amp)
    _check_generator_fits(config, state.generator, context.world_size)
    has_checkpoint = resume and _has_checkpoint(run_dir)
    if resume and not has_checkpoint:
        notes.append(f"{run_dir} holds no checkpoint yet (stopped before the first): starting from step 0")
    if config.model.init_weights and not has_checkpoint:  # a resumed run has its own weights
        notes.append(load_init_weights(state.generator, config.model.init_weights))
    if config.model.upsampling == "resize_conv":
        notes.append(_tie_upsampling(state.generator, project=not has_checkpoint))
    data = build_datasets(config)
    notes.append(data.note)
    loss = InpaintingLoss(config.losses, _vgg(config, context.device)).to(context.device)
    notes += _emulated_bf16_warning(config, loss.vgg is not None, context.device)
    checkpoint_dir = ckpt.find_checkpoint(run_dir, resume_from) if has_checkpoint else None
    rng = _restore(state, config, run_dir, checkpoint_dir) if checkpoint_dir is not None else {}
    st_lpips = None
    if config.train.select_by == "st_lpips":
        st_lpips = load_st_lpips().to(context.device)
    return Prepared(state, data, loss, rng, checkpoint_dir, notes, st_lpips)


def _tie_upsampling(generator: nn.Module, project: bool) -> str:
    """Start a ``model.upsampling: resize_conv`` run on tied kernels; the step keeps them tied.

    A checkpoint's kernels are tied already: projecting them again would move them by an ulp and
    break the bit-exact resume.
    """
    layers = upsampling_layers(generator)
    if not layers:
        raise LbamError(
            f"model.upsampling resize_conv ties 4x4 stride-2 transposed convolutions; "
            f"the {type(generator).__name__} has none"
        )
    if project:
        constrain_upsampling_(generator)
    return (
        f"model.upsampling resize_conv: {len(layers)} transposed convolutions tied to nearest x2 + 3x3 conv"
    )


def _emulated_bf16_warning(config: TrainConfig, has_vgg: bool, device: torch.device) -> list[str]:
    """A warning when bf16 features would be emulated: a step took 12x fp32's on an AVX2 CPU."""
    if not has_vgg or config.losses.feature_precision != "bf16" or bf16_supported(device):
        return []
    return [
        f"warning: losses.feature_precision=bf16 but {device} has no native bfloat16; "
        "it is emulated and much slower than fp32 here (set losses.feature_precision=fp32)"
    ]


def _vgg(config: TrainConfig, device: torch.device) -> nn.Module | None:
    """The frozen VGG16 of the perceptual and style terms; the last file a user may have to fetch.

    ``losses.vgg_weights``: a torchvision ``vgg16-397923af.pth`` (None: torch's hub cache), or
    ``stlpips`` / ``stlpips=PATH`` for the shift-tolerant VGG16 of ST-LPIPS (lbam.features.stlpips).
    """
    if not config.losses.uses_vgg:
        return None
    source = config.losses.vgg_weights
    if source is not None and (source == "stlpips" or source.startswith("stlpips=")):
        vgg = load_stlpips_vgg(source.partition("=")[2] or None)
    else:
        vgg = load_vgg16(source, allow_random=config.losses.allow_random_vgg)
    vgg = vgg.to(device).eval().requires_grad_(False)
    if config.losses.feature_precision == "bf16" and device.type == "cpu":
        # oneDNN's bf16 convolutions are fastest on channels-last weights (measured 0.65x of fp32).
        vgg = vgg.to(memory_format=torch.channels_last)
    return vgg


def load_init_weights(generator: nn.Module, path_or_name: str) -> str:
    """Copy the weights of a saved generator into ``generator``; returns a log line."""
    where = f"model.init_weights {path_or_name!r}"
    try:
        path = resolve_model_path(path_or_name)
        source = load_model(path)
    except LbamError as error:
        raise LbamError(f"{where}: {error}") from None
    saved, wanted = source.config.to_dict(), generator.config.to_dict()
    if saved != wanted:
        differences = ", ".join(
            f"{k}={saved.get(k)!r} there, {wanted.get(k)!r} here"
            for k in sorted(set(saved) | set(wanted))
            if saved.get(k) != wanted.get(k)
        )
        raise LbamError(f"{where} is a different generator than the config's model ({differences})")
    load_state_strict(generator, source.state_dict(), where)
    return f"generator initialised from {path}"


def build_datasets(config: TrainConfig) -> TrainData:
    """Training and validation datasets; without ``data.val_dir`` some training photos are held out."""
    cfg_data, seed = config.data, config.train.seed
    if not config.masks:
        raise LbamError(
            "no masks configured: set 'masks' in the config or pass --masks (e.g. --masks noise:1)"
        )
    try:
        masks = mask_generator_from_spec(config.masks)
    except LbamError as error:
        raise LbamError(f"masks: {error}") from None
    if not cfg_data.train_dir:
        raise LbamError("data.train_dir is not set: pass --data DIR or set it in the config")

    def dataset(source: Any, key: str, train: bool) -> InpaintingDataset:
        try:
            return InpaintingDataset(
                source,
                masks,
                crop_size=cfg_data.crop_size,
                load_size=cfg_data.load_size,
                train=train,
                seed=seed,
                resize_mode=cfg_data.resize_mode,
                max_load_size=cfg_data.max_load_size,
            )
        except LbamError as error:
            raise LbamError(f"{key}: {error}") from None

    train = dataset(cfg_data.train_dir, "data.train_dir", train=True)
    if cfg_data.val_dir:
        val = dataset(cfg_data.val_dir, "data.val_dir", train=False)
        val_indices = list(range(min(cfg_data.val_count, len(val))))
        data = TrainData(train, val, list(range(len(train))), val_indices, "")
        data.note = f"validation: {len(val_indices)} images from {cfg_data.val_dir}"
    else:
        data = _hold_out(train, cfg_data.val_count, seed, cfg_data.train_dir, dataset)
    if len(data.train_indices) < config.train.batch_size:
        raise LbamError(
            f"only {len(data.train_indices)} training images for train.batch_size={config.train.batch_size}: "
            "add images or lower the batch size"
        )
    _check_item(train, data.train_indices[0], cfg_data.train_dir)
    return data


def _hold_out(train: InpaintingDataset, val_count: int, seed: int, root: str, dataset: Any) -> TrainData:
    count = len(train)
    if count <= val_count:
        raise LbamError(
            f"{root} has {count} usable images: too few to hold out data.val_count="
            f"{val_count} for validation; set data.val_dir or lower data.val_count"
        )
    held_out = held_out_indices(count, val_count, seed)
    val = dataset([train.files[i] for i in held_out], "data.train_dir", False)
    note = (
        f"validation: no data.val_dir, so {len(held_out)} of the {count} training images are held out "
        "for validation and not trained on"
    )
    return TrainData(train, val, sorted(set(range(count)) - set(held_out)), list(range(len(held_out))), note)


def held_out_indices(count: int, how_many: int, seed: int) -> list[int]:
    """A fixed random choice of validation images among ``count`` training images (sorted)."""
    generator = torch.Generator().manual_seed(seed + 7919)
    return sorted(torch.randperm(count, generator=generator)[:how_many].tolist())


def _check_item(dataset: InpaintingDataset, index: int, root: str) -> None:
    """Load one item now, so that unreadable images or a crop that does not fit fail before training."""
    try:
        item = dataset[index]
    except LbamError:
        raise
    except (OSError, ValueError) as error:
        raise LbamError(f"cannot load training images from {root}: {error}") from None
    for key in ("image", "known_mask"):
        if key not in item:
            raise LbamError(f"the dataset for {root} gives no {key!r}")


def _check_new_run_dir(run_dir: Path) -> list[str]:
    """A new run needs an empty or absent folder, or the folder of a run that never checkpointed."""
    if not run_dir.exists() or (run_dir.is_dir() and all(p.name == LOCK_FILE for p in run_dir.iterdir())):
        return []  # a lock file alone is what a start that failed after locking leaves
    if run_dir.is_dir() and (run_dir / CONFIG_FILE).is_file() and not _has_checkpoint(run_dir):
        return [f"{run_dir} holds a run that stopped before its first checkpoint: starting it afresh"]
    raise LbamError(
        f"run folder {run_dir} already exists and is not empty: continue it with "
        f"'lbam train --resume {run_dir}' or choose another --out"
    )


def _check_rng(rng: dict[str, Any], where: Path) -> None:
    """Try the checkpoint's RNG states now (then put the current ones back), so a damaged one fails
    here, before training starts, and not after the run has begun logging."""
    current = ckpt.capture_rng_state()
    try:
        ckpt.restore_rng_state(rng)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise LbamError(f"checkpoint {where} has a corrupt RNG state: {error!r}") from None
    finally:
        ckpt.restore_rng_state(current)


def _has_checkpoint(run_dir: Path) -> bool:
    root = run_dir / "checkpoints"
    return bool(ckpt.step_checkpoints(root)) or ckpt.best_checkpoint(root) is not None


def _check_resumable(run_dir: Path) -> None:
    if not (run_dir / CONFIG_FILE).is_file():
        raise LbamError(f"cannot resume {run_dir}: no {CONFIG_FILE} (is it a run folder of lbam train?)")


def _load_or_offer_another(run_dir: Path, directory: Path) -> ckpt.TrainingState:
    """The checkpoint in ``directory``; when it is damaged, the error names an intact earlier one."""
    try:
        return ckpt.load_checkpoint(directory)
    except LbamError as error:
        for step, earlier in reversed(ckpt.step_checkpoints(run_dir / "checkpoints")):
            if earlier != directory:
                try:
                    ckpt.verify_state_file(earlier / ckpt.STATE_FILE, ckpt.read_meta(earlier))
                except LbamError:
                    continue
                raise LbamError(
                    f"{error}; the checkpoint of step {step} is intact: "
                    f"lbam train --resume {run_dir} --checkpoint {step}"
                ) from None
        raise


def check_same_model(saved: dict[str, Any], config: TrainConfig, where: Path) -> None:
    """A checkpoint only resumes the run it came from: every setting that changes what a step
    computes must be the checkpoint's (a hand-edited config.yaml is caught here); only the
    resume-safe keys (``--steps``, intervals, device...) may differ."""
    try:
        recorded = flatten(to_dict(load_config(TrainConfig, upgrade_config_data(saved))))
    except LbamError as error:
        raise LbamError(f"checkpoint {where} records a config this lbam cannot read: {error}") from None
    current = flatten(to_dict(config))
    changed = [
        f"{key}: {recorded.get(key)!r} in the checkpoint, {value!r} in config.yaml"
        for key, value in current.items()
        if key not in (*RESUME_SAFE_KEYS, "train.out_dir") and recorded.get(key) != value
    ]
    if changed:
        raise LbamError(
            f"the run's config.yaml does not match checkpoint {where} ({'; '.join(changed)}): it was edited "
            "after the run started; put it back (only --steps and the other resume-safe keys may change "
            "on resume), or start a new run with --init-weights"
        )


def _restore(state: TrainState, config: TrainConfig, run_dir: Path, checkpoint_dir: Path) -> dict[str, Any]:
    """Put a checkpoint's networks and optimisers into ``state``; returns its RNG states."""
    saved = _load_or_offer_another(run_dir, checkpoint_dir)
    check_same_model(saved.config, config, checkpoint_dir)
    state.restore(saved, checkpoint_dir)
    if state.step >= config.train.steps:
        raise LbamError(
            f"run {run_dir} is already at step {state.step} of train.steps={config.train.steps}; "
            "pass --steps with a larger number to train on"
        )
    _check_rng(saved.rng, checkpoint_dir)
    return saved.rng


def _check_generator_fits(config: TrainConfig, generator: torch.nn.Module, world_size: int) -> None:
    """The crop must be a multiple of the generator's size multiple, and batch norm over a one-pixel
    deepest level needs two samples per process (PConv, paper LBAM)."""
    multiple = card_of(generator).size_multiple
    if config.data.crop_size % multiple:
        raise LbamError(
            f"data.crop_size ({config.data.crop_size}) must be a multiple of {multiple} for this generator"
        )
    per_process = config.train.batch_size // world_size
    deepest = config.data.crop_size // multiple
    has_norm = any(isinstance(m, torch.nn.BatchNorm2d) for m in generator.modules())
    if has_norm and per_process * deepest * deepest < 2:
        raise LbamError(
            f"this generator has batch norm, which needs at least 2 samples per process at "
            f"{config.data.crop_size} px crops; train.batch_size {config.train.batch_size} over "
            f"{world_size} process(es) gives {per_process}"
        )

"""The training configuration: a tree of dataclasses read from YAML (see :mod:`lbam.config`).

Two recipes ship inside the package and can be named instead of a path (``--config paper``):

- ``paper``: the authors' recipe: 350 px load, 256 px crop, batch 48, L1 hole/valid + perceptual
  + style + WGAN-GP critic; needs torchvision's ImageNet VGG16 weights and a GPU.
- ``compact_cpu``: a VGG-free recipe that trains on a CPU in hours: width 0.25, 128 px crops,
  L1 hole/valid + SSIM + critic.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lbam.config import load_config, load_yaml, to_dict
from lbam.errors import LbamError
from lbam.features.stlpips import MIN_SIDE as ST_LPIPS_MIN_SIDE
from lbam.losses.inpainting import LossConfig
from lbam.model.discriminator import CRITICS
from lbam.model.registry import generator_config, get_architecture
from lbam.model.upsampling import UPSAMPLING
from lbam.training.validation import SELECT_BY


@dataclass
class DataConfig:
    """Where the photos are and how they are cut into training crops."""

    train_dir: str = ""
    val_dir: str | None = None  # None: hold out ``val_count`` training images (the log says so)
    crop_size: int = 256  # square training crop; a multiple of the generator's size_multiple (128)
    load_size: int | None = 350  # resize before cropping (the paper: 350); None: crop at full size
    resize_mode: str = "square"  # how load_size is applied; passed to the dataset
    # Scale augmentation: each training crop's load size is drawn from [load_size, max_load_size].
    max_load_size: int | None = None
    num_workers: int = 2
    val_count: int = 16  # validation images used (and held out of training when val_dir is None)


@dataclass
class ModelConfig:
    """The generator to train (a registered architecture and its settings) and the critic's width."""

    architecture: str = "lbam"  # a name in lbam.model.registry.ARCHITECTURES (lbam, pconv)
    # The architecture's own settings (LBAMConfig: variant, width, last_activation; PConvConfig:
    # width, layers); missing keys take that config's defaults, unknown keys are errors.
    generator: dict = field(default_factory=dict)
    critic: str = "two_column"  # two_column (paper) | patch (PatchGAN on the hole's patches)
    critic_width: float = 1.0
    critic_norm: str = "batch"  # batch (paper) | none | instance
    # transposed (the authors') | resize_conv: every 4x4 stride-2 transposed conv of the generator
    # is kept equal to nearest upsampling + a 3x3 conv (no checkerboard; lbam.model.upsampling).
    # The weights stay in the transposed layout, so exported files load as any LBAM generator.
    upsampling: str = "transposed"
    # Start a new run from these generator weights instead of a random init (fine-tuning): any
    # file or name lbam.load_model accepts. Its generator settings must equal the ones above.
    init_weights: str | None = None

    def __post_init__(self) -> None:
        # Validate now and store every setting, defaults included, so config.yaml is complete.
        self.generator = to_dict(self.generator_config())

    def generator_config(self) -> Any:
        """The typed settings of the generator (e.g. an ``LBAMConfig``)."""
        return generator_config(self.architecture, self.generator, "model.generator")


@dataclass
class OptimConfig:
    """Adam for both networks; the defaults are the paper's."""

    g_lr: float = 1e-4
    g_betas: tuple[float, float] = (0.5, 0.9)
    d_lr: float = 1e-5
    d_betas: tuple[float, float] = (0.0, 0.9)
    critic_steps: int = 1  # critic updates per generator update (all on the same batch)
    # The gradient penalty on every k-th critic update only, weighted k times (lazy regularisation,
    # Karras et al. 2020): the penalty's double backward was 1/3 of a patch-critic step on a CPU.
    penalty_every: int = 1
    # Learning-rate schedule of both networks (lbam.training.schedule): a linear warm-up over
    # warmup_steps, then a cosine decay to min_lr_ratio * lr at step decay_steps (None: constant
    # after the warm-up, the paper's choice). A function of the step alone, so resuming is exact.
    warmup_steps: int = 0
    decay_steps: int | None = None
    min_lr_ratio: float = 0.0


@dataclass
class LoopConfig:
    """Length, batch, schedule of logs/validation/checkpoints, output and device."""

    steps: int = 100_000
    batch_size: int = 48  # global: split evenly over the processes of a distributed run
    seed: int = 0
    amp: bool = True  # mixed precision; used on CUDA only
    log_every: int = 50
    val_every: int = 2000
    checkpoint_every: int = 2000
    sample_every: int = 2000
    keep_last: int = 3
    select_by: str = "psnr"  # psnr | ssim | st_lpips: the validation metric that picks "best"
    out_dir: str = "runs/lbam"
    device: str = "auto"  # auto | cpu | cuda | cuda:N


@dataclass
class TrainConfig:
    """Everything ``lbam train`` needs; RUN_DIR/config.yaml holds the resolved copy."""

    data: DataConfig = field(default_factory=DataConfig)
    masks: list[dict] = field(default_factory=list)  # specs for lbam.data.masks.mask_generator_from_spec
    model: ModelConfig = field(default_factory=ModelConfig)
    losses: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: LoopConfig = field(default_factory=LoopConfig)


# Keys that may change when a run is resumed: they do not change what the next step computes.
RESUME_SAFE_KEYS = (
    "train.steps",
    "train.log_every",
    "train.val_every",
    "train.checkpoint_every",
    "train.sample_every",
    "train.keep_last",
    "train.select_by",  # which checkpoint is kept as best, not how the run trains
    "train.device",
    "data.num_workers",
)


def packaged_configs() -> list[str]:
    """Names of the recipes shipped in ``lbam/configs`` (``paper``, ``compact_cpu``, ...)."""
    folder = resources.files("lbam") / "configs"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def resolve_config_path(name_or_path: str | os.PathLike) -> Path:
    """A config file path: an existing file, or the name of a packaged recipe."""
    candidate = Path(name_or_path).expanduser()
    if candidate.is_file():
        return candidate
    packaged = resources.files("lbam") / "configs" / f"{name_or_path}.yaml"
    if packaged.is_file():
        return Path(str(packaged))
    raise LbamError(
        f"config not found: {str(name_or_path)!r} is neither a file nor a packaged recipe "
        f"({', '.join(packaged_configs())})"
    )


# Keys of the generator's settings that lbam 0.1 kept directly under ``model``.
LEGACY_GENERATOR_KEYS = ("variant", "width", "last_activation", "layers")


def upgrade_config_data(data: dict[str, Any]) -> dict[str, Any]:
    """Config data of lbam 0.1 (``model.width``, ``model.variant`` ...) in today's layout.

    Today those keys live under ``model.generator``; old run folders and YAML files still load.
    Runs from before ``model.critic`` existed had the two-column critic.
    """
    model = data.get("model")
    if not isinstance(model, dict):
        return data
    model = dict(model)
    model.setdefault("critic", "two_column")  # runs from before the patch critic
    if not any(key in model for key in LEGACY_GENERATOR_KEYS):
        return {**data, "model": model}
    generator = dict(model.get("generator") or {})
    for key in LEGACY_GENERATOR_KEYS:
        if key in model:
            generator.setdefault(key, model.pop(key))
    model["generator"] = generator
    return {**data, "model": model}


def load_train_config(
    name_or_path: str | os.PathLike | None = None, overrides: list[str | tuple[str, Any]] | None = None
) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML file or packaged recipe name, with ``key=value`` overrides."""
    data = load_yaml(resolve_config_path(name_or_path)) if name_or_path is not None else {}
    data = _for_architecture(upgrade_config_data(data), overrides or [])
    config = load_config(TrainConfig, data, overrides)
    check_values(config)
    return config


def _for_architecture(data: dict, overrides: list[str | tuple[str, Any]]) -> dict:
    """``data`` with the generator settings another architecture, set by an override, lacks left
    out (e.g. ``--architecture pconv`` with the compact_cpu recipe keeps its width, drops its
    LBAM variant), each named in a note; the settings both share are kept."""
    pairs = [o if isinstance(o, tuple) else tuple(o.split("=", 1)) for o in overrides]
    chosen = [value for key, value in pairs if key == "model.architecture"]
    model = data.get("model") or {}
    replaced = any(key == "model.generator" for key, _ in pairs)  # the override brings its own settings
    if (
        not chosen
        or replaced
        or not isinstance(model, dict)
        or chosen[-1] == model.get("architecture", "lbam")
    ):
        return data
    try:
        known = {f.name for f in dataclasses.fields(get_architecture(str(chosen[-1])).config)}
    except LbamError:
        return data  # an unknown architecture: loading says so
    settings = model.get("generator") or {}
    dropped = sorted(set(settings) - known)
    if dropped:
        print(
            f"lbam: note: {chosen[-1]} has no {', '.join(dropped)}: the config's model.generator "
            "settings of that name are left out",
            file=sys.stderr,
        )
    generator = {k: v for k, v in settings.items() if k in known}
    return {**data, "model": {**model, "architecture": chosen[-1], "generator": generator}}


def _check_model(model: ModelConfig) -> None:
    for key, value, allowed in (
        ("model.critic", model.critic, CRITICS),
        ("model.critic_norm", model.critic_norm, ("batch", "none", "instance")),
        ("model.upsampling", model.upsampling, UPSAMPLING),
    ):
        if value not in allowed:
            raise LbamError(f"{key} must be one of {', '.join(allowed)}, got {value!r}")


def _check_optim(optim: OptimConfig) -> None:
    if optim.warmup_steps < 0 or not 0 <= optim.min_lr_ratio <= 1:
        raise LbamError(
            f"optim.warmup_steps must be >= 0 and optim.min_lr_ratio in [0, 1], got "
            f"{optim.warmup_steps} and {optim.min_lr_ratio}"
        )
    if optim.decay_steps is not None and optim.decay_steps <= optim.warmup_steps:
        raise LbamError(
            f"optim.decay_steps ({optim.decay_steps}) must be larger than optim.warmup_steps ({optim.warmup_steps})"
        )
    for key, betas in (("optim.g_betas", optim.g_betas), ("optim.d_betas", optim.d_betas)):
        if not all(0 <= b < 1 for b in betas):
            raise LbamError(f"config key {key!r} must hold two numbers in [0, 1), got {list(betas)}")


def check_values(config: TrainConfig) -> None:
    """Reject values that would only fail later, inside the training loop."""
    positive = {
        "data.crop_size": config.data.crop_size,
        "data.val_count": config.data.val_count,
        "train.steps": config.train.steps,
        "train.batch_size": config.train.batch_size,
        "train.log_every": config.train.log_every,
        "train.val_every": config.train.val_every,
        "train.checkpoint_every": config.train.checkpoint_every,
        "train.sample_every": config.train.sample_every,
        "train.keep_last": config.train.keep_last,
        "optim.critic_steps": config.optim.critic_steps,
        "optim.penalty_every": config.optim.penalty_every,
        "model.critic_width": config.model.critic_width,
        "optim.g_lr": config.optim.g_lr,
        "optim.d_lr": config.optim.d_lr,
    }
    for key, value in positive.items():
        if not value > 0:
            raise LbamError(f"config key {key!r} must be positive, got {value}")
    if config.data.load_size is not None and config.data.load_size < config.data.crop_size:
        raise LbamError(
            f"data.load_size ({config.data.load_size}) is smaller than data.crop_size ({config.data.crop_size})"
        )
    if config.data.max_load_size is not None and (
        config.data.load_size is None or config.data.max_load_size < config.data.load_size
    ):
        raise LbamError(
            f"data.max_load_size ({config.data.max_load_size}) needs data.load_size set and no larger "
            f"(got {config.data.load_size})"
        )
    if config.data.num_workers < 0:
        raise LbamError(f"config key 'data.num_workers' must be >= 0, got {config.data.num_workers}")
    if config.train.select_by not in SELECT_BY:
        raise LbamError(
            f"train.select_by must be one of {', '.join(SELECT_BY)}, got {config.train.select_by!r}"
        )
    if config.train.select_by == "st_lpips" and config.data.crop_size < ST_LPIPS_MIN_SIDE:
        raise LbamError(
            f"train.select_by st_lpips needs data.crop_size of at least {ST_LPIPS_MIN_SIDE}, "
            f"got {config.data.crop_size}"
        )
    _check_model(config.model)
    _check_optim(config.optim)

"""``lbam ablate``: train every variant under one recipe, evaluate all on the same pairs, report.

    run_ablation(settings)
      1. for each variant (and extra seed): train into OUT/runs/LABEL with ``lbam train``'s
         trainer, or resume it, or skip it when it has reached ``steps``
      2. on the main process only: the evaluation masks (OUT/eval_masks, generated once, seeded)
      3. ``lbam evaluate`` on the final weights of every run: OUT/eval
      4. the report: OUT/report.md, OUT/curves.png, OUT/contact_sheet.png (lbam.ablation.report)

Identical conditions: every run takes the same recipe (``config``) with only the generator's
architecture and attention changed, the same width, data, masks, losses, steps and seed, so each
step sees the same images, crops and holes. The final step's weights are evaluated, not the
checkpoint that validation picked: the evaluation photos are the validation photos, and choosing on
them would favour the variant with the noisiest curve.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbam.ablation.variants import Variant, parse_variants
from lbam.errors import LbamError

DEFAULT_VARIANTS = "pconv,fixed,forward,lbam"
EVAL_MASK_KINDS = "noise:1,lama_thick:1,lama_boxes:1,deepfill:1"
EVAL_MASK_COUNT = 1200


@dataclass
class AblationSettings:
    """Everything ``lbam ablate`` takes; see ``lbam ablate --help``."""

    data: str
    val_data: str
    out: str
    steps: int
    width: float = 0.25
    crop_size: int = 128
    config: str = "compact_cpu"
    variants: str = DEFAULT_VARIANTS
    seed: int = 0
    batch_size: int | None = None
    masks: list[dict] | None = None  # training masks (lbam.data.masks spec); None: the recipe's
    overrides: list[str] = field(default_factory=list)  # --set KEY=VALUE for every run
    eval_masks: str | None = None  # a folder of hole masks; None: a generated, seeded set
    eval_size: int | None = None  # None: crop_size
    pairs: int = 50
    device: str = "auto"
    progress: bool = True

    @property
    def runs(self) -> list[Variant]:
        return parse_variants(self.variants)


def run_ablation(settings: AblationSettings, log: Callable[[str], None] = print) -> Path | None:
    """Train, evaluate and report; returns OUT/report.md, or None on a process other than rank 0
    or when training was interrupted (the same call continues it).

    Raises:
        LbamError: bad settings, or a run folder trained with other settings than these.
    """
    runs = settings.runs
    configs = {run: run_config(settings, run) for run in runs}  # every config checked before any step
    out = Path(settings.out)
    if not _train_all(runs, configs, out, settings, log):
        return None
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    from lbam.ablation.report import write_ablation_report

    eval_masks = Path(settings.eval_masks) if settings.eval_masks else ensure_eval_masks(out, settings)
    summary = evaluate_runs(settings, runs, eval_masks, log)
    return write_ablation_report(settings, runs, configs, summary, log)


def _train_all(
    runs: list[Variant], configs: dict, out: Path, settings: AblationSettings, log: Callable[[str], None]
) -> bool:
    """Train every run in turn; under torchrun in one process group for all of them."""
    from lbam.training import distributed

    context = distributed.init_distributed(settings.device)
    try:
        for run in runs:
            if not train_run(configs[run], out / "runs" / run.label, settings.steps, log):
                log(f"interrupted: run the same command again to continue from {out / 'runs' / run.label}")
                return False
    finally:
        distributed.cleanup(context)
    return True


def run_config(settings: AblationSettings, run: Variant) -> Any:
    """The training config of one run: the recipe, the shared settings, then the variant's model."""
    from lbam.training.config import load_train_config

    recipe = load_train_config(settings.config)
    overrides: list[Any] = [
        ("data.train_dir", settings.data),
        ("data.val_dir", settings.val_data),
        ("data.crop_size", settings.crop_size),
        ("train.steps", settings.steps),
        ("train.seed", settings.seed if run.seed < 0 else run.seed),
        ("train.device", settings.device),
    ]
    if recipe.data.load_size is not None:  # the recipe's load/crop ratio kept (compact_cpu: 160/128)
        load = round(recipe.data.load_size * settings.crop_size / recipe.data.crop_size)
        overrides.append(("data.load_size", load))
    if settings.batch_size is not None:
        overrides.append(("train.batch_size", settings.batch_size))
    if settings.masks is not None:
        overrides.append(("masks", settings.masks))
    overrides += list(settings.overrides)
    overrides += run.model_overrides(settings.width)
    config = load_train_config(settings.config, overrides)
    if config.model.upsampling != "transposed":
        raise LbamError("model.upsampling must stay 'transposed' in an ablation: pconv has no tied kernels")
    return config


def train_run(config: Any, run_dir: Path, steps: int, log: Callable[[str], None]) -> bool:
    """Train ``run_dir`` to ``steps``: start it, resume it, or leave it when it is there.

    Returns False when training was interrupted (SIGINT/SIGTERM; a checkpoint was written).

    Raises:
        LbamError: the folder holds a run whose settings differ from ``config`` (the keys named).
    """
    from lbam.training.trainer import load_run_config, train

    if not (run_dir / "config.yaml").is_file():
        log(f"{run_dir.name}: training {steps} steps into {run_dir}")
        return not train(config, run_dir).interrupted
    stored = load_run_config(run_dir, [("train.steps", steps)])
    changed = _differences(stored, config)
    if changed:
        raise LbamError(
            f"{run_dir} was trained with other settings ({'; '.join(changed)}): choose another --out "
            "or the same settings"
        )
    done = trained_steps(run_dir)
    if done >= steps:
        log(f"{run_dir.name}: {done} steps already trained")
        return True
    log(f"{run_dir.name}: resuming at step {done} of {steps}")
    return not train(stored, run_dir, resume=True).interrupted


def _differences(stored: Any, wanted: Any) -> list[str]:
    from lbam.config import flatten, to_dict
    from lbam.training.config import RESUME_SAFE_KEYS

    old, new = flatten(to_dict(stored)), flatten(to_dict(wanted))
    keys = sorted(set(old) | set(new))
    return [
        f"{key}: {old.get(key)!r} there, {new.get(key)!r} now"
        for key in keys
        if key not in RESUME_SAFE_KEYS and key != "train.out_dir" and old.get(key) != new.get(key)
    ]


def trained_steps(run_dir: Path) -> int:
    """The step of a run's latest checkpoint; 0 when it has none."""
    from lbam.training import checkpoint as ckpt

    try:
        return int(ckpt.read_meta(ckpt.find_checkpoint(run_dir, "latest"))["step"])
    except LbamError:
        return 0


def ensure_eval_masks(out: Path, settings: AblationSettings) -> Path:
    """OUT/eval_masks: a seeded set of hole masks over the six NVIDIA bins, written once."""
    import shutil
    import tempfile

    from lbam.data.masks import mask_generator_from_spec, parse_kind_list
    from lbam.data.masks.sets import write_mask_set

    folder = out / "eval_masks"
    if folder.is_dir():
        return folder
    size = settings.eval_size or settings.crop_size
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".eval_masks.", dir=out))
    try:
        generator = mask_generator_from_spec(parse_kind_list(EVAL_MASK_KINDS))
        write_mask_set(staging, generator, EVAL_MASK_COUNT, (size, size), settings.seed)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def evaluate_runs(
    settings: AblationSettings, runs: list[Variant], eval_masks: Path, log: Callable[[str], None]
) -> dict:
    """``lbam evaluate`` of every run's final weights on the same pairs; OUT/eval holds its report."""
    from lbam.evaluation.evaluate import EvaluationSettings, evaluate
    from lbam.evaluation.methods import GeneratorMethod
    from lbam.export.generator import generator_from_run
    from lbam.utils.device import resolve_device

    device = str(resolve_device(settings.device))
    methods = []
    for run in runs:
        model, _ = generator_from_run(Path(settings.out) / "runs" / run.label, "latest")
        methods.append(GeneratorMethod(model, run.label, device))
    evaluation = EvaluationSettings(
        images=Path(settings.val_data),
        masks=eval_masks,
        methods=methods,
        out=Path(settings.out) / "eval",
        size=settings.eval_size or settings.crop_size,
        pairs=settings.pairs,
        seed=settings.seed,
        device=device,
        grid_pairs=1,
        grid_tile=max(settings.eval_size or settings.crop_size, 128),
        progress=settings.progress,
    )
    return evaluate(evaluation, log)

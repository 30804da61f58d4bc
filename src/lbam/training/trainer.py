"""The training loop behind ``lbam train``, readable top to bottom.

    train(config, run_dir)
      1. join the process group (torchrun) or run alone
      2. prepare: check everything a user can get wrong and build the state, data and loss
         (lbam.training.setup); on --resume, restore the checkpoint
      3. loop: one step (lbam.training.step), then log, validate, sample, checkpoint on schedule
      4. on SIGINT/SIGTERM finish the current step, write a checkpoint and return

Exact resume: which images a step sees and the crops/masks they get depend only on
(seed, step); the random interpolation of the gradient penalty comes from a generator seeded by
(seed, step, rank). A run that stops at step N and resumes therefore computes exactly what an
uninterrupted run computes (bitwise on the CPU with the same thread count).

Training leaves no global state changed behind it: the RNGs, cuDNN's benchmark flag and the
matmul precision are put back when :func:`train` returns.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from lbam.config import dump_yaml, flatten, load_config, load_yaml, to_dict
from lbam.errors import LbamError
from lbam.training import checkpoint as ckpt
from lbam.training import distributed as dist_utils
from lbam.training.config import RESUME_SAFE_KEYS, TrainConfig, check_values, upgrade_config_data
from lbam.training.distributed import DistributedContext
from lbam.training.lock import RunLock
from lbam.training.logs import RunLogger
from lbam.training.sampler import EpochIndexedDataset, StepBatchSampler
from lbam.training.schedule import apply_schedule
from lbam.training.setup import CONFIG_FILE, Prepared, TrainData, prepare
from lbam.training.state import TrainState, distribute
from lbam.training.step import StepSettings, step_generator, train_step
from lbam.training.validation import METRIC_NAMES, is_better, sample_images, validate
from lbam.utils.files import atomic_write_text


@dataclass
class TrainResult:
    """What a call to :func:`train` ended with; ``generator``/``critic`` are the trained modules."""

    run_dir: Path
    step: int
    interrupted: bool
    best_score: float | None  # the best validation value of train.select_by
    last_validation: dict[str, float]
    generator: nn.Module | None = None
    critic: nn.Module | None = None


def train(
    config: TrainConfig,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    checkpoint: str | int = "latest",
) -> TrainResult:
    """Train (or, with ``resume=True``, continue training) into ``run_dir``.

    Args:
        config: the resolved configuration; for a resume, the one from :func:`load_run_config`.
        run_dir: the run folder; defaults to ``config.train.out_dir``. A new run needs it empty or
            absent (nothing is overwritten); a resumed run needs its ``config.yaml`` and a checkpoint.
        resume: continue from the run's latest checkpoint (a run stopped before its first
            checkpoint starts from step 0).
        checkpoint: with ``resume``, which checkpoint to continue from: "latest", "best" or a step.

    Raises:
        LbamError: bad data, masks, config, checkpoint or run folder; raised before any step runs.
    """
    run_dir = Path(run_dir if run_dir is not None else config.train.out_dir)
    context = dist_utils.init_distributed(config.train.device)
    try:
        with preserved_global_state():
            return _train(config, run_dir, resume, checkpoint, context)
    finally:
        dist_utils.cleanup(context)


def _train(
    config: TrainConfig, run_dir: Path, resume: bool, checkpoint: str | int, context: DistributedContext
) -> TrainResult:
    use_amp = config.train.amp and context.device.type == "cuda"
    with RunLock(run_dir) as lock:
        if resume:  # before recovery on resume can touch the folder's checkpoints
            _collectively(lambda: lock.acquire() if context.is_main else None, context)
        prepared = _prepare_on_every_process(config, run_dir, resume, checkpoint, context, use_amp)
        if not resume:
            _collectively(lambda: _start_run_dir(config, run_dir, lock) if context.is_main else None, context)
        else:  # collectively: a failed write (a full disk) must stop every process, not hang them
            _collectively(
                lambda: (
                    prepared.notes.extend(_record_resume_changes(config, run_dir))
                    if context.is_main
                    else None
                ),
                context,
            )
        dist_utils.barrier(context)
        return _train_prepared(config, run_dir, prepared, context, use_amp)


def _start_run_dir(config: TrainConfig, run_dir: Path, lock: RunLock) -> None:
    """Create a new run's folder, lock it and write its config (the main process only)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock.acquire()
    atomic_write_text(run_dir / CONFIG_FILE, dump_yaml(config))


def _record_resume_changes(config: TrainConfig, run_dir: Path) -> list[str]:
    """Write a resume's overrides (``--steps``, ``--set train.select_by=...``) into ``config.yaml``.

    Otherwise a later plain ``--resume`` would silently go back to the file's values. Returns one
    log line per changed key.
    """
    path = run_dir / CONFIG_FILE
    before = flatten(load_yaml(path))
    after = flatten(to_dict(config))
    changed = [
        f"{key} {before[key]!r} -> {after[key]!r}"
        for key in after
        if key in before and before[key] != after[key]
    ]
    added = [f"{key} {after[key]!r} (added: the run predates the key)" for key in after if key not in before]
    if changed or added:
        atomic_write_text(path, dump_yaml(config))
    return [f"{CONFIG_FILE}: {line}" for line in changed + added]


def _collectively(action: Callable[[], None], context: DistributedContext) -> None:
    """Run ``action``; if it fails on any process, every process raises (with its message where it failed)."""
    failure: LbamError | None = None
    try:
        action()
    except LbamError as error:
        failure = error
    if dist_utils.any_process(failure is not None, context):
        raise failure or LbamError("set-up failed on another process (see its message)")


def _train_prepared(
    config: TrainConfig, run_dir: Path, prepared: Prepared, context: DistributedContext, use_amp: bool
) -> TrainResult:
    log = RunLogger(run_dir, enabled=context.is_main, start_step=prepared.state.step)
    try:
        for line in prepared.notes:
            log.info(line)
        if context.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.set_float32_matmul_precision("high")
        distribute(prepared.state, context)
        sampler = StepBatchSampler(
            prepared.data.train_indices,
            config.train.batch_size,
            config.train.seed,
            context.rank,
            context.world_size,
            prepared.state.step,
        )
        _log_start(log, config, run_dir, prepared, sampler, context, use_amp)
        # Restore the RNGs last: nothing after this point draws from them before the loop.
        if prepared.rng:  # checked in prepare()
            ckpt.restore_rng_state(prepared.rng)
        settings = StepSettings(
            prepared.loss,
            context,
            config.optim.critic_steps,
            use_amp,
            tied_upsampling=config.model.upsampling == "resize_conv",
            penalty_every=config.optim.penalty_every,
        )
        return _loop(config, run_dir, prepared, sampler, settings, log)
    finally:
        log.close()


def _loop(
    config: TrainConfig,
    run_dir: Path,
    prepared: Prepared,
    sampler: StepBatchSampler,
    settings: StepSettings,
    log: RunLogger,
) -> TrainResult:
    """Steps until ``train.steps`` or a stop signal; logs, validates and checkpoints on schedule."""
    state, loop, context = prepared.state, config.train, settings.context
    loader, val_loader = _loaders(prepared.data, sampler, config, context)
    stop = StopSignal()
    stop.install()
    progress = tqdm(
        total=loop.steps, initial=state.step, disable=not context.is_main, unit="step", desc="train"
    )
    window = MeanWindow()
    batches: Iterator[dict[str, Tensor]] = iter(loader)
    validation, validated_step, saved_step = {}, -1, -1
    try:
        while state.step < loop.steps:
            apply_schedule(state.step, config.optim, state.g_optimizer, state.d_optimizer)
            random_draws = step_generator(loop.seed, state.step, context.rank, context.device)
            window.add(train_step(state, next(batches), settings, random_draws))
            progress.update(1)
            step, last = state.step, state.step == loop.steps
            if step % loop.log_every == 0 or last:
                _log_training(log, state, window.take(context), loop.batch_size, progress)
            if step % loop.val_every == 0 or last:
                validation, validated_step = (
                    _validate(run_dir, config, prepared, val_loader, log, context),
                    step,
                )
            if step % loop.sample_every == 0 and context.is_main:
                log.image_grid(step, "samples", _samples(prepared, context.device))
            if step % loop.checkpoint_every == 0 or last:
                _save(run_dir, config, state, validation if validated_step == step else {}, context, log)
                saved_step = step
            if dist_utils.any_process(stop.requested is not None, context):
                break
    finally:
        progress.close()
        stop.restore()
        del batches  # shuts DataLoader workers down
    return _finish(run_dir, config, state, validation, saved_step, context, log)


def _finish(
    run_dir: Path,
    config: TrainConfig,
    state: TrainState,
    validation: dict[str, float],
    saved_step: int,
    context: DistributedContext,
    log: RunLogger,
) -> TrainResult:
    """After the loop: a checkpoint of an interrupted run's last step, the closing line, the result."""
    interrupted = state.step < config.train.steps
    if interrupted and saved_step != state.step:
        _save(run_dir, config, state, {}, context, log)
    if interrupted:
        log.info("interrupted at step %d; resume with lbam train --resume %s", state.step, run_dir)
    else:
        log.info("finished %d steps in %s", state.step, run_dir)
    dist_utils.barrier(context)
    return TrainResult(
        run_dir, state.step, interrupted, state.best_score, validation, state.generator, state.critic
    )


# ---- the pieces the loop calls -------------------------------------------------------------------


def _prepare_on_every_process(
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    checkpoint: str | int,
    context: DistributedContext,
    use_amp: bool,
) -> Prepared:
    """Every process prepares; if one fails, all stop with its message (or a pointer to it)."""
    prepared: list[Prepared] = []
    _collectively(
        lambda: prepared.append(prepare(config, run_dir, resume, context, use_amp, checkpoint)), context
    )
    return prepared[0]


def _loaders(
    data: TrainData, sampler: StepBatchSampler, config: TrainConfig, context: DistributedContext
) -> tuple[DataLoader, DataLoader]:
    loader = DataLoader(
        EpochIndexedDataset(data.train),
        batch_sampler=sampler,
        num_workers=config.data.num_workers,
        pin_memory=context.device.type == "cuda",
        worker_init_fn=_ignore_stop_signals,
    )
    val_loader = DataLoader(
        Subset(data.val, data.val_indices), batch_size=sampler.global_batch // context.world_size
    )
    return loader, val_loader


def _log_start(
    log: RunLogger,
    config: TrainConfig,
    run_dir: Path,
    prepared: Prepared,
    sampler: StepBatchSampler,
    context: DistributedContext,
    use_amp: bool,
) -> None:
    settings = ", ".join(f"{key} {value}" for key, value in config.model.generator.items())
    log.info(
        "run %s: %s (%s), %d process(es) x batch %d, %d training images (%d steps per epoch), device %s%s",
        run_dir,
        config.model.architecture,
        settings,
        context.world_size,
        config.train.batch_size // context.world_size,
        len(prepared.data.train_indices),
        sampler.batches_per_epoch,
        context.device,
        ", mixed precision" if use_amp else "",
    )
    if prepared.checkpoint_dir is not None:
        log.info("resumed from step %d (%s)", prepared.state.step, prepared.checkpoint_dir)


def _log_training(
    log: RunLogger, state: TrainState, means: dict[str, float], batch_size: int, progress: tqdm
) -> None:
    seconds = means.pop("_seconds")
    count = means.pop("_count")
    scalars = {f"train/{name}": value for name, value in means.items()}
    scalars["lr/generator"] = state.g_optimizer.param_groups[0]["lr"]
    if state.d_optimizer is not None:
        scalars["lr/critic"] = state.d_optimizer.param_groups[0]["lr"]
    speed = count / max(seconds, 1e-9)
    scalars["speed/steps_per_s"] = speed
    scalars["speed/images_per_s"] = speed * batch_size
    log.scalars(state.step, scalars)
    progress.set_postfix(loss=f"{means.get('g_total', float('nan')):.4f}", refresh=False)


def _validate(
    run_dir: Path,
    config: TrainConfig,
    prepared: Prepared,
    loader: DataLoader,
    log: RunLogger,
    context: DistributedContext,
) -> dict[str, float]:
    """Validation on rank 0 (the others wait); a new best ``train.select_by`` is saved as ``checkpoints/best``."""
    state = prepared.state
    results = validate(state.generator, loader, context.device, prepared.st_lpips) if context.is_main else {}
    dist_utils.barrier(context)
    if not context.is_main:
        return results
    step = state.step
    log.scalars(step, {f"val/{k}": v for k, v in results.items()})
    extra = f", ST-LPIPS {results['st_lpips']:.4f}" if "st_lpips" in results else ""
    log.info("step %d: validation PSNR %.3f dB, SSIM %.4f%s", step, results["psnr"], results["ssim"], extra)
    metric = config.train.select_by
    # A resume may change train.select_by: a best of another metric is not comparable.
    best = state.best_score if state.best_metric == metric else None
    if is_better(results[metric], best, metric):
        state.best_score, state.best_metric = results[metric], metric
        ckpt.save_best(run_dir / "checkpoints", state.checkpoint(config, results))
        log.info("step %d: new best validation %s, saved checkpoints/best", step, METRIC_NAMES[metric])
    return results


def _samples(prepared: Prepared, device: torch.device) -> Tensor:
    data = prepared.data
    return sample_images(prepared.state.generator, data.val, data.val_indices, device)


def _save(
    run_dir: Path,
    config: TrainConfig,
    state: TrainState,
    metrics: dict[str, float],
    context: DistributedContext,
    log: RunLogger,
) -> None:
    if not context.is_main:
        return
    root = run_dir / "checkpoints"
    path = ckpt.save_checkpoint(root, ckpt.checkpoint_name(state.step), state.checkpoint(config, metrics))
    ckpt.write_latest(root, path.name)
    ckpt.prune_checkpoints(root, config.train.keep_last)
    log.info("step %d: checkpoint %s", state.step, path)


class MeanWindow:
    """Running sums of the loss values since the last log line, kept as tensors (no device sync)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.count = 0
        self.start = time.perf_counter()

    def add(self, values: dict[str, Tensor]) -> None:
        for name, value in values.items():
            value = value.detach().double()
            self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.count += 1

    def take(self, context: DistributedContext) -> dict[str, float]:
        """Means over the window, averaged over all processes (every process must call this), plus
        ``_seconds`` and ``_count`` of the window; then starts a new window."""
        names = sorted(self.sums)
        values = torch.stack([self.sums[n].cpu() / max(self.count, 1) for n in names])
        if context.enabled:
            values = dist_utils.all_reduce_mean(values.to(context.device), context).cpu()
        means = dict(zip(names, values.tolist(), strict=True))
        means["_seconds"], means["_count"] = time.perf_counter() - self.start, self.count
        self.reset()
        return means


class StopSignal:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step; a second SIGINT aborts."""

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for number in (signal.SIGINT, signal.SIGTERM):
            self._previous[number] = signal.signal(number, self.handle)

    def handle(self, number: int, frame: Any = None) -> None:
        if self.requested is not None and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signal.Signals(number).name

    def restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()


def _ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C / SIGTERM to the main process, which stops them after saving."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextlib.contextmanager
def preserved_global_state() -> Iterator[None]:
    """Put back the global RNGs, cuDNN's benchmark flag and the matmul precision on the way out."""
    rng = ckpt.capture_rng_state()
    benchmark, precision = torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision()
    try:
        yield
    finally:
        ckpt.restore_rng_state(rng)
        torch.backends.cudnn.benchmark = benchmark
        torch.set_float32_matmul_precision(precision)


def load_run_config(
    run_dir: str | os.PathLike, overrides: list[str | tuple[str, Any]] | None = None
) -> TrainConfig:
    """The config of an existing run (``RUN_DIR/config.yaml``) with overrides of resume-safe keys only.

    Raises:
        LbamError: no config in the folder, or an override of a key that would change the run
            (only ``train.steps``, the logging/validation/checkpoint intervals, ``train.device`` and
            ``data.num_workers`` may change).
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise LbamError(f"cannot resume {run_dir}: no {CONFIG_FILE} (is it a run folder of lbam train?)")
    overrides = list(overrides or [])
    for override in overrides:
        key = override[0] if isinstance(override, tuple) else override.partition("=")[0].strip()
        if key not in RESUME_SAFE_KEYS:
            raise LbamError(
                f"cannot change {key!r} when resuming (it would change what the run computes); "
                f"allowed: {', '.join(RESUME_SAFE_KEYS)}"
            )
    config = load_config(TrainConfig, upgrade_config_data(load_yaml(path)), overrides)
    check_values(config)
    return config

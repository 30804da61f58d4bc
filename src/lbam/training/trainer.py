"""The training loop behind ``lbam train``, readable top to bottom.

    train(config, run_dir)
      1. join the process group (torchrun) or run alone
      2. check everything a user can get wrong -- data, masks, crop size, VGG weights, run folder,
         checkpoint -- and fail with one LbamError before any step runs
      3. build the generator (random, or model.init_weights to fine-tune), the critic, Adam for
         both (the paper's settings), loss, data loader
      4. on --resume, restore weights, optimisers, loss scalers, RNG states and the step
      5. loop: critic step(s), generator step; log, validate, sample, checkpoint on schedule
      6. on SIGINT/SIGTERM finish the current step, write a checkpoint and return

One training step (WGAN-GP, Gulrajani et al. 2017, as the LBAM paper describes):

    output    = G(image, known_mask)                      raw output in [0, 1]
    critic:     critic_loss(D(image), D(output.detach())) + gp_weight * gradient_penalty
    generator:  InpaintingLoss(output, image, known_mask) + adversarial * -mean D(output)

Exact resume: which images a step sees and the crops/masks they get depend only on
(seed, step); the random interpolation of the gradient penalty comes from a generator seeded by
(seed, step, rank). A run that stops at step N and resumes therefore computes exactly what an
uninterrupted run computes (bitwise on the CPU with the same thread count).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset

from lbam.config import dump_yaml, flatten, load_config, load_yaml, to_dict
from lbam.errors import LbamError
from lbam.model.loading import load_state_strict
from lbam.training import checkpoint as ckpt
from lbam.training import distributed as dist_utils
from lbam.training.config import RESUME_SAFE_KEYS, TrainConfig, check_values
from lbam.training.distributed import DistributedContext
from lbam.training.logs import RunLogger, sample_grid
from lbam.training.sampler import EpochIndexedDataset, StepBatchSampler
from lbam.utils.files import atomic_write_text

# A test hook: when set to a folder, every process writes its final generator weights there as
# rank<N>.safetensors, so a test can check that the replicas of a distributed run are identical.
DUMP_WEIGHTS_ENV = "LBAM_TRAIN_DUMP_WEIGHTS"
CONFIG_FILE = "config.yaml"
SAMPLE_COUNT = 4


@dataclass
class TrainResult:
    """What a call to :func:`train` ended with."""

    run_dir: Path
    step: int
    interrupted: bool
    best_psnr: float | None
    last_validation: dict[str, float]


def train(config: TrainConfig, run_dir: str | os.PathLike | None = None, resume: bool = False) -> TrainResult:
    """Train (or, with ``resume=True``, continue training) into ``run_dir``.

    Args:
        config: the resolved configuration; for a resume, the one from :func:`load_run_config`.
        run_dir: the run folder; defaults to ``config.train.out_dir``. A new run needs it empty or
            absent (nothing is overwritten); a resumed run needs its ``config.yaml`` and a checkpoint.
        resume: continue from the run's latest checkpoint.

    Raises:
        LbamError: bad data, masks, config, checkpoint or run folder; raised before any step runs.
    """
    run_dir = Path(run_dir if run_dir is not None else config.train.out_dir)
    context = dist_utils.init_distributed(config.train.device)
    try:
        return _train(config, run_dir, resume, context)
    finally:
        dist_utils.cleanup(context)


def _train(config: TrainConfig, run_dir: Path, resume: bool, context: DistributedContext) -> TrainResult:
    device = context.device
    cfg_loop, cfg_data = config.train, config.data

    # ---- 2. checks and set-up that can fail: every process runs them; if one fails, all stop -----
    failure: LbamError | None = None
    try:
        setup = _prepare(config, run_dir, resume, context)
    except LbamError as error:
        failure, setup = error, None
    if dist_utils.any_process(failure is not None, context):
        raise failure or LbamError("set-up failed on another process (see its message)")
    assert setup is not None
    generator, critic = setup.generator, setup.critic
    g_optimizer, d_optimizer = setup.g_optimizer, setup.d_optimizer
    start_step, best_psnr = setup.start_step, setup.best_psnr

    if context.is_main and not resume:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / CONFIG_FILE, dump_yaml(config))
    dist_utils.barrier(context)
    log = RunLogger(run_dir, enabled=context.is_main, start_step=start_step)
    try:
        for line in setup.notes:
            log.info(line)

        # ---- 3. training objects ---------------------------------------------------------------------
        use_amp = cfg_loop.amp and device.type == "cuda"
        amp_dtype = torch.float16
        g_scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
        d_scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
        if use_amp and setup.scalers.get("g"):  # a CPU checkpoint has no scaler state: start afresh
            g_scaler.load_state_dict(setup.scalers["g"])
            d_scaler.load_state_dict(setup.scalers.get("d") or g_scaler.state_dict())
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.set_float32_matmul_precision("high")

        trained_generator: nn.Module = generator
        if context.enabled:
            trained_generator = DistributedDataParallel(
                generator, device_ids=[device.index] if device.type == "cuda" else None
            )
            if critic is not None:
                dist_utils.broadcast_state(critic, context)  # DDP does this for the generator

        sampler = StepBatchSampler(
            setup.train_indices,
            cfg_loop.batch_size,
            cfg_loop.seed,
            context.rank,
            context.world_size,
            start_step,
        )
        loader = DataLoader(
            EpochIndexedDataset(setup.train_dataset),
            batch_sampler=sampler,
            num_workers=cfg_data.num_workers,
            pin_memory=device.type == "cuda",
            worker_init_fn=_ignore_stop_signals,
        )
        val_loader = DataLoader(
            Subset(setup.val_dataset, setup.val_indices),
            batch_size=sampler.global_batch // context.world_size,
        )

        model_name = config.model.architecture
        if config.model.architecture == "lbam":
            model_name += f" ({config.model.variant})"
        log.info(
            "run %s: %s width %g, %d process(es) x batch %d, %d training images (%d steps per epoch), device %s%s",
            run_dir,
            model_name,
            config.model.width,
            context.world_size,
            cfg_loop.batch_size // context.world_size,
            len(setup.train_indices),
            sampler.batches_per_epoch,
            device,
            ", mixed precision" if use_amp else "",
        )
        if resume:
            log.info("resumed from step %d (%s)", start_step, setup.checkpoint_dir)

        # ---- 4. restore the RNGs last: nothing after this point draws from them before the loop ------
        if setup.rng:
            ckpt.restore_rng_state(setup.rng)

        def checkpoint_state(step: int, metrics: dict[str, float]) -> ckpt.TrainingState:
            return ckpt.TrainingState(
                step=step,
                config=to_dict(config),
                generator=generator.state_dict(),
                g_optimizer=g_optimizer.state_dict(),
                critic=critic.state_dict() if critic is not None else None,
                d_optimizer=d_optimizer.state_dict() if d_optimizer is not None else None,
                scalers={"g": g_scaler.state_dict(), "d": d_scaler.state_dict()},
                rng=ckpt.capture_rng_state(),
                best_psnr=best_psnr,
                metrics=metrics,
            )

        def save(step: int, metrics: dict[str, float]) -> None:
            if not context.is_main:
                return
            root = run_dir / "checkpoints"
            path = ckpt.save_checkpoint(root, ckpt.checkpoint_name(step), checkpoint_state(step, metrics))
            ckpt.write_latest(root, path.name)
            ckpt.prune_checkpoints(root, cfg_loop.keep_last)
            log.info("step %d: checkpoint %s", step, path)

        # ---- 5. the loop -----------------------------------------------------------------------------
        stop = StopSignal()
        stop.install()
        progress = _progress_bar(cfg_loop.steps, start_step, enabled=context.is_main)
        window = MeanWindow()
        batches: Iterator[dict[str, Tensor]] = iter(loader)
        last_validation: dict[str, float] = {}
        step, saved_step, validated_step = start_step, -1, -1
        window_start = time.perf_counter()
        interrupted = False
        try:
            while step < cfg_loop.steps:
                batch = next(batches)
                terms = train_step(
                    batch,
                    trained_generator,
                    critic,
                    g_optimizer,
                    d_optimizer,
                    g_scaler,
                    d_scaler,
                    setup.loss,
                    config,
                    step_generator(cfg_loop.seed, step, context.rank, device),
                    context,
                    use_amp,
                    amp_dtype,
                )
                step += 1
                window.add(terms)
                progress.update(1)

                if step % cfg_loop.log_every == 0 or step == cfg_loop.steps:
                    means = window.mean(context)
                    elapsed = time.perf_counter() - window_start
                    speed = window.count / max(elapsed, 1e-9)
                    scalars = {f"train/{name}": value for name, value in means.items()}
                    scalars["lr/generator"] = g_optimizer.param_groups[0]["lr"]
                    if d_optimizer is not None:
                        scalars["lr/critic"] = d_optimizer.param_groups[0]["lr"]
                    scalars["speed/steps_per_s"] = speed
                    scalars["speed/images_per_s"] = speed * cfg_loop.batch_size
                    log.scalars(step, scalars)
                    progress.set_postfix(loss=f"{means.get('g_total', float('nan')):.4f}", refresh=False)
                    window = MeanWindow()
                    window_start = time.perf_counter()

                if step % cfg_loop.val_every == 0 or step == cfg_loop.steps:
                    last_validation = _validate_on_main(generator, val_loader, device, context)
                    validated_step = step
                    if context.is_main:
                        log.scalars(step, {f"val/{k}": v for k, v in last_validation.items()})
                        log.info(
                            "step %d: validation PSNR %.3f dB, SSIM %.4f",
                            step,
                            last_validation["psnr"],
                            last_validation["ssim"],
                        )
                        if best_psnr is None or last_validation["psnr"] > best_psnr:
                            best_psnr = last_validation["psnr"]
                            ckpt.save_checkpoint(
                                run_dir / "checkpoints",
                                ckpt.BEST_NAME,
                                checkpoint_state(step, last_validation),
                            )
                            log.info("step %d: new best validation PSNR, saved checkpoints/best", step)

                if step % cfg_loop.sample_every == 0 and context.is_main:
                    images = _sample_images(generator, setup.val_dataset, setup.val_indices, device)
                    log.image_grid(step, "samples", images)

                if step % cfg_loop.checkpoint_every == 0 or step == cfg_loop.steps:
                    save(step, last_validation if validated_step == step else {})
                    saved_step = step

                if dist_utils.any_process(stop.requested is not None, context):
                    interrupted = True
                    break
        finally:
            progress.close()
            stop.restore()
            del batches  # shuts DataLoader workers down

        if interrupted:
            if saved_step != step:
                save(step, {})
            log.info("interrupted at step %d; resume with lbam train --resume %s", step, run_dir)
        else:
            log.info("finished %d steps in %s", step, run_dir)
        _dump_weights_for_tests(generator, critic, context)
        dist_utils.barrier(context)
        return TrainResult(run_dir, step, interrupted, best_psnr, last_validation)
    finally:
        log.close()


def train_step(
    batch: dict[str, Tensor],
    generator: nn.Module,
    critic: nn.Module | None,
    g_optimizer: torch.optim.Optimizer,
    d_optimizer: torch.optim.Optimizer | None,
    g_scaler: torch.amp.GradScaler,
    d_scaler: torch.amp.GradScaler,
    loss_fn: nn.Module,
    config: TrainConfig,
    random: torch.Generator,
    context: DistributedContext,
    use_amp: bool,
    amp_dtype: torch.dtype = torch.float16,
) -> dict[str, float]:
    """One generator update, preceded by ``optim.critic_steps`` critic updates when the critic is on.

    ``batch`` holds ``image`` (B, 3, S, S) in [0, 1] and ``known_mask`` (B, 1, S, S), 1 = known.
    ``random`` draws the gradient penalty's interpolation factors. Returns the loss values.
    """
    from lbam.losses.adversarial import critic_loss, generator_adversarial_loss, gradient_penalty

    device = context.device
    image = batch["image"].to(device, non_blocking=True)
    known_mask = batch["known_mask"].to(device, non_blocking=True)
    weights = config.losses
    values: dict[str, float] = {}

    with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
        output = generator(image, known_mask)
    output = output.float()

    if critic is not None:
        assert d_optimizer is not None
        fake = output.detach()
        for _ in range(config.optim.critic_steps):
            d_optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                real_scores = critic(image, known_mask).float()
                fake_scores = critic(fake, known_mask).float()
            # The penalty differentiates the critic twice; fp16 there loses too much: run it in fp32.
            with torch.autocast(device.type, enabled=False):
                penalty = gradient_penalty(critic, image, fake, known_mask, generator=random)
            d_loss = critic_loss(real_scores, fake_scores) + weights.gradient_penalty * penalty
            d_scaler.scale(d_loss).backward()
            dist_utils.all_reduce_gradients(critic, context)
            d_scaler.step(d_optimizer)
            d_scaler.update()
            dist_utils.broadcast_buffers(critic, context)
        values["d_loss"] = d_loss.item()
        values["gradient_penalty"] = penalty.item()
        values["wasserstein"] = (real_scores.mean() - fake_scores.mean()).item()

    # Losses in fp32: the generator's forward is where mixed precision pays.
    terms = loss_fn(output, image, known_mask)
    g_loss = terms["total"]
    if critic is not None:
        critic.requires_grad_(False)  # the adversarial term trains the generator only
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            adversarial = generator_adversarial_loss(critic(output, known_mask).float())
        critic.requires_grad_(True)
        g_loss = g_loss + weights.adversarial * adversarial
        values["adversarial"] = adversarial.item()
    g_optimizer.zero_grad(set_to_none=True)
    g_scaler.scale(g_loss).backward()
    g_scaler.step(g_optimizer)
    g_scaler.update()

    for name, value in terms.items():
        if name != "total":
            values[name] = value.item()
    values["g_total"] = g_loss.item()
    return values


def step_generator(seed: int, step: int, rank: int, device: torch.device) -> torch.Generator:
    """A random generator that depends only on (seed, step, rank): the step's own randomness."""
    state = np.random.SeedSequence([seed, step, rank]).generate_state(2, dtype=np.uint32)
    generator = torch.Generator(device=device)
    generator.manual_seed(int(state[0]) << 32 | int(state[1]))
    return generator


# ---- set-up and checks ---------------------------------------------------------------------------


@dataclass
class _Setup:
    generator: nn.Module
    critic: nn.Module | None
    g_optimizer: torch.optim.Optimizer
    d_optimizer: torch.optim.Optimizer | None
    loss: nn.Module
    train_dataset: Any
    val_dataset: Any
    train_indices: list[int]
    val_indices: list[int]
    start_step: int
    best_psnr: float | None
    scalers: dict[str, Any]
    rng: dict[str, Any]
    checkpoint_dir: Path | None
    notes: list[str]


def _prepare(config: TrainConfig, run_dir: Path, resume: bool, context: DistributedContext) -> _Setup:
    """Everything that can fail because of user input, in the order a user would fix it."""
    from lbam.losses.inpainting import InpaintingLoss, LossWeights
    from lbam.model.discriminator import TwoColumnDiscriminator
    from lbam.model.loading import build_generator

    check_values(config)
    cfg_loop, cfg_data = config.train, config.data
    notes: list[str] = []
    if cfg_loop.batch_size % context.world_size:
        raise LbamError(
            f"train.batch_size ({cfg_loop.batch_size}) must be divisible by the number of processes "
            f"({context.world_size})"
        )
    if resume:
        _check_resumable(run_dir)
    else:
        _check_new_run_dir(run_dir)

    # Models first: the crop size must suit the generator.
    torch.manual_seed(cfg_loop.seed)
    try:
        generator = build_generator(config.model.architecture, **config.model.generator_kwargs())
    except (TypeError, ValueError) as error:
        raise LbamError(f"bad model settings in the config: {error}") from None
    multiple = generator.size_multiple
    if cfg_data.crop_size % multiple:
        raise LbamError(
            f"data.crop_size ({cfg_data.crop_size}) must be a multiple of {multiple} for this generator"
        )
    if config.model.init_weights and not resume:  # a resumed run has its own weights
        notes.append(_load_init_weights(generator, config.model.init_weights))
    generator.to(context.device).train()
    critic = None
    if config.losses.uses_critic:
        critic = TwoColumnDiscriminator(width=config.model.critic_width, norm=config.model.critic_norm)
        critic.to(context.device).train()

    # Data: masks, then images.
    train_dataset, val_dataset, train_indices, val_indices, data_notes = _build_datasets(config)
    notes += data_notes

    # Losses: the VGG file is the last thing a user may have to fetch.
    vgg = None
    if config.losses.uses_vgg:
        from lbam.losses.vgg import load_vgg16

        vgg = load_vgg16(config.losses.vgg_weights, allow_random=config.losses.allow_random_vgg)
        vgg.to(context.device).eval().requires_grad_(False)
    loss = InpaintingLoss(LossWeights(**config.losses.weights()), vgg).to(context.device)

    g_optimizer = torch.optim.Adam(generator.parameters(), lr=config.optim.g_lr, betas=config.optim.g_betas)
    d_optimizer = None
    if critic is not None:
        d_optimizer = torch.optim.Adam(critic.parameters(), lr=config.optim.d_lr, betas=config.optim.d_betas)

    start_step, best_psnr, scalers, rng, checkpoint_dir = 0, None, {}, {}, None
    if resume:
        checkpoint_dir = ckpt.find_checkpoint(run_dir, "latest")
        state = ckpt.load_checkpoint(checkpoint_dir)
        _check_same_model(state.config, config, checkpoint_dir)
        where = f"checkpoint {checkpoint_dir}"
        load_state_strict(generator, state.generator, f"{where} (generator)")
        _load_optimizer(g_optimizer, state.g_optimizer, f"{where} (generator optimiser)")
        if critic is not None:
            if state.critic is None or state.d_optimizer is None or d_optimizer is None:
                raise LbamError(
                    f"{where} has no critic, but losses.adversarial is {config.losses.adversarial}"
                )
            load_state_strict(critic, state.critic, f"{where} (critic)")
            _load_optimizer(d_optimizer, state.d_optimizer, f"{where} (critic optimiser)")
        if state.step >= cfg_loop.steps:
            raise LbamError(
                f"run {run_dir} is already at step {state.step} of train.steps={cfg_loop.steps}; "
                "pass --steps with a larger number to train on"
            )
        start_step, best_psnr, scalers, rng = state.step, state.best_psnr, state.scalers, state.rng

    return _Setup(
        generator,
        critic,
        g_optimizer,
        d_optimizer,
        loss,
        train_dataset,
        val_dataset,
        train_indices,
        val_indices,
        start_step,
        best_psnr,
        scalers,
        rng,
        checkpoint_dir,
        notes,
    )


def _load_init_weights(generator: nn.Module, path_or_name: str) -> str:
    """Copy the weights of a saved generator into ``generator``; returns a log line."""
    from lbam.model.loading import load_model, resolve_model_path

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


def _build_datasets(config: TrainConfig) -> tuple[Any, Any, list[int], list[int], list[str]]:
    """Training and validation datasets and the indices used from each."""
    from lbam.data.dataset import InpaintingDataset
    from lbam.data.masks import mask_generator_from_spec

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

    def dataset(source: Any, key: str, train: bool) -> Any:
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

    train_dataset = dataset(cfg_data.train_dir, "data.train_dir", train=True)
    count = len(train_dataset)
    if cfg_data.val_dir:
        val_dataset = dataset(cfg_data.val_dir, "data.val_dir", train=False)
        val_indices = list(range(min(cfg_data.val_count, len(val_dataset))))
        train_indices = list(range(count))
        note = f"validation: {len(val_indices)} images from {cfg_data.val_dir}"
    else:
        if count <= cfg_data.val_count:
            raise LbamError(
                f"{cfg_data.train_dir} has {count} usable images: too few to hold out data.val_count="
                f"{cfg_data.val_count} for validation; set data.val_dir or lower data.val_count"
            )
        held_out = held_out_indices(count, cfg_data.val_count, seed)
        val_dataset = dataset([train_dataset.files[i] for i in held_out], "data.train_dir", train=False)
        val_indices = list(range(len(held_out)))
        train_indices = sorted(set(range(count)) - set(held_out))
        note = (
            f"validation: no data.val_dir, so {len(held_out)} of the {count} training images are held out "
            "for validation and not trained on"
        )
    if len(train_indices) < config.train.batch_size:
        raise LbamError(
            f"only {len(train_indices)} training images for train.batch_size={config.train.batch_size}: "
            "add images or lower the batch size"
        )
    _check_item(train_dataset, train_indices[0], cfg_data.train_dir)
    return train_dataset, val_dataset, train_indices, val_indices, [note]


def held_out_indices(count: int, how_many: int, seed: int) -> list[int]:
    """A fixed random choice of validation images among ``count`` training images (sorted)."""
    generator = torch.Generator().manual_seed(seed + 7919)
    return sorted(torch.randperm(count, generator=generator)[:how_many].tolist())


def _check_item(dataset: Any, index: int, root: str) -> None:
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


def _check_new_run_dir(run_dir: Path) -> None:
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise LbamError(
            f"run folder {run_dir} already exists and is not empty: continue it with "
            f"'lbam train --resume {run_dir}' or choose another --out"
        )


def _check_resumable(run_dir: Path) -> None:
    if not (run_dir / CONFIG_FILE).is_file():
        raise LbamError(f"cannot resume {run_dir}: no {CONFIG_FILE} (is it a run folder of lbam train?)")
    ckpt.find_checkpoint(run_dir, "latest")


def _check_same_model(saved: dict[str, Any], config: TrainConfig, where: Path) -> None:
    """A checkpoint only resumes the run it came from: the model and critic settings must match."""
    saved_model = flatten({"model": saved.get("model", {})})
    current = flatten({"model": to_dict(config.model)})
    for key, value in current.items():
        if saved_model.get(key) != value:
            raise LbamError(
                f"checkpoint {where} does not match the run's config: {key} is {saved_model.get(key)!r} in "
                f"the checkpoint and {value!r} in the config"
            )


def _load_optimizer(optimizer: torch.optim.Optimizer, state: dict[str, Any], what: str) -> None:
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, RuntimeError) as error:
        raise LbamError(f"{what} does not match: {error}") from None


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
    config = load_config(TrainConfig, load_yaml(path), overrides)
    check_values(config)
    return config


# ---- validation and samples ---------------------------------------------------------------------


@torch.no_grad()
def validate(generator: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM of the composites over the validation set."""
    from lbam.evaluation.metrics import psnr, ssim

    was_training = generator.training
    generator.eval()
    psnr_values, ssim_values = [], []
    for batch in loader:
        image = batch["image"].to(device)
        known_mask = batch["known_mask"].to(device)
        output = generator(image, known_mask).float().clamp(0, 1)
        composite = output * (1 - known_mask) + image * known_mask
        psnr_values.append(psnr(composite, image).cpu())
        ssim_values.append(ssim(composite, image).cpu())
    generator.train(was_training)
    psnr_all, ssim_all = torch.cat(psnr_values), torch.cat(ssim_values)
    # Identical images give an infinite PSNR; cap it so that means and comparisons stay finite.
    psnr_all = psnr_all.clamp(max=100.0)
    return {"psnr": psnr_all.mean().item(), "ssim": ssim_all.mean().item()}


def _validate_on_main(
    generator: nn.Module, loader: DataLoader, device: torch.device, context: DistributedContext
) -> dict[str, float]:
    results = validate(generator, loader, device) if context.is_main else {}
    dist_utils.barrier(context)
    return results


@torch.no_grad()
def _sample_images(generator: nn.Module, dataset: Any, indices: list[int], device: torch.device) -> Tensor:
    items = [dataset[i] for i in indices[:SAMPLE_COUNT]]
    image = torch.stack([item["image"] for item in items]).to(device)
    known_mask = torch.stack([item["known_mask"] for item in items]).to(device)
    was_training = generator.training
    generator.eval()
    output = generator(image, known_mask).float().clamp(0, 1)
    generator.train(was_training)
    return sample_grid(image.cpu(), known_mask.cpu(), output.cpu())


# ---- small pieces of the loop --------------------------------------------------------------------


class MeanWindow:
    """Running means of the loss values since the last log line."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.count += 1

    def mean(self, context: DistributedContext) -> dict[str, float]:
        """Means over the window, averaged over all processes (every process must call this)."""
        names = sorted(self.sums)
        values = torch.tensor([self.sums[n] / max(self.count, 1) for n in names], dtype=torch.float64)
        if context.enabled:
            values = dist_utils.all_reduce_mean(values.to(context.device), context).cpu()
        return dict(zip(names, values.tolist(), strict=True))


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


def _progress_bar(total: int, initial: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True, desc="train"
    )


def _dump_weights_for_tests(
    generator: nn.Module, critic: nn.Module | None, context: DistributedContext
) -> None:
    folder = os.environ.get(DUMP_WEIGHTS_ENV)
    if not folder:
        return
    from safetensors.torch import save_file

    Path(folder).mkdir(parents=True, exist_ok=True)
    state = {f"generator.{k}": v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    if critic is not None:
        state.update({f"critic.{k}": v.detach().cpu().contiguous() for k, v in critic.state_dict().items()})
    save_file(state, str(Path(folder) / f"rank{context.rank}.safetensors"))

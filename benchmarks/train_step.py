"""Seconds per training step on this CPU, and the share of each part of the step.

    python benchmarks/train_step.py                  # widths 1.0 and 0.25 at 256 px; prints the tables
    python benchmarks/train_step.py --write-docs     # also updates the train_step region of docs/benchmarks.md

The recipe is the packaged ``paper`` config (``lbam train --config paper``): the LBAM ``paper``
variant (batch norm), L1 hole/valid + perceptual + style + adversarial terms, the two-column
critic with batch norm trained by WGAN-GP, one critic step per generator step, Adam with the
paper's settings, float32. Only the generator width, the critic width (the generator's by
default), the crop size and the batch change. Images and masks are random: the cost of a step
does not depend on what it sees. Without torchvision's ImageNet VGG16 file the VGG16 has random
weights, which cost the same time; the output says which was used.

The step mirrors ``lbam.training.trainer.train_step`` (same pieces, same order, same maths) but
splits two of its backward passes so that each part can be timed on its own:

- the critic's ``(critic_loss + gp_weight * penalty).backward()`` runs as two backward calls,
  one per term; their graphs share no node, so the critic receives the same gradients;
- the generator's ``(reconstruction + adversarial * adv).backward()`` first back-propagates
  each loss to a detached copy of the generator's output, then the summed gradient through the
  generator: the same gradients, in three calls instead of one.

Each part is timed with ``time.perf_counter`` around its own code (CPU torch ops are synchronous)
and accumulated over the timed steps; "rest" is the step's wall time minus the timed parts
(``.item()`` calls, Python, the timer itself). If ``trainer.train_step`` changes, change
:func:`timed_step` with it (tests/test_benchmarks_train_step.py checks that both give the same
weights after a step).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from lbam.losses.adversarial import critic_loss, generator_adversarial_loss, gradient_penalty
from lbam.losses.inpainting import InpaintingLoss, LossWeights
from lbam.losses.vgg import default_weights_path, load_vgg16
from lbam.model.discriminator import TwoColumnDiscriminator
from lbam.model.loading import build_generator
from lbam.training.config import LossConfig, TrainConfig, load_train_config
from lbam.training.trainer import step_generator

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
REGION = "train_step"

# (key, label) of the timed parts, in table order; "rest" is added after them.
PARTS: tuple[tuple[str, str], ...] = (
    ("generator", "generator forward + backward"),
    ("vgg", "VGG losses (perceptual + style, with the cheap L1 terms)"),
    ("critic", "critic forward + backward (critic step and the adversarial term)"),
    ("penalty", "gradient penalty (critic forward, double backward)"),
    ("optimisers", "optimiser steps (two Adams, zero_grad)"),
)
REST = ("rest", "rest (`.item()`, Python, timers)")


class PartTimer:
    """Seconds spent in each named part, accumulated over calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {key: 0.0 for key, _ in PARTS}

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start


@dataclass
class StepObjects:
    """What one training step needs, built as ``trainer._prepare`` builds it."""

    generator: nn.Module
    critic: nn.Module
    g_optimizer: torch.optim.Optimizer
    d_optimizer: torch.optim.Optimizer
    loss_fn: InpaintingLoss
    weights: LossConfig
    critic_steps: int


def benchmark_config(
    width: float, size: int, batch_size: int, critic_width: float | None = None
) -> TrainConfig:
    """The packaged ``paper`` recipe at another generator width, crop size and batch size, on the CPU."""
    return load_train_config(
        "paper",
        [
            ("model.width", width),
            ("model.critic_width", width if critic_width is None else critic_width),
            ("data.crop_size", size),
            ("data.load_size", None),
            ("train.batch_size", batch_size),
            ("train.device", "cpu"),
            ("losses.allow_random_vgg", True),
        ],
    )


def build_step_objects(config: TrainConfig) -> StepObjects:
    """Generator, critic, loss with VGG16 (random weights when the ImageNet file is absent), two Adams."""
    torch.manual_seed(config.train.seed)
    generator = build_generator(config.model.architecture, **config.model.generator_kwargs()).train()
    critic = TwoColumnDiscriminator(width=config.model.critic_width, norm=config.model.critic_norm).train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the output says when VGG16 has random weights
        vgg = load_vgg16(config.losses.vgg_weights, allow_random=config.losses.allow_random_vgg)
    vgg.eval().requires_grad_(False)
    loss_fn = InpaintingLoss(LossWeights(**config.losses.weights()), vgg)
    optim = config.optim
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=optim.g_lr, betas=optim.g_betas)
    d_optimizer = torch.optim.Adam(critic.parameters(), lr=optim.d_lr, betas=optim.d_betas)
    return StepObjects(
        generator, critic, g_optimizer, d_optimizer, loss_fn, config.losses, optim.critic_steps
    )


def timed_step(
    objects: StepObjects, image: Tensor, known_mask: Tensor, random: torch.Generator, timer: PartTimer
) -> dict[str, float]:
    """One critic update then one generator update, as ``trainer.train_step`` on the CPU (float32).

    image (B, 3, S, S) in [0, 1]; known_mask (B, 1, S, S), 1 = known pixel, 0 = hole; ``random``
    draws the gradient penalty's interpolation factors. Adds each part's seconds to ``timer``;
    returns the same loss values as the trainer.
    """
    generator, critic, weights = objects.generator, objects.critic, objects.weights
    values: dict[str, float] = {}

    with timer.part("generator"):
        output = generator(image, known_mask).float()

    fake = output.detach()
    for _ in range(objects.critic_steps):
        with timer.part("optimisers"):
            objects.d_optimizer.zero_grad(set_to_none=True)
        with timer.part("critic"):
            real_scores = critic(image, known_mask).float()
            fake_scores = critic(fake, known_mask).float()
        with timer.part("penalty"):
            penalty = gradient_penalty(critic, image, fake, known_mask, generator=random)
        # The trainer back-propagates the sum in one call; the two graphs are disjoint.
        with timer.part("critic"):
            wasserstein_loss = critic_loss(real_scores, fake_scores)
            wasserstein_loss.backward()
        with timer.part("penalty"):
            (weights.gradient_penalty * penalty).backward()
        with timer.part("optimisers"):
            objects.d_optimizer.step()
    d_loss = wasserstein_loss.detach() + weights.gradient_penalty * penalty.detach()
    values["d_loss"] = d_loss.item()
    values["gradient_penalty"] = penalty.item()
    values["wasserstein"] = (real_scores.mean() - fake_scores.mean()).item()

    # Both generator losses stop at a leaf copy of the output; its summed gradient then goes
    # through the generator once, as the trainer's single backward call would send it.
    output_leaf = output.detach().requires_grad_(True)
    with timer.part("vgg"):
        terms = objects.loss_fn(output_leaf, image, known_mask)
    with timer.part("critic"):
        critic.requires_grad_(False)
        adversarial = generator_adversarial_loss(critic(output_leaf, known_mask).float())
        critic.requires_grad_(True)
    with timer.part("optimisers"):
        objects.g_optimizer.zero_grad(set_to_none=True)
    with timer.part("vgg"):
        terms["total"].backward()
    with timer.part("critic"):
        (weights.adversarial * adversarial).backward()
    with timer.part("generator"):
        output.backward(output_leaf.grad)
    with timer.part("optimisers"):
        objects.g_optimizer.step()
    values["adversarial"] = adversarial.item()

    for name, value in terms.items():
        if name != "total":
            values[name] = value.item()
    values["g_total"] = (terms["total"] + weights.adversarial * adversarial).item()
    return values


def random_batch(batch_size: int, size: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Random images (B, 3, S, S) in [0, 1] and known masks (B, 1, S, S) with a centred square hole."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch_size, 3, size, size, generator=generator)
    known_mask = torch.ones(batch_size, 1, size, size)
    known_mask[:, :, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 0
    return image, known_mask


def default_steps(width: float) -> int:
    """Timed steps when --steps is not given: 3 for wide (slow) generators, 5 for narrow ones."""
    return 3 if width >= 0.5 else 5


def measure(width: float, size: int, batch_size: int, steps: int, critic_width: float | None = None) -> dict:
    """One warm-up step, then ``steps`` timed steps: step times and the part totals over them."""
    config = benchmark_config(width, size, batch_size, critic_width)
    objects = build_step_objects(config)
    image, known_mask = random_batch(batch_size, size, config.train.seed)
    seed = config.train.seed
    timed_step(objects, image, known_mask, step_generator(seed, 0, 0, image.device), PartTimer())  # warm-up
    timer = PartTimer()
    step_times = []
    for step in range(1, steps + 1):
        random = step_generator(seed, step, 0, image.device)
        start = time.perf_counter()
        timed_step(objects, image, known_mask, random, timer)
        step_times.append(time.perf_counter() - start)
    total = sum(step_times)
    parts = dict(timer.seconds)
    parts[REST[0]] = total - sum(parts.values())
    return {
        "width": width,
        "critic_width": config.model.critic_width,
        "size": size,
        "batch_size": batch_size,
        "steps": steps,
        "step_times": step_times,
        "median_s": statistics.median(step_times),
        "part_s": {name: seconds / steps for name, seconds in parts.items()},
        "share": {name: 100 * seconds / total for name, seconds in parts.items()},
        "generator_params": sum(p.numel() for p in objects.generator.parameters()),
        "critic_params": sum(p.numel() for p in objects.critic.parameters()),
    }


def machine_description() -> str:
    """CPU model (from /proc/cpuinfo when there is one) and the number of logical CPUs."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} logical CPUs"


def vgg_note() -> str:
    if default_weights_path().is_file():
        return f"VGG16: torchvision's ImageNet weights ({default_weights_path()})."
    return (
        "VGG16: **random weights** (torchvision's ImageNet file is not on this machine; "
        "`load_vgg16(allow_random=True)`); they cost the same time."
    )


def markdown(results: Sequence[dict]) -> str:
    """The two tables: whole steps per width, then the parts with their shares."""
    first = results[0]
    lines = [
        f"Machine: {machine_description()}; torch threads: {torch.get_num_threads()}; torch {torch.__version__}.",
        "Recipe: the packaged `paper` config (LBAM `paper` variant with batch norm; L1 hole/valid, perceptual, "
        "style and adversarial terms; two-column critic with batch norm, WGAN-GP, one critic step per "
        "generator step; Adam as the paper), float32, random images and masks. " + vgg_note(),
        f"Step time: median of the timed steps after one warm-up step, {first['size']} px crops. "
        "Parts: mean seconds per timed step, each part timed with `time.perf_counter` around its own code; "
        "*rest* is the step's wall time minus the timed parts.",
        "",
        "| generator width | critic width | generator params | critic params | batch | timed steps "
        "| s/step (median) | min s/step | images/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['width']:g} | {r['critic_width']:g} | {r['generator_params'] / 1e6:.2f} M "
            f"| {r['critic_params'] / 1e6:.2f} M | {r['batch_size']} | {r['steps']} | {r['median_s']:.3f} "
            f"| {min(r['step_times']):.3f} | {r['batch_size'] / r['median_s']:.2f} |"
        )
    header = "| part |" + "".join(f" width {r['width']:g}: s/step | share |" for r in results)
    lines += ["", header, "|---|" + "---:|---:|" * len(results)]
    for key, label in (*PARTS, REST):
        cells = "".join(f" {r['part_s'][key]:.3f} | {r['share'][key]:.1f}% |" for r in results)
        lines.append(f"| {label} |{cells}")
    totals = "".join(f" {sum(r['part_s'].values()):.3f} | 100% |" for r in results)
    lines.append(f"| **whole step (mean)** |{totals}")
    return "\n".join(lines)


def write_docs(path: Path, text: str) -> None:
    """Put the tables in the ``train_step`` region of ``path`` with benchmarks/docs_region.py."""
    spec = importlib.util.spec_from_file_location("docs_region", Path(__file__).with_name("docs_region.py"))
    assert spec is not None and spec.loader is not None
    docs_region = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(docs_region)
    body = (
        "## Training step (CPU)\n\nMade by `python benchmarks/train_step.py --write-docs`; "
        "times depend on the machine and its load.\n\n" + text
    )
    docs_region.update_region(path, REGION, body)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="1.0,0.25", help="generator widths, comma-separated")
    parser.add_argument("--critic-width", type=float, default=None, help="default: the generator's width")
    parser.add_argument("--size", type=int, default=256, help="square crop size (a multiple of 128)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument(
        "--steps", type=int, default=None, help="timed steps (default 3 for width >= 0.5, else 5)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--write-docs", action="store_true", help="update the train_step region of the docs")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the Markdown file --write-docs updates")
    args = parser.parse_args(argv)
    try:
        args.widths = [float(w) for w in args.widths.split(",")]
    except ValueError:
        parser.error(f"--widths: expected comma-separated numbers, got {args.widths!r}")
    for name in ("size", "batch_size", "steps", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {value}")
    if args.size % 128:
        parser.error(f"--size must be a multiple of 128 (the generator's size_multiple), got {args.size}")
    return args


def main(argv: Sequence[str] | None = None) -> list[dict]:
    """Measure every width, print the Markdown tables, and optionally update the docs; returns the results."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    results = []
    for width in args.widths:
        steps = args.steps if args.steps is not None else default_steps(width)
        results.append(measure(width, args.size, args.batch_size, steps, args.critic_width))
        print(f"width {width:g}: {results[-1]['median_s']:.3f} s/step", file=sys.stderr, flush=True)
    text = markdown(results)
    print(text)
    if args.write_docs:
        write_docs(args.docs, text)
        print(f"updated the {REGION} region of {args.docs}")
    return results


if __name__ == "__main__":
    main()

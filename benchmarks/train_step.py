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

The step is the trainer's own (``lbam.training.step.train_step``), called with a timer that
measures each part: the trainer splits its backward passes where the terms share no graph, so the
generator's forward + backward, the VGG losses, the critic, the gradient penalty and the optimiser
steps each run in their own timed blocks. Each part is timed with ``time.perf_counter`` (CPU torch
ops are synchronous) and accumulated over the timed steps; "rest" is the step's wall time minus
the timed parts (Python, the timer itself).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor

from lbam.features.vgg import default_weights_path
from lbam.losses.inpainting import InpaintingLoss
from lbam.training.config import TrainConfig, load_train_config
from lbam.training.distributed import DistributedContext
from lbam.training.setup import _vgg
from lbam.training.state import TrainState, build_state
from lbam.training.step import StepSettings, step_generator, train_step

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_region import machine_description, update_region  # noqa: E402 (a sibling script, found by the line above)

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
REST = ("rest", "rest (Python, timers)")


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


def benchmark_config(
    width: float,
    size: int,
    batch_size: int,
    critic_width: float | None = None,
    feature_precision: str = "fp32",
) -> TrainConfig:
    """The packaged ``paper`` recipe at another generator width, crop size and batch size, on the CPU."""
    return load_train_config(
        "paper",
        [
            ("model.generator.width", width),
            ("model.critic_width", width if critic_width is None else critic_width),
            ("data.crop_size", size),
            ("data.load_size", None),
            ("train.batch_size", batch_size),
            ("train.device", "cpu"),
            ("losses.allow_random_vgg", True),
            ("losses.feature_precision", feature_precision),
        ],
    )


def build_step(config: TrainConfig) -> tuple[TrainState, StepSettings]:
    """The trainer's state and step settings on the CPU; VGG16 with random weights when the file is absent."""
    context = DistributedContext(device=torch.device("cpu"))
    state = build_state(config, context, use_amp=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the output says when VGG16 has random weights
        loss = InpaintingLoss(config.losses, _vgg(config, context.device))
    tied = config.model.upsampling == "resize_conv"
    return state, StepSettings(
        loss,
        context,
        config.optim.critic_steps,
        tied_upsampling=tied,
        penalty_every=config.optim.penalty_every,
    )


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


def measure(
    width: float,
    size: int,
    batch_size: int,
    steps: int,
    critic_width: float | None = None,
    precisions: Sequence[str] = ("fp32",),
) -> list[dict]:
    """One warm-up step each, then ``steps`` timed rounds: step times and part totals per precision.

    With several feature precisions, each round runs one step of every precision (interleaved), so
    a change in the machine's load touches all of them alike.
    """
    runs = []
    for precision in precisions:
        config = benchmark_config(width, size, batch_size, critic_width, precision)
        state, settings = build_step(config)
        runs.append((precision, config, state, settings, PartTimer(), []))
    image, known_mask = random_batch(batch_size, size, runs[0][1].train.seed)
    batch = {"image": image, "known_mask": known_mask}
    for _, config, state, settings, _, _ in runs:  # warm-up
        train_step(
            state, batch, settings, step_generator(config.train.seed, 0, 0, image.device), PartTimer().part
        )
    for step in range(1, steps + 1):
        for _, config, state, settings, timer, step_times in runs:
            random = step_generator(config.train.seed, step, 0, image.device)
            start = time.perf_counter()
            train_step(state, batch, settings, random, timer.part)
            step_times.append(time.perf_counter() - start)
    return [_summary(width, size, batch_size, steps, *run) for run in runs]


def _summary(
    width: float, size: int, batch_size: int, steps: int, precision: str, config: TrainConfig,
    state: TrainState, settings: StepSettings, timer: PartTimer, step_times: list[float],
) -> dict:  # fmt: skip
    total = sum(step_times)
    parts = dict(timer.seconds)
    parts[REST[0]] = total - sum(parts.values())
    return {
        "width": width,
        "precision": precision,
        "critic_width": config.model.critic_width,
        "size": size,
        "batch_size": batch_size,
        "steps": steps,
        "step_times": step_times,
        "median_s": statistics.median(step_times),
        "part_s": {name: seconds / steps for name, seconds in parts.items()},
        "share": {name: 100 * seconds / total for name, seconds in parts.items()},
        "generator_params": sum(p.numel() for p in state.generator.parameters()),
        "critic_params": sum(p.numel() for p in state.critic.parameters()),
    }


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
        "*feature precision* is `losses.feature_precision`: `bf16` runs the VGG16 under bfloat16 "
        "autocast, channels-last; rows of one width were measured interleaved, step by step, and "
        "*vs fp32* is the median over the fp32 row's median.",
        "",
        "| generator width | critic width | generator params | critic params | feature precision | batch "
        "| timed steps | s/step (median) | vs fp32 | min s/step | images/s |",
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        base = next(
            o for o in results if o["width"] == r["width"] and o["precision"] == results[0]["precision"]
        )
        lines.append(
            f"| {r['width']:g} | {r['critic_width']:g} | {r['generator_params'] / 1e6:.2f} M "
            f"| {r['critic_params'] / 1e6:.2f} M | {r['precision']} | {r['batch_size']} | {r['steps']} "
            f"| {r['median_s']:.3f} | {r['median_s'] / base['median_s']:.2f}x "
            f"| {min(r['step_times']):.3f} | {r['batch_size'] / r['median_s']:.2f} |"
        )
    header = "| part |" + "".join(
        f" width {r['width']:g} {r['precision']}: s/step | share |" for r in results
    )
    lines += ["", header, "|---|" + "---:|---:|" * len(results)]
    for key, label in (*PARTS, REST):
        cells = "".join(f" {r['part_s'][key]:.3f} | {r['share'][key]:.1f}% |" for r in results)
        lines.append(f"| {label} |{cells}")
    totals = "".join(f" {sum(r['part_s'].values()):.3f} | 100% |" for r in results)
    lines.append(f"| **whole step (mean)** |{totals}")
    return "\n".join(lines)


def write_docs(path: Path, text: str) -> None:
    """Put the tables in the ``train_step`` region of ``path`` with benchmarks/docs_region.py."""
    body = (
        "## Training step (CPU)\n\nMade by `python benchmarks/train_step.py --write-docs`; "
        "times depend on the machine and its load.\n\n" + text
    )
    update_region(path, REGION, body)


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
    parser.add_argument(
        "--precisions", default="fp32,bf16", help="losses.feature_precision settings, measured interleaved"
    )
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
        precisions = args.precisions.split(",")
        results += measure(width, args.size, args.batch_size, steps, args.critic_width, precisions)
        for r in results[-len(precisions) :]:
            print(
                f"width {width:g} {r['precision']}: {r['median_s']:.3f} s/step", file=sys.stderr, flush=True
            )
    text = markdown(results)
    print(text)
    if args.write_docs:
        write_docs(args.docs, text)
        print(f"updated the {REGION} region of {args.docs}")
    return results


if __name__ == "__main__":
    main()

"""The ablation's report: OUT/report.md, OUT/curves.png and OUT/contact_sheet.png.

report.md holds one row per run (generator, trainable parameters, training time, last validation),
``lbam evaluate``'s tables with the runs as rows, and, for a variant trained with several seeds,
the seed-to-seed spread of every metric: a difference between variants smaller than that spread is
not a finding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from lbam.ablation.variants import Variant
from lbam.evaluation.report import METRICS, format_tables
from lbam.imaging.png import write_png
from lbam.training.logs import read_metrics
from lbam.utils.files import atomic_write_text
from lbam.utils.machine import machine_description

CURVE_METRICS = ("val/psnr", "val/ssim")
COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (140, 86, 75))


def write_ablation_report(
    settings: Any, runs: Sequence[Variant], configs: dict, summary: dict, log: Callable[[str], None]
) -> Path:
    """Write the report files into ``settings.out``; returns the path of report.md."""
    out = Path(settings.out)
    histories = {run.label: read_metrics(out / "runs" / run.label / "metrics.jsonl") for run in runs}
    write_png(out / "curves.png", curves_figure(histories))
    write_png(out / "contact_sheet.png", stack_sheets(sorted((out / "eval").glob("grid_bin*.png"))))
    lines = _header(settings, summary) + _runs_table(runs, configs, histories)
    lines += ["## Evaluation", "", format_tables(summary)]
    lines += _spread_table(runs, summary)
    lines += [
        "## Validation curves",
        "",
        "![validation PSNR and SSIM against step](curves.png)",
        "",
        "## The same holes",
        "",
        "One pair per hole-ratio bin; columns: input, each run, ground truth.",
        "",
        "![contact sheet](contact_sheet.png)",
        "",
    ]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines))
    log(f"wrote {path}, curves.png and contact_sheet.png")
    return path


def _header(settings: Any, summary: dict) -> list[str]:
    versions = summary.get("versions", {})
    return [
        "# lbam ablate",
        "",
        f"- training photos `{settings.data}`; validation and evaluation photos `{settings.val_data}`",
        f"- recipe `{settings.config}`, {settings.steps} steps, width {settings.width:g}, "
        f"{settings.crop_size} px crops, seed {settings.seed}; extra: {settings.overrides or 'none'}",
        f"- evaluation: final weights, {summary['settings']['size']} px, up to {settings.pairs} pairs "
        f"per bin, masks `{summary['settings']['masks']}`",
        f"- machine: {machine_description()}; lbam {versions.get('lbam')}, torch {versions.get('torch')}",
        "",
    ]


def trainable_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def training_seconds(history: list[dict]) -> float:
    """Time in training steps, validation excluded: each log window's steps over its speed."""
    seconds, previous = 0.0, 0
    for record in history:
        speed = record.get("speed/steps_per_s")
        if speed:
            seconds += (record["step"] - previous) / speed
            previous = record["step"]
    return seconds


def _last(history: list[dict], key: str) -> float | None:
    values = [r[key] for r in history if r.get(key) is not None]
    return values[-1] if values else None


def _runs_table(runs: Sequence[Variant], configs: dict, histories: dict[str, list[dict]]) -> list[str]:
    from lbam.model.registry import build_generator

    lines = [
        "## Runs",
        "",
        "| run | generator | trainable parameters | steps | training time | last val PSNR | last val SSIM |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        model_config = configs[run].model
        with torch.device("meta"):  # the shapes are enough to count: nothing is allocated
            model = build_generator(model_config.architecture, **model_config.generator)
        history = histories[run.label]
        steps = max((r["step"] for r in history), default=0)
        psnr, ssim = _last(history, "val/psnr"), _last(history, "val/ssim")
        lines.append(
            f"| {run.label} | {run.spec.summary} | {trainable_parameters(model):,} | {steps} | "
            f"{training_seconds(history) / 60:.1f} min | "
            f"{'–' if psnr is None else f'{psnr:.2f} dB'} | {'–' if ssim is None else f'{ssim:.4f}'} |"
        )
    return [*lines, ""]


def seed_spread(runs: Sequence[Variant], summary: dict) -> dict[str, dict[str, float]]:
    """For each variant with several runs: the range (max - min) of each metric's all-pairs mean."""
    spread: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(run.name for run in runs):
        labels = [run.label for run in runs if run.name == name]
        if len(labels) < 2:
            continue
        spread[name] = {}
        for metric in summary["metrics"]:
            values = [summary["methods"][label]["bins"]["all"][metric] for label in labels]
            if all(v is not None for v in values):
                spread[name][metric] = max(values) - min(values)
    return spread


def _spread_table(runs: Sequence[Variant], summary: dict) -> list[str]:
    spread = seed_spread(runs, summary)
    if not spread:
        return ["No variant was trained with two seeds (add e.g. `pconv@1`): the spread is unknown.", ""]
    metrics = summary["metrics"]
    lines = [
        "## Seed-to-seed spread",
        "",
        "Range of the all-pairs mean over the seeds of one variant; differences between variants "
        "smaller than this are within the noise of training.",
        "",
        "| variant | " + " | ".join(METRICS[m][0] for m in metrics) + " |",
        "|---" * (len(metrics) + 1) + "|",
    ]
    for name, values in spread.items():
        cells = []
        for metric in metrics:
            scale, decimals = METRICS[metric][3], METRICS[metric][2]
            cells.append("–" if metric not in values else f"{values[metric] * scale:.{decimals}f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def stack_sheets(paths: Sequence[Path]) -> Image.Image:
    """The per-bin contact sheets of ``lbam evaluate``, one under the other."""
    images = [Image.open(p).convert("RGB") for p in paths]
    if not images:
        return Image.new("RGB", (256, 32), (255, 255, 255))
    width = max(i.width for i in images)
    sheet = Image.new("RGB", (width, sum(i.height for i in images)), (255, 255, 255))
    top = 0
    for image in images:
        sheet.paste(image, (0, top))
        top += image.height
    return sheet


def curves_figure(histories: dict[str, list[dict]], panel: tuple[int, int] = (480, 300)) -> Image.Image:
    """One line chart per validation metric (side by side), one coloured line per run, a legend."""
    panels = [_chart(histories, key, panel) for key in CURVE_METRICS]
    legend_h = 18 * len(histories) + 8
    figure = Image.new("RGB", (panel[0] * len(panels), panel[1] + legend_h), (255, 255, 255))
    for i, chart in enumerate(panels):
        figure.paste(chart, (i * panel[0], 0))
    draw, font = ImageDraw.Draw(figure), ImageFont.load_default()
    for i, label in enumerate(histories):
        y = panel[1] + 4 + 18 * i
        draw.line((60, y + 7, 90, y + 7), fill=COLOURS[i % len(COLOURS)], width=3)
        draw.text((96, y), label, fill=(0, 0, 0), font=font)
    return figure


def _chart(histories: dict[str, list[dict]], key: str, size: tuple[int, int]) -> Image.Image:
    width, height = size
    left, right, top, bottom = 56, 12, 22, 28
    image = Image.new("RGB", size, (255, 255, 255))
    draw, font = ImageDraw.Draw(image), ImageFont.load_default()
    series = {
        label: [(r["step"], r[key]) for r in history if r.get(key) is not None]
        for label, history in histories.items()
    }
    points = [p for values in series.values() for p in values]
    draw.text((left, 4), key, fill=(0, 0, 0), font=font)
    draw.rectangle((left, top, width - right, height - bottom), outline=(0, 0, 0))
    if not points:
        return image
    xs, ys = np.array([p[0] for p in points], float), np.array([p[1] for p in points], float)
    x0, x1 = 0.0, max(xs.max(), 1.0)
    y0, y1 = ys.min(), ys.max()
    y0, y1 = (y0 - 0.5, y1 + 0.5) if y1 - y0 < 1e-9 else (y0 - 0.05 * (y1 - y0), y1 + 0.05 * (y1 - y0))

    def place(x: float, y: float) -> tuple[float, float]:
        return (
            left + (x - x0) / (x1 - x0) * (width - left - right),
            height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom),
        )

    for value in np.linspace(y0, y1, 5):
        _, y = place(x0, value)
        draw.text((4, y - 6), f"{value:.3g}", fill=(80, 80, 80), font=font)
    for value in np.linspace(x0, x1, 5):
        x, _ = place(value, y0)
        draw.text((x - 10, height - bottom + 6), f"{value:.0f}", fill=(80, 80, 80), font=font)
    for i, values in enumerate(series.values()):
        line = [place(x, y) for x, y in values]
        if len(line) > 1:
            draw.line(line, fill=COLOURS[i % len(COLOURS)], width=2)
        for x, y in line:
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=COLOURS[i % len(COLOURS)])
    return image

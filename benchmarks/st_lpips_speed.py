"""ST-LPIPS speed: the distance as ``lbam evaluate`` computes it, against its former layout.

``lbam evaluate`` spends most of its time in ST-LPIPS (AlexNet at full resolution: its first conv
runs at stride 1, 5 GFLOP per 256 px image). It now runs both images through the trunk as one
channels-last batch; before, each went through on its own in NCHW. Both are timed here,
interleaved in one run (median of ``--repeats``), with their results compared:

    python benchmarks/st_lpips_speed.py [--size 256] [--repeats 9]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor

from lbam.features.stlpips import _EPS, STLPIPS, load_st_lpips


def separate_nchw(metric: STLPIPS) -> Callable[[Tensor, Tensor], Tensor]:
    """The former layout: one NCHW trunk call per image, same maths as ``STLPIPS.forward``."""
    trunk = copy.deepcopy(metric.trunk).to(memory_format=torch.contiguous_format)

    def distance(x: Tensor, y: Tensor) -> Tensor:
        total = x.new_zeros(x.shape[0])
        for i, (fx, fy) in enumerate(zip(trunk(x), trunk(y), strict=True)):
            fx = fx / (fx.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)
            fy = fy / (fy.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)
            total = total + ((fx - fy) ** 2 * getattr(metric, f"linear{i}")).sum(dim=1).mean(dim=(1, 2))
        return total

    return distance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="square image side")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    metric = load_st_lpips()
    ways = {"one channels-last batch (now)": metric, "two NCHW calls (before)": separate_nchw(metric)}
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, args.size, args.size, generator=generator)
    y = (x + 0.1 * torch.randn(x.shape, generator=generator)).clamp(0, 1)
    times: dict[str, list[float]] = {name: [] for name in ways}
    values = {}
    with torch.inference_mode():
        for name, way in ways.items():
            values[name] = float(way(x, y)[0])  # warm-up, and the value
        for _ in range(args.repeats):
            for name, way in ways.items():
                start = time.perf_counter()
                way(x, y)
                times[name].append(time.perf_counter() - start)
    print(
        f"ST-LPIPS-Alex, one {args.size} px pair, {torch.get_num_threads()} threads, median of {args.repeats}"
    )
    print("| layout | ms per pair | value |\n|---|---:|---:|")
    for name in ways:
        print(f"| {name} | {1000 * statistics.median(times[name]):.0f} | {values[name]:.7f} |")
    medians = [statistics.median(times[name]) for name in ways]
    print(
        f"speed-up: {medians[1] / medians[0]:.2f}x; values differ by {abs(float.__sub__(*values.values())):.1e}"
    )


if __name__ == "__main__":
    main()

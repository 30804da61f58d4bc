"""Generator inference on this machine: latency, peak memory, FLOPs, and FLOP/s against the matmul ceiling.

Each (width, size) runs in a fresh subprocess so that its peak resident memory is its own.

    python benchmarks/inference.py                 # prints the table
    python benchmarks/inference.py --write-docs    # also updates docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from lbam.model.lbam import LBAMGenerator

ROOT = Path(__file__).resolve().parent.parent


def matmul_ceiling(n: int = 2048, repeats: int = 10) -> float:
    """Best FLOP/s of an n x n float32 matrix product: what this CPU can do at best."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def count_flops(model: torch.nn.Module, image: torch.Tensor, known: torch.Tensor) -> int:
    """Multiply-adds x 2 of convolutions and matrix products, as torch's FLOP counter counts them."""
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(image, known)
    return counter.get_total_flops()


def measure_one(width: float, size: int, repeats: int) -> dict:
    """Run in a subprocess: latency of `repeats` runs after warm-up, peak RSS, FLOPs."""
    torch.manual_seed(0)
    model = LBAMGenerator(width=width).eval()
    image = torch.rand(1, 3, size, size)
    known = (torch.rand(1, 1, size, size) > 0.25).float()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    flops = count_flops(model, image, known)
    times = []
    with torch.inference_mode():
        model(image, known)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            model(image, known)
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "width": width,
        "size": size,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "flops": flops,
        "peak_rss_mib": peak / 1024,
        "forward_extra_mib": max(0, peak - rss_before) / 1024,
        "params": sum(p.numel() for p in model.parameters()),
    }


def run_all(widths: list[float], sizes: list[int], repeats: int) -> tuple[list[dict], float]:
    rows = []
    for width in widths:
        for size in sizes:
            command = [sys.executable, __file__, "--one", str(width), str(size), "--repeats", str(repeats)]
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            print(f"width {width:g} {size}px: {rows[-1]['median_s']:.3f} s", file=sys.stderr)
    return rows, matmul_ceiling()


def table(rows: list[dict], ceiling: float) -> str:
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}. Matrix-multiply ceiling (2048x2048 float32): **{ceiling / 1e9:.1f} GFLOP/s**.",
        "Batch 1, float32, `torch.inference_mode`; latency is the median of the timed runs after one warm-up run. "
        "FLOPs count convolutions only (2 per multiply-add; element-wise work is not counted). "
        "Peak RSS is the whole process; *forward adds* is the growth of the peak over the loaded model and inputs.",
        "",
        "| width | params | size | GFLOPs | median latency (s) | achieved GFLOP/s | % of ceiling | peak RSS (MiB) | forward adds (MiB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        achieved = r["flops"] / r["median_s"]
        lines.append(
            f"| {r['width']:g} | {r['params'] / 1e6:.1f} M | {r['size']} | {r['flops'] / 1e9:.1f} | "
            f"{r['median_s']:.3f} | {achieved / 1e9:.1f} | {100 * achieved / ceiling:.0f}% | "
            f"{r['peak_rss_mib']:.0f} | {r['forward_extra_mib']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="1.0,0.25")
    parser.add_argument("--sizes", default="256,512,1024")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--write-docs", action="store_true", help="update the inference section of docs/benchmarks.md"
    )
    parser.add_argument("--one", nargs=2, metavar=("WIDTH", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(float(args.one[0]), int(args.one[1]), args.repeats)))
        return
    widths = [float(w) for w in args.widths.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    rows, ceiling = run_all(widths, sizes, args.repeats)
    text = table(rows, ceiling)
    print(text)
    if args.write_docs:
        sys.path.insert(0, str(Path(__file__).parent))
        from docs_region import update_region

        body = (
            "## Generator inference (CPU)\n\nMade by `python benchmarks/inference.py --write-docs`.\n\n"
            + text
        )
        update_region(ROOT / "docs" / "benchmarks.md", "inference", body)


if __name__ == "__main__":
    main()

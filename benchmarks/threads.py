"""Threads and OpenMP's wait policy for the model pass, on a quiet and on a loaded machine.

    python benchmarks/threads.py                 # prints the table
    python benchmarks/threads.py --write-docs    # also the threads region of docs/benchmarks.md

Each cell is a fresh Python process (``OMP_WAIT_POLICY`` only counts if it is set before torch
loads OpenMP) that runs the generator on a 512x512 input: one warm-up call, then the median of
``--repeats`` calls. Cells: torch threads 1 and the CPU count, wait policy ACTIVE (OpenMP's
threads spin between parallel regions) and PASSIVE (they sleep), each with the machine quiet and
with two kinds of load beside it: *spin*, one busy Python process per CPU (a loop that never
sleeps: any other job), and *torch*, a second torch process with its default threads and wait
policy running convolutions without pause (a training run, or a second ``lbam inpaint``). Models: the LBAM architecture at width 1 (random
weights; the time does not depend on them) and the packaged ``lbam-compact``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from docs_region import write_benchmark_section  # noqa: E402  (a script beside this one)

CHILD = """
import json, statistics, sys, time
import torch
from lbam.model.lbam import LBAMGenerator
from lbam.model.loading import load_model
torch.set_num_threads(int(sys.argv[2]))
torch.manual_seed(0)
model = (LBAMGenerator(width=1.0) if sys.argv[1] == "width 1" else load_model(sys.argv[1])).eval()
image = torch.rand(1, 3, 512, 512)
known = (torch.rand(1, 1, 512, 512) > 0.2).float()
times = []
with torch.inference_mode():
    model(image, known)
    for _ in range(int(sys.argv[3])):
        start = time.perf_counter()
        model(image, known)
        times.append(time.perf_counter() - start)
print(json.dumps(statistics.median(times)))
"""
SPIN = "while True:\n    pass\n"
TORCH_LOAD = """
import torch
conv = torch.nn.Conv2d(64, 64, 3, padding=1)
x = torch.rand(4, 64, 128, 128)
with torch.inference_mode():
    while True:
        conv(x)
"""
LOADS = ("quiet", "spin", "torch")


@contextmanager
def load(kind: str) -> Iterator[None]:
    """Run the block with the machine ``quiet``, or beside the ``spin`` or ``torch`` load (module doc)."""
    workers = []
    if kind == "spin":
        workers = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(os.cpu_count() or 1)]
    elif kind == "torch":
        env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
        workers = [subprocess.Popen([sys.executable, "-c", TORCH_LOAD], env=env)]
    try:
        time.sleep(2 if workers else 0)  # the load is running before the first measurement
        yield
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()


def measure(model: str, threads: int, policy: str, repeats: int) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    command = [sys.executable, "-c", CHILD, model, str(threads), str(repeats)]
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env, timeout=1800)
    return float(result.stdout.strip().splitlines()[-1])


def run(models: list[str], repeats: int) -> list[dict]:
    cpus = os.cpu_count() or 1
    rows = []
    for model in models:
        for kind in LOADS:
            with load(kind):
                for threads in sorted({1, cpus}):
                    for policy in ("ACTIVE", "PASSIVE"):
                        seconds = measure(model, threads, policy, repeats)
                        rows.append(
                            {
                                "model": model,
                                "load": kind,
                                "threads": threads,
                                "policy": policy,
                                "s": seconds,
                            }
                        )
                        print(rows[-1], file=sys.stderr)
    return rows


def table(rows: list[dict], repeats: int) -> str:
    lines = [
        f"CPUs: {os.cpu_count()}. Median of {repeats} calls at 512x512 after a warm-up; the loads are "
        "in the script's docstring. *vs best* is the cell's time over the best cell of the same model "
        "and load.",
        "",
        "| model | machine | torch threads | OMP_WAIT_POLICY | median (s) | vs best |",
        "|---|---|---:|---|---:|---:|",
    ]
    for r in rows:
        same = [o["s"] for o in rows if o["model"] == r["model"] and o["load"] == r["load"]]
        lines.append(
            f"| {r['model']} | {r['load']} | {r['threads']} | {r['policy']} | "
            f"{r['s']:.3f} | {r['s'] / min(same):.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="width 1,lbam-compact")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    rows = run(args.models.split(","), args.repeats)
    text = table(rows, args.repeats)
    print(text)
    if args.write_docs:
        made_by = "python benchmarks/threads.py --write-docs"
        write_benchmark_section(
            "threads",
            "Threads and OpenMP wait policy (CPU)",
            made_by,
            "the protocol is in the script's docstring.\n\n" + text,
        )


if __name__ == "__main__":
    main()

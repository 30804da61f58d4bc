"""Generator inference on this machine: latency, peak memory, FLOPs, and FLOP/s against the compute ceiling.

Each (width, size) runs in a fresh subprocess so that its peak resident memory is its own.

    python benchmarks/inference.py                 # prints the table
    python benchmarks/inference.py --write-docs    # also updates docs/benchmarks.md
    python benchmarks/inference.py --modes [--write-docs]   # eager, bf16, compiled fp32 and bf16
    python benchmarks/inference.py --backends [--write-docs]   # eager, inductor, ONNX Runtime, OpenVINO
    python benchmarks/inference.py --profile lbam-compact 512  # where the time goes, per operator

``--backends`` runs every engine of ``lbam.inference.backends`` (what ``--backend auto`` chooses
from) through its own measuring code, for each model and size in a fresh process with an empty
cache and again with the filled one (first-use costs cold and warm).

``--modes`` compares the ways ``lbam.optimize`` runs a generator, measured interleaved in one
process (each timed round runs every mode once, so a change in the machine's load touches all
alike): eager float32 (the reference), eager bfloat16, compiled float32 and compiled bfloat16
(inductor with frozen weights); where the CPU has no native bfloat16, only float32's two modes run
and the table goes to a region of its own. The input is a real photo (Kodak's kodim05, centre crop resized
to the size) with a seeded LaMa-thick hole. Accuracy is against eager float32: the max abs
difference for compiled float32, the PSNR of the output for bfloat16. Compile time is the first
call with an empty inductor cache (*cold*, a fresh folder) and again in a new process that finds
the cache filled (*warm*). Models: the LBAM architecture at width 1 with random weights (the
authors' file is not on this machine; the time does not depend on the weights, the bf16 PSNR
does) and the packaged ``lbam-compact``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from lbam.model.lbam import LBAMGenerator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_region import machine_description  # noqa: E402 (a sibling script, found by the line above)

ROOT = Path(__file__).resolve().parent.parent
KODAK = ROOT.parent / "shared" / "data" / "eval" / "kodak24" / "kodim05.png"
MODES = ("eager fp32", "eager bf16", "compiled fp32", "compiled bf16")


def matmul_ceiling(n: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """Best FLOP/s of an n x n matrix product in ``dtype``."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return 2 * n**3 / best_seconds(lambda: a @ b, repeats)


def conv_ceiling(
    channels: int = 512, side: int = 64, repeats: int = 10, dtype: torch.dtype = torch.float32
) -> float:
    """Best FLOP/s of a 3x3 convolution (channels in and out, side x side, channels-last) in ``dtype``."""
    layout = torch.channels_last
    x = torch.randn(1, channels, side, side, dtype=dtype).contiguous(memory_format=layout)
    w = torch.randn(channels, channels, 3, 3, dtype=dtype).contiguous(memory_format=layout)
    with torch.inference_mode():
        seconds = best_seconds(lambda: torch.nn.functional.conv2d(x, w, padding=1), repeats)
    return 2 * channels * channels * 9 * side * side / seconds


def compute_ceiling(dtype: torch.dtype = torch.float32) -> float:
    """What this CPU can do at best in ``dtype``: the faster of a large matrix product and a large
    convolution. On an AMD EPYC, torch's float32 matrix product reached 231 GFLOP/s and
    oneDNN's convolution 556, so the matrix product alone put the model above "100 %"."""
    return max(matmul_ceiling(dtype=dtype), conv_ceiling(dtype=dtype))


def best_seconds(run, repeats: int) -> float:
    for _ in range(3):
        run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


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
    return rows, compute_ceiling()


def table(rows: list[dict], ceiling: float) -> str:
    lines = [
        f"Machine: {machine_description()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}. Float32 ceiling (the faster of a 2048x2048 matrix product and a 3x3 "
        f"convolution of 512 channels at 64x64): **{ceiling / 1e9:.1f} GFLOP/s**.",
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


def photo_and_mask(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """kodim05's centre square resized to ``size`` (1, 3, S, S) in [0, 1], a LaMa-thick known mask."""
    from PIL import Image

    from lbam.data.masks.strokes import lama_thick

    with Image.open(KODAK) as photo:
        side = min(photo.size)
        left, top = (photo.width - side) // 2, (photo.height - side) // 2
        square = photo.convert("RGB").crop((left, top, left + side, top + side))
        pixels = np.asarray(square.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    known = lama_thick()((size, size), np.random.default_rng(0))
    return torch.from_numpy(pixels).permute(2, 0, 1)[None], torch.from_numpy(known)[None, None]


def bf16_native() -> bool:
    """Whether this CPU computes bfloat16 natively; where not, lbam.optimize runs float32."""
    from lbam.utils.device import bf16_supported

    return bf16_supported(torch.device("cpu"))


def build_modes(model: torch.nn.Module, image: torch.Tensor, known: torch.Tensor) -> tuple[dict, dict]:
    """The runners (the four modes; float32's two where bfloat16 is not native), and each compiled
    one's first-call seconds (the compile)."""
    from lbam.inference.optimize import optimize

    native = bf16_native()
    runners = {"eager fp32": model}
    if native:
        runners["eager bf16"] = optimize(model, "bf16", compile=False)
    compile_s = {}
    for name, precision in (("compiled fp32", "fp32"), ("compiled bf16", "bf16"))[: 2 if native else 1]:
        runner = optimize(model, precision, compile=True)
        start = time.perf_counter()
        runner(image, known)
        compile_s[name] = time.perf_counter() - start
        runners[name] = runner
    return runners, compile_s


def measure_modes(model_name: str, size: int, repeats: int) -> dict:
    """Run in a subprocess (TORCHINDUCTOR_CACHE_DIR set by the parent): see the module doc."""
    from lbam.model.loading import load_model

    torch.manual_seed(0)
    model = LBAMGenerator(width=1.0) if model_name == "width 1" else load_model(model_name)
    model.eval()
    image, known = photo_and_mask(size)
    runners, compile_s = build_modes(model, image, known)
    with torch.inference_mode():
        outputs = {name: runner(image, known).float() for name, runner in runners.items()}
        times: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(repeats):
            for name, runner in runners.items():
                start = time.perf_counter()
                runner(image, known)
                times[name].append(time.perf_counter() - start)
    reference = outputs["eager fp32"]
    errors = {}
    for name, output in outputs.items():
        if "fp32" in name:
            errors[name] = f"max abs {(output - reference).abs().max().item():.1e}"
        else:
            mse = (output.clamp(0, 1) - reference.clamp(0, 1)).pow(2).mean().item()
            errors[name] = f"PSNR {10 * math.log10(1 / max(mse, 1e-20)):.1f} dB"
    return {
        "model": model_name,
        "size": size,
        "flops": count_flops(model, image, known),
        "median_s": {name: statistics.median(values) for name, values in times.items()},
        "compile_s": compile_s,
        "error": errors,
    }


def cold_then_warm(flag: str, model_name: str, size: int, repeats: int) -> tuple[dict, dict]:
    """``--FLAG model size`` twice in fresh processes sharing one empty cache folder (the lbam cache
    with its ONNX files and inductor's): the first finds it empty (*cold*), the second filled
    (*warm*, one round, there for its first-use times)."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="lbam-home-") as home:
        env = {**os.environ, "LBAM_HOME": home, "TORCHINDUCTOR_CACHE_DIR": f"{home}/inductor"}
        for run_repeats in (repeats, 1):
            command = [sys.executable, __file__, flag, model_name, str(size), "--repeats", str(run_repeats)]
            result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
            runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return runs[0], runs[1]


def run_modes(models: list[str], sizes: list[int], repeats: int) -> list[dict]:
    """Each (model, size) twice in fresh processes: an empty inductor cache, then the filled one."""
    rows = []
    for model_name in models:
        for size in sizes:
            row, warm = cold_then_warm("--modes-one", model_name, size, repeats)
            row["warm_compile_s"] = warm["compile_s"]
            rows.append(row)
            print(f"{model_name} {size}px: {row['median_s']}", file=sys.stderr)
    return rows


def cell(value: float | None, digits: int = 1, suffix: str = "") -> str:
    """A table cell: the number with ``digits`` decimals, or empty where there is none."""
    return "" if value is None else f"{value:.{digits}f}{suffix}"


def modes_table(rows: list[dict], ceilings: dict[str, float], repeats: int) -> str:
    bf16 = (
        f"bfloat16 **{ceilings['bf16'] / 1e9:.1f} GFLOP/s**"
        if "bf16" in ceilings
        else "bfloat16 is not native here, so its modes are left out (lbam.optimize runs float32)"
    )
    lines = [
        f"Machine: {machine_description()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}. Ceilings (the faster of a 2048x2048 matrix product and a 3x3 "
        f"convolution of 512 channels at 64x64): float32 "
        f"**{ceilings['fp32'] / 1e9:.1f} GFLOP/s**, {bf16}. "
        f"Latency: median of {repeats} interleaved rounds after the compile and one more call; *ratio* is "
        "the mode's median over eager float32's median in the same rounds. GFLOP/s counts the "
        "convolutions only; % of ceiling is against the ceiling of the mode's precision.",
        "",
        "| model | size | mode | median (s) | ratio to eager fp32 | achieved GFLOP/s | % of ceiling "
        "| against eager fp32 | compile cold (s) | compile warm (s) |",
        "|---|---:|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        eager = r["median_s"]["eager fp32"]
        for mode in (m for m in MODES if m in r["median_s"]):
            median = r["median_s"][mode]
            achieved = r["flops"] / median
            ceiling = ceilings["bf16" if "bf16" in mode else "fp32"]
            cold = r["compile_s"].get(mode)
            warm = r["warm_compile_s"].get(mode)
            lines.append(
                f"| {r['model']} | {r['size']} | {mode} | {median:.4f} | {median / eager:.2f}x | "
                f"{achieved / 1e9:.1f} | {100 * achieved / ceiling:.0f}% | "
                f"{'(reference)' if mode == 'eager fp32' else r['error'][mode]} | "
                f"{cell(cold)} | {cell(warm)} |"
            )
    return "\n".join(lines)


def main_modes(args: argparse.Namespace) -> None:
    models = args.models.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = run_modes(models, sizes, args.repeats)
    ceilings = {"fp32": compute_ceiling()}
    if bf16_native():
        ceilings["bf16"] = compute_ceiling(torch.bfloat16)
    text = modes_table(rows, ceilings, args.repeats)
    print(text)
    if args.write_docs:
        from docs_region import write_benchmark_section

        made_by = "python benchmarks/inference.py --modes --write-docs"
        # One region per kind of CPU, so a run on one kind keeps the other's table.
        if "bf16" in ceilings:
            region, title = "inference_modes", "lbam.optimize: eager, bf16 and compiled (CPU)"
        else:
            region, title = "inference_modes_fp32", "lbam.optimize on a CPU without native bfloat16"
        write_benchmark_section(
            region, title, made_by, "the protocol is in the script's docstring.\n\n" + text
        )


def measure_backends(model_name: str, size: int, repeats: int) -> dict:
    """Run in a subprocess (LBAM_HOME set by the parent): every backend that can run here, timed
    interleaved with eager by ``lbam.inference.backends`` itself (the same code ``auto`` uses)."""
    from lbam.inference.backends import BackendGenerator
    from lbam.model.loading import load_model

    torch.manual_seed(0)
    model = LBAMGenerator(width=1.0) if model_name == "width 1" else load_model(model_name)
    generator = BackendGenerator(model.eval(), "auto", bf16=True)
    verdict = generator.measure((size, size), rounds=repeats)
    return {"model": model_name, "size": size, "names": generator.names, **verdict.__dict__}


def run_backends(models: list[str], sizes: list[int], repeats: int) -> list[dict]:
    """Each (model, size) twice in fresh processes: an empty cache (ONNX files, inductor's), then
    the filled one, whose first-use times are the *warm* ones."""
    rows = []
    for model_name in models:
        for size in sizes:
            row, warm = cold_then_warm("--backends-one", model_name, size, repeats)
            row["warm_first_use"] = warm["first_use"]
            rows.append(row)
            print(f"{model_name} {size}px: {row['seconds']} -> {row['backend']}", file=sys.stderr)
    return rows


def backends_table(rows: list[dict], repeats: int) -> str:
    lines = [
        f"Machine: {machine_description()}, {torch.get_num_threads()} torch threads, torch "
        f"{torch.__version__}. Median of {repeats} interleaved rounds (each round runs every backend "
        "once); *ratio* is the backend's median over eager float32's in the same rounds. First use: "
        "export or compile plus the first call, with empty caches (*cold*) and in a new process that "
        "finds them filled (*warm*). *Chosen* is what `--backend auto` takes: the fastest within "
        "tolerance (max abs 1e-5 for float32, 50 dB for bfloat16), never one slower than eager.",
        "",
        "| model | size | backend | median (s) | ratio to eager | against eager fp32 | first use cold (s) "
        "| first use warm (s) | chosen |",
        "|---|---:|---|---:|---:|---|---:|---:|:---:|",
    ]
    for r in rows:
        eager = r["seconds"]["eager"]
        for name in r["names"]:
            median = r["seconds"].get(name)
            cold, warm = r["first_use"].get(name), r["warm_first_use"].get(name)
            lines.append(
                f"| {r['model']} | {r['size']} | {name} | {cell(median, 4)} | "
                f"{cell(None if median is None else median / eager, 2, 'x')} | "
                f"{r['errors'].get(name, '(reference)')} | {cell(cold)} | {cell(warm)} | "
                f"{'yes' if name == r['backend'] else ''} |"
            )
    return "\n".join(lines)


def main_backends(args: argparse.Namespace) -> None:
    models, sizes = args.models.split(","), [int(s) for s in args.sizes.split(",")]
    text = backends_table(run_backends(models, sizes, args.repeats), args.repeats)
    print(text)
    if args.write_docs:
        from docs_region import write_benchmark_section

        flags = "AVX-512" if "AVX-512" in machine_description() else "AVX2"
        write_benchmark_section(
            f"inference_backends_{flags.lower().replace('-', '')}",
            f"Backends on a CPU with {flags} (eager, inductor, ONNX Runtime, OpenVINO, bfloat16)",
            "python benchmarks/inference.py --backends --write-docs",
            "the protocol is in `lbam.inference.backends` and the script's docstring.\n\n" + text,
        )


def profile_ops(model_name: str, size: int, repeats: int) -> str:
    """Where the time goes, per operator type: torch's profiler for eager float32 (and bfloat16
    where native), ONNX Runtime's own profile for its graph; the share of each run's total."""
    import onnxruntime as ort

    from lbam.inference.backends import onnx_path, probe_inputs
    from lbam.model.loading import load_model

    torch.manual_seed(0)
    model = (LBAMGenerator(width=1.0) if model_name == "width 1" else load_model(model_name)).eval()
    image, known = probe_inputs(size, size, torch.device("cpu"))
    shares = {"eager fp32": _torch_shares(model, image, known, repeats)}
    if bf16_native():
        shares["eager bf16"] = _torch_shares(
            model.to(torch.bfloat16), image.bfloat16(), known.bfloat16(), repeats
        )
        model.float()
    options = ort.SessionOptions()
    options.enable_profiling, options.intra_op_num_threads = True, torch.get_num_threads()
    options.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="lbam-ort-")) / "profile")
    session = ort.InferenceSession(str(onnx_path(model)), options, providers=["CPUExecutionProvider"])
    for _ in range(repeats):
        session.run(None, {"image": image.numpy(), "known_mask": known.numpy()})
    events = json.loads(Path(session.end_profiling()).read_text())
    spent: dict[str, float] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            spent[event["args"]["op_name"]] = spent.get(event["args"]["op_name"], 0) + event["dur"]
    shares["onnxruntime"] = {op: us / sum(spent.values()) for op, us in spent.items()}
    lines = [f"{model_name}, {size} px, {machine_description()}: share of operator time"]
    for backend, ops in shares.items():
        top = sorted(ops.items(), key=lambda item: -item[1])[:6]
        lines.append(f"- {backend}: " + ", ".join(f"{op} {100 * share:.0f}%" for op, share in top))
    return "\n".join(lines)


def _torch_shares(model: torch.nn.Module, image: torch.Tensor, known: torch.Tensor, repeats: int) -> dict:
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        model(image, known)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(repeats):
                model(image, known)
    spent = {e.key: e.self_cpu_time_total for e in prof.key_averages() if e.self_cpu_time_total > 0}
    return {op: us / sum(spent.values()) for op, us in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="1.0,0.25")
    parser.add_argument("--sizes", default="256,512,1024")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--write-docs", action="store_true", help="update the inference section of docs/benchmarks.md"
    )
    parser.add_argument("--modes", action="store_true", help="compare lbam.optimize's modes (module doc)")
    parser.add_argument("--models", default="width 1,lbam-compact", help="with --modes: models to compare")
    parser.add_argument("--one", nargs=2, metavar=("WIDTH", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--modes-one", nargs=2, metavar=("MODEL", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--backends", action="store_true", help="compare the backends of --backend auto")
    parser.add_argument("--backends-one", nargs=2, metavar=("MODEL", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--profile", nargs=2, metavar=("MODEL", "SIZE"), help="time per operator type")
    args = parser.parse_args()
    if args.profile:
        print(profile_ops(args.profile[0], int(args.profile[1]), args.repeats))
        return
    if args.backends_one:
        print(json.dumps(measure_backends(args.backends_one[0], int(args.backends_one[1]), args.repeats)))
        return
    if args.backends:
        main_backends(args)
        return
    if args.modes_one:
        print(json.dumps(measure_modes(args.modes_one[0], int(args.modes_one[1]), args.repeats)))
        return
    if args.modes:
        if args.sizes == parser.get_default("sizes"):
            args.sizes = "256,512"
        main_modes(args)
        return
    if args.one:
        print(json.dumps(measure_one(float(args.one[0]), int(args.one[1]), args.repeats)))
        return
    widths = [float(w) for w in args.widths.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    rows, ceiling = run_all(widths, sizes, args.repeats)
    text = table(rows, ceiling)
    print(text)
    if args.write_docs:
        from docs_region import update_region

        body = (
            "## Generator inference (CPU)\n\nMade by `python benchmarks/inference.py --write-docs`.\n\n"
            + text
        )
        update_region(ROOT / "docs" / "benchmarks.md", "inference", body)


if __name__ == "__main__":
    main()

"""`lbam models`: every model a name resolves to, and where to get the ones that are missing."""

from __future__ import annotations

import argparse
import json

from lbam.cli.runtime import add_device_argument
from lbam.defaults import DEFAULT_MODEL
from lbam.errors import LbamError

HELP = "list the models lbam can use by name; --bench: time the backends that can run one here"
BENCH_SIZES = (256, 512, 1024)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--bench",
        action="store_true",
        help="measure every backend that can run --model on this machine (eager, inductor, "
        "onnxruntime, openvino, bfloat16 ones where native) at --sizes, print the table and keep "
        "the verdicts that --backend auto then uses",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, metavar="FILE|NAME", help="the model --bench runs")
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, BENCH_SIZES)),
        metavar="N,N",
        help="square input sides for --bench",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32"),
        default="auto",
        help="auto: bfloat16 backends too where the CPU has it natively (default: auto)",
    )
    add_device_argument(parser, "cpu")


def run(args: argparse.Namespace) -> int:
    from lbam.model.catalog import cache_dir, list_models

    if args.bench:
        return bench(args)
    entries = list_models()
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    print(
        f"{'name':<16} {'source':<14} {'size':>8} {'params':>9} {'architecture':<13} {'width':>6} "
        f"{'trained':>8} {'stored':>6}  file"
    )
    for e in entries:
        if e["file"] is None:
            print(f"{e['name']:<16} {e['source']:<14}  get {e['get']}")
            continue
        settings = e.get("settings") or {}
        params = f"{e['parameters'] / 1e6:.1f} M" if e.get("parameters") else "?"
        width = f"{settings['width']:g}" if isinstance(settings.get("width"), int | float) else "?"
        kind = " ".join(str(v) for v in (e.get("architecture"), settings.get("variant")) if v)
        print(
            f"{e['name']:<16} {e['source']:<14} {e['size_mb']:>6.1f} MB {params:>9} {kind:<13} {width:>6} "
            f"{e.get('train_size', '?'):>5} px {e.get('precision', '?'):>6}  {e['file']}"
        )
    print(f"cache folder: {cache_dir()} (put <name>.safetensors or <name>.pth there to use it by name)")
    return 0


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or any(not 128 <= size <= 8192 for size in sizes):
        raise LbamError(
            f"--sizes must be whole numbers of pixels from 128 to 8192, e.g. 256,512, got {text!r}"
        )
    return sizes


def bench(args: argparse.Namespace) -> int:
    """``lbam models --bench``: one table per size, each backend's time as a ratio to eager's."""
    from lbam.inference.backends import BackendGenerator, machine_key, verdicts_path
    from lbam.inference.pipeline import get_model
    from lbam.utils.device import resolve_device

    sizes = _sizes(args.sizes)
    device = resolve_device(args.device)
    generator = BackendGenerator(get_model(args.model, device), "auto", bf16=args.precision != "fp32")
    print(f"{args.model} on {machine_key(device)}")
    for size in sizes:
        multiple = generator.size_multiple
        side = max(multiple, -(-size // multiple) * multiple)
        verdict = generator.measure((side, side))
        print(f"\n{side}x{side}: chosen {verdict.backend}")
        print(f"  {'backend':<14} {'seconds':>8} {'vs eager':>9} {'first use':>10}  accuracy")
        eager = verdict.seconds["eager"]
        for name in generator.names:
            seconds = verdict.seconds.get(name)
            timing = f"{seconds:>8.4f} {seconds / eager:>8.2f}x" if seconds else f"{'-':>8} {'-':>9}"
            first = verdict.first_use.get(name)
            first_use = f"{first:>9.1f}s" if first is not None else f"{'-':>10}"
            print(f"  {name:<14} {timing} {first_use}  {verdict.errors.get(name, 'reference')}")
    print(f"\nverdicts kept for --backend auto in {verdicts_path()}")
    return 0

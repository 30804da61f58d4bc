"""`lbam demo`: inpaint the bundled photo with the packaged model and compare with OpenCV's methods."""

from __future__ import annotations

import argparse
from pathlib import Path

from lbam.cli.runtime import add_device_argument, add_model_argument

HELP = "inpaint a bundled photo, write a side-by-side picture and compare with Telea and Navier-Stokes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        default=Path("lbam_demo.png"),
        help="picture to write (PNG; default: lbam_demo.png in the current folder)",
    )
    add_model_argument(parser, default=None)
    add_device_argument(parser)


def run(args: argparse.Namespace) -> int:
    import time

    from lbam.demo import run_demo

    start = time.perf_counter()
    scores = run_demo(args.out, model=args.model, device=args.device)
    width = max(len(name) for name in scores)
    print(f"{'method':<{width}}  PSNR (dB)   SSIM")
    for name, (psnr, ssim) in scores.items():
        print(f"{name:<{width}}  {psnr:9.2f}  {ssim:.4f}")
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s")
    return 0

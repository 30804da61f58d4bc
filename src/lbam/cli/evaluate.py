"""`lbam evaluate`: compare inpainting methods on a fixed, seeded protocol with tables and pictures."""

from __future__ import annotations

import argparse
from pathlib import Path

from lbam.cli.runtime import add_device_argument, settings_from_args

HELP = "compare inpainting methods (PSNR, SSIM, L1 per hole-ratio bin) with tables and contact sheets"

EPILOG = """\
protocol:
  Image and mask files are chosen by extension and sorted by path. Masks: white = hole (above half
  range); center-cropped and resized to --size with nearest-neighbour, hole ratio measured after the
  resize, binned into the NVIDIA bins (0.01,0.1], (0.1,0.2], ..., (0.5,0.6]; masks outside every bin
  are skipped and reported. For bin k, the bin's masks are shuffled with numpy default_rng([seed, k])
  and the first --pairs taken; images are shuffled once with default_rng([seed, 0]) and pair i of
  every bin uses image i mod n_images. Images are center-cropped and Lanczos-resized to --size
  (--size 0: full resolution, masks resized to each image, binned at their own resolution).
  Every method runs on exactly the same pairs, with the hole pixels zeroed; metrics are computed on
  the 8-bit composited result against the ground truth (PSNR, SSIM with an 11-tap Gaussian window,
  sigma 1.5, mean L1; LPIPS with --lpips-weights). With --fid-weights, FID between the composited
  results and the ground truths of the same pairs, per method over all pairs and per bin with at
  least 50 pairs; FID is biased upwards on fewer than 2048 pairs: compare it at equal pair counts.

methods:
  telea, ns          OpenCV cv2.inpaint (Telea / Navier-Stokes), radius --radius
  biharmonic         scikit-image inpaint_biharmonic
  lbam:PATH_OR_NAME  an LBAM generator file (.safetensors or the authors' .pth) or packaged name
  pconv:PATH         a PConv generator file

outputs in --out:
  results.csv (one row per pair and method), summary.json, summary.md (bins as columns, methods as
  rows, best in bold) and grid_bin<k>.png contact sheets.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--images", required=True, type=Path, help="folder of ground-truth images")
    parser.add_argument("--masks", required=True, type=Path, help="folder of mask files (white = hole)")
    parser.add_argument(
        "--methods",
        default="telea,ns,biharmonic",
        help="comma-separated methods (default: telea,ns,biharmonic); see below",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder (created if needed)")
    parser.add_argument(
        "--size", type=int, default=256, help="square side in px; 0 = full resolution (default 256)"
    )
    parser.add_argument(
        "--pairs", type=int, default=100, help="image-mask pairs per hole-ratio bin (default 100)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the pairing (default 0)")
    parser.add_argument(
        "--radius", type=float, default=3.0, help="cv2.inpaint neighbourhood radius (default 3)"
    )
    add_device_argument(parser)
    parser.add_argument("--lpips-weights", type=Path, help="the lpips project's v0.1 vgg.pth; enables LPIPS")
    parser.add_argument(
        "--vgg-weights",
        type=Path,
        help="torchvision's vgg16-397923af.pth for LPIPS (default: the torch hub cache)",
    )
    parser.add_argument(
        "--st-lpips-weights",
        type=Path,
        help="ST-LPIPS's alex_shift_tolerant.pth (default: found in an installed stlpips-pytorch wheel "
        "or $LBAM_HOME/stlpips); ST-LPIPS is computed whenever its weights are found",
    )
    parser.add_argument("--no-st-lpips", action="store_true", help="do not compute ST-LPIPS")
    parser.add_argument(
        "--fid-weights",
        type=Path,
        help="pytorch-fid's Inception-v3 file pt_inception-2015-12-05-6726825d.pth; enables FID",
    )
    parser.add_argument(
        "--grid-pairs", type=int, default=2, help="pairs per bin shown in grid_bin<k>.png (default 2)"
    )
    parser.add_argument(
        "--grid-tile", type=int, default=256, help="cell size of the contact sheets in px (default 256)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from lbam.evaluation.evaluate import EvaluationSettings, evaluate
    from lbam.evaluation.methods import parse_method_list

    settings = settings_from_args(
        EvaluationSettings,
        args,
        methods=parse_method_list(args.methods),
        st_lpips=not args.no_st_lpips,
        progress=not args.no_progress,
    )
    evaluate(settings)
    print((args.out / "summary.md").read_text(encoding="utf-8"))
    return 0

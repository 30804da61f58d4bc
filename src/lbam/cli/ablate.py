"""`lbam ablate`: the paper's ablation (PConv, fixed, forward-only and bidirectional attention)
trained at equal budget and evaluated on the same pairs, in one resumable command.

lbam ablate --data photos/train --val-data photos/val --steps 3000 --width 0.25 --crop-size 128 --out abl/
lbam ablate ... --variants pconv,lbam,pconv@1     # a subset; @N adds a run with seed N (the spread)
torchrun --nproc_per_node 4 -m lbam ablate ...      # every run trains on all processes
"""

from __future__ import annotations

import argparse

from lbam.cli.runtime import add_device_argument, add_overrides_argument, settings_from_args

HELP = "train PConv and the LBAM attention variants at equal budget, evaluate them, write one report"

EPILOG = """\
variants (--variants, comma-separated; NAME@SEED trains another copy with that seed):
  pconv     partial convolutions (Liu et al. 2018)
  fixed     LBAM's layout with frozen attention: box-filter mask convolutions, fixed Gaussians
  forward   learned forward attention in the encoder only; no reverse attention in the decoder
  lbam      learned bidirectional attention: the full model

Every run uses the recipe (--config) with only the generator changed: the same width, data, masks,
losses, steps and seed. Runs go to OUT/runs/NAME and resume where they stopped when the command is
run again (finished runs are kept). The final weights of each run are evaluated with the protocol
of `lbam evaluate` (hole-ratio bins; PSNR, SSIM, L1, ST-LPIPS when its weights are installed) on
--val-data with --eval-masks (default: a seeded set of 1200 generated masks, OUT/eval_masks).

outputs in OUT:
  report.md (tables, parameters, training time, seed spread), curves.png (validation PSNR and
  SSIM against step), contact_sheet.png (the same holes for every variant), eval/ (lbam evaluate's
  report), runs/ (the training runs)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--data", required=True, help="folder of training photos")
    parser.add_argument("--val-data", required=True, help="folder of validation and evaluation photos")
    parser.add_argument("--out", required=True, help="output folder (runs, evaluation, report)")
    parser.add_argument("--steps", type=int, required=True, help="generator steps of every run")
    parser.add_argument("--width", type=float, default=0.25, help="channel width of every variant (0.25)")
    parser.add_argument(
        "--crop-size", type=int, default=128, help="training crop, a multiple of 128 (default 128)"
    )
    parser.add_argument(
        "--config", default="compact_cpu", help="the recipe every run uses (default compact_cpu)"
    )
    parser.add_argument(
        "--variants", default="pconv,fixed,forward,lbam", help="runs to make (default: all four)"
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed of every run (default 0)")
    parser.add_argument("--batch-size", type=int, help="global batch size (default: the recipe's)")
    parser.add_argument("--masks", metavar="SPEC", help="training masks, e.g. noise:1,lama_thick:1")
    add_overrides_argument(parser, " of every run")
    parser.add_argument("--eval-masks", help="folder of evaluation hole masks (white = hole)")
    parser.add_argument("--eval-size", type=int, help="evaluation side in px (default: --crop-size)")
    parser.add_argument("--pairs", type=int, default=50, help="evaluation pairs per hole bin (default 50)")
    add_device_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from lbam.ablation import AblationSettings, run_ablation
    from lbam.data.masks import parse_kind_list

    settings = settings_from_args(
        AblationSettings,
        args,
        masks=parse_kind_list(args.masks) if args.masks else None,
        progress=not args.no_progress,
    )
    report = run_ablation(settings)
    if report is not None:
        print(report.read_text(encoding="utf-8"))
    return 0

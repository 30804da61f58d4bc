"""`lbam train`: train a generator from a config, or continue a run.

lbam train --config compact_cpu --data photos/ --masks noise:1 --out runs/first
lbam train --config my.yaml --set optim.g_lr=5e-5 --set train.val_every=500
lbam train --resume runs/first --steps 40000
torchrun --nproc_per_node 4 -m lbam train --config paper --data ... --masks ...
"""

from __future__ import annotations

import argparse
import sys

from lbam.cli.runtime import add_device_argument, add_overrides_argument
from lbam.errors import LbamError

HELP = "train a generator (LBAM or PConv) on a folder of photos, or continue a run"

# flag -> config key; values are used as given (not parsed as YAML), so any path works
SHORT_FLAGS = {
    "data": "data.train_dir",
    "val_data": "data.val_dir",
    "out": "train.out_dir",
    "steps": "train.steps",
    "batch_size": "train.batch_size",
    "crop_size": "data.crop_size",
    "architecture": "model.architecture",
    "width": "model.generator.width",
    "init_weights": "model.init_weights",
    "device": "train.device",
    "seed": "train.seed",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "recipes shipped with lbam: paper (the authors' settings, needs VGG16 weights and a GPU), "
        "compact_cpu (VGG-free, small, CPU-friendly)\n"
        "--masks takes kind[=path][:weight],... e.g. noise:1,lama_thick:1,files=/data/masks:2\n"
        "multi-GPU: torchrun --nproc_per_node N -m lbam train ... (see docs/training.md)"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", metavar="FILE|NAME", help="YAML config file or a packaged recipe name")
    source.add_argument(
        "--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint"
    )
    parser.add_argument(
        "--checkpoint",
        metavar="STEP|latest|best",
        help="with --resume: the checkpoint to continue from (default: latest)",
    )
    parser.add_argument("--data", metavar="DIR", help="folder of training photos (data.train_dir)")
    parser.add_argument("--val-data", metavar="DIR", help="folder of validation photos (data.val_dir)")
    parser.add_argument(
        "--masks", metavar="SPEC", help="mask mix, e.g. noise:1,files=/data/masks:2 (replaces masks)"
    )
    parser.add_argument("--out", metavar="DIR", help="run folder to create (train.out_dir)")
    parser.add_argument("--steps", type=int, metavar="N", help="total generator steps (train.steps)")
    parser.add_argument("--batch-size", type=int, metavar="N", help="global batch size (train.batch_size)")
    parser.add_argument(
        "--crop-size", type=int, metavar="N", help="training crop, a multiple of 128 (data.crop_size)"
    )
    parser.add_argument(
        "--architecture", metavar="NAME", help="generator architecture: lbam or pconv (model.architecture)"
    )
    # --model meant the architecture here and the weights everywhere else: kept, with a warning
    parser.add_argument("--model", dest="deprecated_model", metavar="NAME", help=argparse.SUPPRESS)
    parser.add_argument(
        "--width", type=float, metavar="W", help="channel width multiplier (model.generator.width)"
    )
    parser.add_argument(
        "--init-weights",
        metavar="FILE|NAME",
        help="fine-tune: start from these generator weights, e.g. lbam-compact (model.init_weights)",
    )
    add_device_argument(parser, default=None)
    parser.add_argument("--seed", type=int, metavar="N", help="random seed (train.seed)")
    add_overrides_argument(parser)


def overrides_from_args(args: argparse.Namespace) -> list[str | tuple[str, object]]:
    """Config overrides from the short flags (first) and ``--set`` (last, so it wins)."""
    from lbam.data.masks import parse_kind_list

    overrides: list[str | tuple[str, object]] = []
    if getattr(args, "deprecated_model", None) is not None:
        print("lbam: warning: lbam train --model is now --architecture (--model will go)", file=sys.stderr)
        if args.architecture is None:
            args.architecture = args.deprecated_model
    for flag, key in SHORT_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append((key, value))
    if getattr(args, "masks", None) is not None:
        overrides.append(("masks", parse_kind_list(args.masks)))
    overrides.extend(args.overrides)
    return overrides


def run(args: argparse.Namespace) -> int:
    from lbam.training.config import load_train_config
    from lbam.training.trainer import load_run_config, train

    overrides = overrides_from_args(args)
    if args.resume:
        config = load_run_config(args.resume, overrides)
        train(config, args.resume, resume=True, checkpoint=args.checkpoint or "latest")
    else:
        if args.checkpoint is not None:
            raise LbamError("--checkpoint goes with --resume")
        config = load_train_config(args.config, overrides)
        train(config, config.train.out_dir)
    # An interrupted run (SIGINT/SIGTERM) has written its checkpoint and logged how to resume: success.
    return 0

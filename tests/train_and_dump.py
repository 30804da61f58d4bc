"""Test helper run by torchrun: ``lbam train`` that also saves each process's final weights.

    python -m torch.distributed.run --nproc_per_node 2 tests/train_and_dump.py DUMP_DIR train ...

Writes ``DUMP_DIR/rank<N>.safetensors`` with ``generator.*`` and ``critic.*`` tensors, so a test can
check that the replicas of a distributed run are identical.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from safetensors.torch import save_file

from lbam.cli.main import build_parser
from lbam.cli.train import overrides_from_args
from lbam.training.config import load_train_config
from lbam.training.trainer import train


def main() -> None:
    dump = Path(sys.argv[1])
    args = build_parser().parse_args(sys.argv[2:])
    config = load_train_config(args.config, overrides_from_args(args))
    result = train(config, config.train.out_dir)
    state = {}
    for prefix, module in (("generator", result.generator), ("critic", result.critic)):
        if module is not None:
            state.update(
                {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
            )
    dump.mkdir(parents=True, exist_ok=True)
    save_file(state, str(dump / f"rank{os.environ.get('RANK', '0')}.safetensors"))


if __name__ == "__main__":
    main()

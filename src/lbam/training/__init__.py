"""Training: the config, the loop, checkpoints and multi-process support behind ``lbam train``.

    from lbam.training import load_train_config, train

    config = load_train_config("compact_cpu", ["data.train_dir=photos/", "masks=[{kind: noise}]"])
    result = train(config, "runs/first")

See ``docs/training.md`` for the recipes, the run folder layout and multi-GPU use.
"""

from lbam.training.config import TrainConfig, load_train_config
from lbam.training.trainer import TrainResult, load_run_config, train

__all__ = ["TrainConfig", "TrainResult", "load_run_config", "load_train_config", "train"]

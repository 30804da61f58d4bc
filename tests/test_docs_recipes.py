"""The recipes documented for the packaged model are valid training configs; the list is the short one."""

from pathlib import Path

from lbam.training.config import load_train_config

RECIPES = Path(__file__).parent.parent / "docs" / "recipes"


def test_packaged_model_recipe_loads():
    config = load_train_config(RECIPES / "lbam-compact.yaml")
    assert config.model.architecture == "lbam" and config.model.generator["width"] == 0.25
    assert config.losses.perceptual == 0 and config.losses.style == 0 and config.losses.ssim == 1.0
    assert [spec["kind"] for spec in config.masks] == ["files", "noise", "lama_boxes"]


def test_fine_tuning_recipe_loads_and_matches_the_first_stage_model():
    first = load_train_config(RECIPES / "lbam-compact.yaml")
    config = load_train_config(
        RECIPES / "lbam-compact-finetune.yaml", [("model.init_weights", "x.safetensors")]
    )
    # Stages chain through model.init_weights, which needs the same generator settings.
    assert config.model.generator == first.model.generator
    assert config.model.init_weights == "x.safetensors"
    assert config.data.crop_size == 256 and not config.losses.uses_critic and config.losses.ssim == 12.0
    assert [spec["kind"] for spec in config.masks] == ["lama_thin", "files", "noise"]


def test_the_recipes_are_the_ones_a_user_runs():
    names = sorted(p.name for p in RECIPES.iterdir())
    assert names == [
        "gpu_run.sh",
        "lbam-compact-finetune.yaml",
        "lbam-compact-gpu.yaml",
        "lbam-compact.yaml",
        "pack_data.py",
        "prepare_data.py",
    ]

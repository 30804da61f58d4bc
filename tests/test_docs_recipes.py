"""The recipe documented for the packaged model is a valid training config."""

from pathlib import Path

from lbam.training.config import load_train_config

RECIPE = Path(__file__).parent.parent / "docs" / "recipes" / "lbam-compact.yaml"


def test_packaged_model_recipe_loads():
    config = load_train_config(RECIPE)
    assert config.model.architecture == "lbam" and config.model.width == 0.25
    assert config.losses.perceptual == 0 and config.losses.style == 0 and config.losses.ssim == 1.0
    assert [spec["kind"] for spec in config.masks] == ["files", "noise", "lama_boxes"]

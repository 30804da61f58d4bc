"""The recipes documented for the packaged model are valid training configs."""

from pathlib import Path

from lbam.config import to_dict
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


def test_the_next_models_recipes_load_and_chain():
    v2 = load_train_config(RECIPES / "lbam-compact-v2.yaml")
    v3 = load_train_config(RECIPES / "lbam-compact-v3.yaml")
    packaged = load_train_config(RECIPES / "lbam-compact.yaml")
    assert v2.model.generator == v3.model.generator == packaged.model.generator  # init_weights chains
    assert v2.losses.vgg_weights == v3.losses.vgg_weights == "stlpips"
    assert v3.losses.feature_precision == "bf16" and v3.losses.tv == 5.0 and v3.losses.style == 12000.0
    assert v3.optim.decay_steps == v3.train.steps == 1200


def test_the_patch_critic_recipe_loads_and_chains_from_the_packaged_model():
    v4 = load_train_config(RECIPES / "lbam-compact-v4.yaml")
    v3 = load_train_config(RECIPES / "lbam-compact-v3.yaml")
    assert v4.model.generator == v3.model.generator
    assert (v4.model.critic, v4.losses.adversarial, v4.losses.critic_drift) == ("patch", 0.01, 0.001)
    assert v4.losses.uses_critic and v4.optim.d_lr == 4 * v4.optim.g_lr
    # Only the critic is new: the reconstruction terms are v3c's.
    for name in ("hole", "valid", "perceptual", "style", "ssim", "tv", "vgg_weights", "feature_scale"):
        assert getattr(v4.losses, name) == getattr(v3.losses, name), name
    assert v4.optim.decay_steps == v4.train.steps == 1500


def test_the_tied_upsampling_recipe_is_v4_with_two_changes():
    v5 = to_dict(load_train_config(RECIPES / "lbam-compact-v5.yaml"))
    v4 = to_dict(load_train_config(RECIPES / "lbam-compact-v4.yaml"))
    assert (v5["model"]["upsampling"], v5["optim"]["penalty_every"]) == ("resize_conv", 4)
    assert (v4["model"]["upsampling"], v4["optim"]["penalty_every"]) == ("transposed", 1)
    for config in (v4, v5):
        del config["model"]["upsampling"], config["optim"]["penalty_every"], config["train"]["out_dir"]
    assert v5 == v4

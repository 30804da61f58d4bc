"""The typed config loader (lbam.config) and the training config built on it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from lbam.config import apply_overrides, dump_yaml, from_dict, load_config, load_yaml, to_dict
from lbam.errors import LbamError
from lbam.training.config import (
    RESUME_SAFE_KEYS,
    TrainConfig,
    load_train_config,
    packaged_configs,
    resolve_config_path,
)


@dataclass
class Inner:
    rate: float = 0.1
    count: int = 3
    name: str = "a"
    flag: bool = False
    maybe: str | None = None
    pair: tuple[float, float] = (0.5, 0.9)
    items: list[dict] = field(default_factory=list)


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    steps: int = 10


def test_from_dict_coerces_to_field_types():
    config = from_dict(
        Outer,
        {
            "inner": {
                "rate": "1e-4",  # PyYAML reads 1e-4 (no dot) as a string
                "count": "7",
                "name": 12,
                "flag": "yes",
                "maybe": "null",
                "pair": [0, "0.99"],
                "items": [{"kind": "noise"}],
            },
            "steps": 20.0,
        },
    )
    assert config.inner.rate == 1e-4 and isinstance(config.inner.rate, float)
    assert config.inner.count == 7 and isinstance(config.inner.count, int)
    assert config.inner.name == "12"
    assert config.inner.flag is True
    assert config.inner.maybe is None
    assert config.inner.pair == (0.0, 0.99)
    assert config.inner.items == [{"kind": "noise"}]
    assert config.steps == 20 and isinstance(config.steps, int)


def test_missing_keys_keep_defaults():
    config = from_dict(Outer, {"inner": {"count": 5}})
    assert config == Outer(inner=Inner(count=5))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"inner": {"count": "many"}}, "'inner.count' must be an integer"),
        ({"inner": {"count": 2.5}}, "'inner.count' must be an integer"),
        ({"inner": {"rate": "fast"}}, "'inner.rate' must be a number"),
        ({"inner": {"flag": "perhaps"}}, "'inner.flag' must be true or false"),
        ({"inner": {"pair": [1, 2, 3]}}, "'inner.pair' needs 2 values"),
        ({"inner": "text"}, "section 'inner' must be a mapping"),
        ({"steps": True}, "'steps' must be an integer"),
    ],
)
def test_bad_values_name_the_key(data, message):
    with pytest.raises(LbamError, match=message):
        from_dict(Outer, data)


def test_unknown_key_lists_valid_keys_at_its_level():
    with pytest.raises(LbamError) as info:
        from_dict(Outer, {"inner": {"rte": 1}})
    text = str(info.value)
    assert "'inner.rte'" in text
    assert "rate, count, name, flag, maybe, pair, items" in text
    with pytest.raises(LbamError, match="'stepz'.*valid keys at the top level: inner, steps"):
        from_dict(Outer, {"stepz": 1})


def test_overrides_set_nested_keys_and_parse_values():
    data = apply_overrides(
        Outer, {"steps": 1}, ["inner.count=9", "inner.pair=0.1,0.2", "inner.items=[{kind: x}]"]
    )
    assert data == {"steps": 1, "inner": {"count": 9, "pair": "0.1,0.2", "items": [{"kind": "x"}]}}
    config = from_dict(Outer, data)
    assert config.inner.pair == (0.1, 0.2)
    # a (key, value) pair is used verbatim: a path that looks like YAML stays a string
    assert load_config(Outer, {}, [("inner.name", "[not a list]")]).inner.name == "[not a list]"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("inner.colour=red", "unknown config key 'inner.colour'; valid keys in 'inner': rate, count"),
        ("nothing=1", "unknown config key 'nothing'; valid keys at the top level: inner, steps"),
        ("steps.sub=1", "'steps' has no sub-keys"),
        ("inner.count", "must look like key.sub=value"),
        ("=3", "must look like key.sub=value"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(LbamError, match=message):
        load_config(Outer, {}, [override])


def test_yaml_round_trip(tmp_path):
    config = Outer(
        inner=Inner(rate=2e-5, pair=(0.0, 0.9), items=[{"kind": "files", "path": "/m", "weight": 2}])
    )
    path = tmp_path / "c.yaml"
    path.write_text(dump_yaml(config))
    assert load_config(Outer, path) == config
    assert to_dict(config)["inner"]["pair"] == [0.0, 0.9]


def test_load_yaml_errors(tmp_path):
    with pytest.raises(LbamError, match="config file not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(LbamError, match="not valid YAML"):
        load_yaml(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(LbamError, match="mapping at the top level"):
        load_yaml(listing)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_yaml(empty) == {}


def test_packaged_recipes_load_with_the_papers_optimiser_settings():
    assert {"paper", "compact_cpu"} <= set(packaged_configs())
    paper = load_train_config("paper")
    assert (paper.optim.g_lr, paper.optim.g_betas) == (1e-4, (0.5, 0.9))
    assert (paper.optim.d_lr, paper.optim.d_betas) == (1e-5, (0.0, 0.9))
    assert (paper.data.crop_size, paper.data.load_size, paper.train.batch_size) == (256, 350, 48)
    assert paper.losses.perceptual > 0 and paper.losses.style > 0 and paper.losses.adversarial > 0
    compact = load_train_config("compact_cpu")
    assert not compact.losses.uses_vgg and compact.losses.uses_critic and compact.losses.ssim > 0
    assert (compact.model.generator["width"], compact.data.crop_size) == (0.25, 128)
    assert compact.masks, "the CPU recipe ships with synthetic masks so it runs with just --data"


def test_train_config_defaults_are_the_papers():
    config = TrainConfig()
    assert (config.optim.g_lr, config.optim.g_betas, config.optim.d_lr, config.optim.d_betas) == (
        1e-4,
        (0.5, 0.9),
        1e-5,
        (0.0, 0.9),
    )
    assert (config.losses.hole, config.losses.valid, config.losses.perceptual, config.losses.style) == (
        6.0,
        1.0,
        0.01,
        120.0,
    )
    assert (config.losses.adversarial, config.losses.gradient_penalty) == (0.1, 10.0)


def test_train_config_from_file_with_overrides(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("train:\n  steps: 40\n  batch_size: 4\nmodel:\n  generator:\n    width: 0.5\n")
    config = load_train_config(path, ["train.steps=80", ("data.train_dir", str(tmp_path))])
    assert (config.train.steps, config.train.batch_size, config.model.generator["width"]) == (80, 4, 0.5)
    assert config.data.train_dir == str(tmp_path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.steps=0", "'train.steps' must be positive"),
        ("data.crop_size=-128", "'data.crop_size' must be positive"),
        ("model.architecture=unet", "unknown architecture 'unet'; known: lbam, pconv"),
        (
            "model.generator.depth=3",
            "unknown config key 'model.generator.depth'; valid keys in 'model.generator': variant",
        ),
        ("model.generator.width=wide", "config key 'model.generator.width' must be a number"),
        ("optim.d_betas=0.0,1.0", "'optim.d_betas' must hold two numbers in"),
        ("losses.style=-1", "losses.style must be a finite number >= 0"),
        ("losses.hole=.inf", "losses.hole must be a finite number >= 0"),
        ("data.load_size=200", r"data.load_size \(200\) is smaller than data.crop_size \(256\)"),
        (
            "data.max_load_size=300",
            r"data.max_load_size \(300\) needs data.load_size set and no larger \(got 350\)",
        ),
        ("model.critic_norm=layer", "model.critic_norm must be one of batch, none, instance"),
        (
            "model.upsampling=bilinear",
            "model.upsampling must be one of transposed, resize_conv, got 'bilinear'",
        ),
        ("train.select_by=lpips", "train.select_by must be one of psnr, ssim, st_lpips, got 'lpips'"),
        ("losses.vgg=1", "unknown config key 'losses.vgg'"),
    ],
)
def test_train_config_rejects_bad_values(override, message):
    with pytest.raises(LbamError, match=message):
        load_train_config("paper", [override])


def test_unknown_recipe_name_lists_packaged_ones():
    with pytest.raises(LbamError, match="neither a file nor a packaged recipe.*compact_cpu, paper"):
        resolve_config_path("papr")


def test_resume_safe_keys_exist_in_the_config():
    for key in RESUME_SAFE_KEYS:
        load_config(TrainConfig, {}, [f"{key}=1"] if "device" not in key else [f"{key}=cpu"])


def test_lbam_0_1_configs_with_generator_keys_under_model_still_load(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("model:\n  architecture: pconv\n  width: 0.5\n  layers: 5\n")
    config = load_train_config(path)
    assert config.model.generator == {"width": 0.5, "layers": 5}


def test_pconv_depth_is_a_training_setting():
    config = load_train_config(
        "compact_cpu", ["model.architecture=pconv", "model.generator={width: 0.25, layers: 5}"]
    )
    assert config.model.generator_config().layers == 5


def test_train_config_critic_choice():
    assert load_train_config("paper").model.critic == "two_column"  # the paper's critic by default
    assert load_train_config("paper", ["model.critic=patch"]).model.critic == "patch"
    with pytest.raises(LbamError, match="model.critic must be one of two_column, patch, got 'global'"):
        load_train_config("paper", ["model.critic=global"])


def test_select_by_st_lpips_needs_crops_the_network_can_take():
    with pytest.raises(LbamError, match="needs data.crop_size of at least 64, got 32"):
        load_train_config(
            "compact_cpu", ["train.select_by=st_lpips", "data.crop_size=32", "data.load_size=32"]
        )


def test_another_architecture_keeps_the_recipes_shared_settings(capsys):
    from lbam.training.config import load_train_config

    config = load_train_config("compact_cpu", [("model.architecture", "pconv")])
    assert config.model.architecture == "pconv" and config.model.generator["width"] == 0.25
    note = capsys.readouterr().err.strip().splitlines()
    assert note == [
        "lbam: note: pconv has no last_activation, variant: the config's model.generator settings "
        "of that name are left out"
    ]
    same = load_train_config("compact_cpu", ["model.architecture=lbam"])
    assert same.model.generator["variant"] == "released" and capsys.readouterr().err == ""

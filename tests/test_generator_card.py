"""The generator contract: every generator has one card, saved with it and read by every consumer."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from lbam.errors import LbamError
from lbam.export.generator import generator_from_run
from lbam.inference.optimize import optimize
from lbam.model.card import card_of
from lbam.model.loading import load_model, save_model
from lbam.model.registry import build_generator


@pytest.mark.parametrize(
    ("architecture", "settings", "multiple"),
    [("lbam", {"width": 1 / 32}, 128), ("pconv", {"width": 1 / 32, "layers": 5}, 32)],
)
def test_card_is_built_with_the_model_and_survives_its_weight_file(
    tmp_path, architecture, settings, multiple
):
    model = build_generator(architecture, train_size=192, **settings)
    card = model.card
    assert card.architecture == architecture and card.size_multiple == multiple
    assert card.train_size == 192 and card.precision == "fp32"
    assert card.parameters == sum(p.numel() for p in model.parameters())
    assert card.settings["width"] == 1 / 32
    path = save_model(model, tmp_path / "g.safetensors", half=True)
    with safe_open(str(path), framework="pt") as handle:
        stored = json.loads(handle.metadata()["card"])
    assert stored == {**card.to_dict(), "precision": "fp16"}
    assert load_model(path).card == card  # loads back as float32


def test_bad_train_sizes_are_refused():
    with pytest.raises(LbamError, match="train_size"):
        build_generator("lbam", train_size=3)


def test_optimised_generators_keep_the_card_with_their_precision():
    model = build_generator("lbam", width=1 / 32, train_size=128).eval()
    fast = optimize(model, "fp32", compile=True)  # a wrapper, not compiled until called
    assert card_of(fast) == model.card


def test_modules_without_a_card_are_refused():
    with pytest.raises(LbamError, match="is not an lbam generator"):
        card_of(torch.nn.Conv2d(3, 3, 1))


def test_exported_runs_keep_their_training_crop(tmp_path):
    from lbam.training.trainer import train
    from training_helpers import make_photos, tiny_config

    photos = make_photos(tmp_path / "photos", count=5)
    train(tiny_config(photos, tmp_path / "run", steps=1))
    model, _ = generator_from_run(tmp_path / "run", "latest")
    assert model.card.train_size == 128

"""`lbam models` and names that resolve to files in the cache folder."""

from __future__ import annotations

import json

from lbam.cli.main import main
from lbam.model.lbam import LBAMGenerator
from lbam.model.loading import load_model, save_model


def test_models_lists_packaged_cached_and_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LBAM_HOME", str(tmp_path))
    save_model(LBAMGenerator(width=1 / 32), tmp_path / "my-model.safetensors")
    assert main(["models", "--json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    compact = entries["lbam-compact"]
    assert compact["source"] == "packaged" and compact["settings"]["width"] == 0.25
    # the listing's card is the loaded model's, but for the stored precision (the file is float16)
    assert {**compact, "precision": "fp32"}.items() >= load_model("lbam-compact").card.to_dict().items()
    assert compact["precision"] == "fp16" and compact["train_size"] == 256
    mine = entries["my-model"]
    assert mine["source"] == "cache folder" and mine["settings"]["width"] == 1 / 32
    assert mine["precision"] == "fp32" and mine["size_multiple"] == 128
    assert entries["lbam-psv"]["source"] == "not installed"
    assert (
        "LBAM_Pytorch" in entries["lbam-psv"]["get"]
        and str(tmp_path / "lbam-psv.pth") in entries["lbam-psv"]["get"]
    )
    assert load_model("my-model").config.width == 1 / 32  # the name works everywhere
    assert main(["models"]) == 0
    assert "my-model" in capsys.readouterr().out

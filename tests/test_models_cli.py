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
    assert entries["lbam-compact"]["source"] == "packaged" and entries["lbam-compact"]["width"] == 0.25
    assert entries["lbam-compact"]["parameters"] == sum(
        p.numel() for p in load_model("lbam-compact").parameters()
    )
    assert entries["my-model"]["source"] == "cache folder" and entries["my-model"]["width"] == 1 / 32
    assert entries["lbam-psv"]["source"] == "not installed"
    assert (
        "LBAM_Pytorch" in entries["lbam-psv"]["get"]
        and str(tmp_path / "lbam-psv.pth") in entries["lbam-psv"]["get"]
    )
    assert load_model("my-model").config.width == 1 / 32  # the name works everywhere
    assert main(["models"]) == 0
    assert "my-model" in capsys.readouterr().out

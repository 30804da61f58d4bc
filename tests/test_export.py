"""`lbam export`: a run's generator as a weight file that lbam.load_model reads back exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import lbam
from lbam.cli.main import main
from lbam.errors import LbamError
from lbam.export import export_generator, generator_from_run
from lbam.model.registry import build_generator
from lbam.training.trainer import train
from training_helpers import make_photos, one_thread, tiny_config  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A 3-step run (checkpoints at 2 and 3, validation at 2 and 3) and its final in-memory weights."""
    root = tmp_path_factory.mktemp("export")
    photos = make_photos(root / "photos")
    run_dir = root / "run"
    result = train(tiny_config(photos, run_dir, steps=3, train__checkpoint_every=2, train__val_every=2))
    return run_dir, {k: v.detach().clone() for k, v in result.generator.state_dict().items()}


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 128, 256, generator=generator)
    known_mask = torch.ones(1, 1, 128, 256)
    known_mask[..., 30:90, 60:200] = 0
    return image, known_mask


def test_exported_generator_reproduces_the_trained_one(run, tmp_path):
    run_dir, trained_weights = run
    trained = build_generator("lbam", width=0.0625).eval()
    trained.load_state_dict(trained_weights)
    out = export_generator(run_dir, tmp_path / "model.safetensors", which="latest")
    loaded = lbam.load_model(out)
    image, known_mask = _inputs()
    with torch.no_grad():
        assert torch.equal(loaded(image, known_mask), trained(image, known_mask))
    with safe_open(str(out), framework="pt") as f:
        metadata = f.metadata()
    assert json.loads(metadata["config"])["width"] == 0.0625
    assert f"run {run_dir.resolve()}" in metadata["source"]
    assert "step 3" in metadata["source"] and "validation PSNR" in metadata["source"]


def test_checkpoint_choice_and_fp16(run, tmp_path):
    run_dir, _ = run
    best_model, best_meta = generator_from_run(run_dir, "best")
    assert best_meta["step"] in (2, 3) and "psnr" in best_meta["metrics"]
    _, default_meta = generator_from_run(run_dir)  # best when there is one
    assert default_meta["step"] == best_meta["step"]
    step2, meta2 = generator_from_run(run_dir, 2)
    assert meta2["step"] == 2

    full = export_generator(run_dir, tmp_path / "full.safetensors", which=2)
    half = export_generator(run_dir, tmp_path / "half.safetensors", which=2, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    image, known_mask = _inputs()
    with torch.no_grad():
        expected = step2(image, known_mask)
        assert torch.equal(lbam.load_model(full)(image, known_mask), expected)
        assert torch.allclose(lbam.load_model(half)(image, known_mask), expected, atol=5e-3)


def test_cli_export(run, tmp_path, capsys):
    run_dir, _ = run
    out = tmp_path / "cli.safetensors"
    assert main(["export", str(run_dir), str(out), "--checkpoint", "latest", "--fp16"]) == 0
    assert out.is_file() and f"wrote {out}" in capsys.readouterr().out
    assert main(["export", str(run_dir), str(tmp_path / "x.safetensors"), "--checkpoint", "17"]) == 2
    assert "no checkpoint for step 17; available: 2, 3" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope"), str(tmp_path / "y.safetensors")]) == 2
    assert "run folder not found" in capsys.readouterr().err
    assert main(["export", str(run_dir), str(tmp_path / "model.pt")]) == 2
    assert "writes a .safetensors file" in capsys.readouterr().err


def test_lbam_inpaint_uses_the_exported_file(run, tmp_path):
    import numpy as np
    from PIL import Image

    run_dir, _ = run
    model = tmp_path / "model.safetensors"
    assert main(["export", str(run_dir), str(model)]) == 0
    image, known_mask = _inputs()
    Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray(((1 - known_mask[0, 0].numpy()) * 255).astype(np.uint8)).save(tmp_path / "mask.png")
    out = tmp_path / "filled.png"
    code = main(
        [
            "inpaint",
            str(tmp_path / "photo.png"),
            str(tmp_path / "mask.png"),
            "-o",
            str(out),
            "--model",
            str(model),
            "--dilate",
            "0",
        ]
    )
    assert code == 0
    with Image.open(out) as filled, Image.open(tmp_path / "photo.png") as photo:
        assert filled.size == photo.size
        filled_pixels, photo_pixels = np.asarray(filled), np.asarray(photo)
    known = known_mask[0, 0].numpy().astype(bool)
    assert np.array_equal(filled_pixels[known], photo_pixels[known])  # known pixels are kept


def test_export_refuses_a_corrupt_checkpoint(run, tmp_path):
    import shutil

    run_dir, _ = run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    state_file = copy / "checkpoints" / "step_00000003" / "state.safetensors"
    state_file.write_bytes(state_file.read_bytes()[:-10])
    with pytest.raises(LbamError, match="corrupt checkpoint"):
        export_generator(copy, tmp_path / "m.safetensors", which=3)
    assert not (tmp_path / "m.safetensors").exists()


def test_a_new_run_can_start_from_exported_weights(run, tmp_path):
    """model.init_weights: fine-tuning starts from the file's weights, not a random init."""
    run_dir, _ = run
    start = export_generator(run_dir, tmp_path / "start.safetensors", which="latest")
    start_weights = load_file(str(start))
    photos = run_dir.parent / "photos"
    result = train(tiny_config(photos, tmp_path / "finetune", steps=1, model__init_weights=str(start)))
    tuned = {f"generator.{k}": v for k, v in result.generator.state_dict().items()}
    # One Adam step moves every weight by about the learning rate (1e-4) at most.
    largest_move = max(
        (tuned[f"generator.{k}"] - v).abs().max().item()
        for k, v in start_weights.items()
        if v.is_floating_point()
    )
    assert 0 < largest_move < 5e-4
    assert f"generator initialised from {start}" in (tmp_path / "finetune" / "train.log").read_text()


def test_init_weights_must_match_the_configured_generator(run, tmp_path):
    run_dir, _ = run
    start = export_generator(run_dir, tmp_path / "start.safetensors", which="latest")  # width 0.0625
    photos = run_dir.parent / "photos"
    with pytest.raises(
        LbamError, match=r"model.init_weights .* different generator .*width=0.0625 there, 0.125 here"
    ):
        train(
            tiny_config(photos, tmp_path / "a", model__init_weights=str(start), model__generator__width=0.125)
        )
    with pytest.raises(LbamError, match="model.init_weights .*missing.safetensors.* model not found"):
        train(tiny_config(photos, tmp_path / "b", model__init_weights=str(tmp_path / "missing.safetensors")))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()

"""The paper's ablation: the attention variants of the generator and `lbam ablate` end to end."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from lbam.ablation import parse_variants
from lbam.ablation.run import trained_steps
from lbam.cli.main import main
from lbam.errors import LbamError
from lbam.model.loading import load_model, save_model
from lbam.model.registry import build_generator
from training_helpers import make_photos, one_thread  # noqa: F401 (autouse fixture)


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, 128, 128, generator=generator)
    known = (torch.rand(2, 1, 128, 128, generator=generator) > 0.4).float()
    return image, known


def test_forward_variant_has_no_reverse_branch_and_a_ones_map_for_the_decoder():
    model = build_generator("lbam", width=0.0625, attention="forward")
    full = build_generator("lbam", width=0.0625)
    assert len(model.reverse) == 0 and len(full.reverse) == 6
    image, known = _inputs()
    maps = model._reverse_maps(known, [torch.rand(2, 4, 64 >> i, 64 >> i) for i in range(7)])
    assert len(maps) == 6 and all(bool((m == 1).all()) for m in maps)
    assert model(image, known).shape == (2, 3, 128, 128)


def test_fixed_attention_is_a_frozen_function_of_the_mask():
    torch.manual_seed(0)
    first = build_generator("lbam", width=0.0625, attention="fixed")
    torch.manual_seed(1)
    second = build_generator("lbam", width=0.0625, attention="fixed")
    for a, b in zip(first.encoder, second.encoder, strict=True):
        assert not a.mask_conv.weight.requires_grad and not a.attention.a.requires_grad
        assert torch.equal(a.mask_conv.weight, b.mask_conv.weight)  # the same box filter whatever the seed
        assert not torch.equal(a.conv.weight, b.conv.weight)  # the features are still learned
    # the box filter gives the fraction of known pixels: 1 on a fully known window
    level = first.encoder[0]
    assert torch.allclose(level.mask_conv(torch.ones(1, 3, 8, 8))[..., 1:-1, 1:-1], torch.ones(1))


def test_fixed_attention_does_not_move_in_training():
    model = build_generator("lbam", width=0.0625, attention="fixed")
    frozen = {k: v.clone() for k, v in model.state_dict().items() if "mask_conv" in k or "attention" in k}
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trained, lr=1e-2)
    before = model.encoder[0].conv.weight.clone()
    image, known = _inputs()
    model(image, known).mean().backward()
    optimizer.step()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in frozen.items())
    assert not torch.equal(model.encoder[0].conv.weight, before)


@pytest.mark.parametrize("attention", ["forward", "fixed"])
def test_attention_variants_round_trip_through_weight_files(tmp_path, attention):
    model = build_generator("lbam", width=0.0625, attention=attention).eval()
    path = save_model(model, tmp_path / f"{attention}.safetensors")
    loaded = load_model(path)
    assert loaded.config.attention == attention
    image, known = _inputs(1)
    with torch.no_grad():
        assert torch.equal(model(image, known), loaded(image, known))


def test_unknown_attention_is_refused():
    with pytest.raises(LbamError, match="attention must be one of"):
        build_generator("lbam", attention="sideways")


def test_variant_lists():
    runs = parse_variants("pconv, lbam,pconv@1")
    assert [r.label for r in runs] == ["pconv", "lbam", "pconv@1"]
    assert runs[2].seed == 1 and runs[0].seed == -1
    for text, message in (
        ("pconv,pconv", "given twice"),
        ("unet", "unknown variant"),
        ("lbam@x", "seed after @"),
        (" , ", "no variants"),
    ):
        with pytest.raises(LbamError, match=message):
            parse_variants(text)


def _ablate_args(train, val, out, steps: int, width: str = "0.0625") -> list[str]:
    tiny = [
        "model.critic_width=0.0625",
        "model.critic_norm=none",
        "data.num_workers=0",
        "data.val_count=2",
        "train.log_every=1",
        "train.val_every=1",
        "train.checkpoint_every=1",
        "train.sample_every=1000",
    ]
    args = ["ablate", "--data", str(train), "--val-data", str(val), "--out", str(out)]
    args += ["--steps", str(steps), "--width", width, "--variants", "pconv,lbam,pconv@1"]
    args += ["--batch-size", "2", "--masks", "noise:1,lama_boxes:1", "--pairs", "2", "--device", "cpu"]
    args += ["--no-progress"]
    for item in tiny:
        args += ["--set", item]
    return args


@pytest.mark.slow
def test_ablate_trains_evaluates_reports_and_resumes(tmp_path, capsys):
    train = make_photos(tmp_path / "train", count=4)
    val = make_photos(tmp_path / "val", count=3, seed=1)
    out = tmp_path / "ablation"
    assert main(_ablate_args(train, val, out, steps=2)) == 0

    report = (out / "report.md").read_text()
    for heading in ("## Runs", "**PSNR", "**SSIM", "**mean L1", "## Seed-to-seed spread", "curves.png"):
        assert heading in report
    for label in ("pconv", "lbam", "pconv@1"):
        assert f"| {label} |" in report
        assert trained_steps(out / "runs" / label) == 2
    summary = json.loads((out / "eval" / "summary.json").read_text())
    assert list(summary["methods"]) == ["pconv", "lbam", "pconv@1"]
    assert summary["counts"]["all"] > 0
    # every run was evaluated on the same pairs
    assert len({entry["bins"]["all"]["count"] for entry in summary["methods"].values()}) == 1
    for picture in ("curves.png", "contact_sheet.png"):
        with Image.open(out / picture) as image:
            assert image.width > 200 and image.height > 100
    assert len(list((out / "eval_masks").glob("mask_*.png"))) == 1200

    # Run again with more steps: every run continues from its checkpoint, none starts over.
    capsys.readouterr()
    assert main(_ablate_args(train, val, out, steps=3)) == 0
    printed = capsys.readouterr().out
    assert printed.count("resuming at step 2 of 3") == 3
    assert all(trained_steps(out / "runs" / label) == 3 for label in ("pconv", "lbam", "pconv@1"))

    # The same folder with another width is refused before anything trains.
    assert main(_ablate_args(train, val, out, steps=3, width="0.125")) == 2
    error = capsys.readouterr().err
    assert error.startswith("lbam: error:") and "model.generator.width" in error


@pytest.mark.slow
def test_ablate_under_torchrun_trains_every_run_on_both_processes(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    train = make_photos(tmp_path / "train", count=4)
    val = make_photos(tmp_path / "val", count=2, seed=1)
    out = tmp_path / "ablation"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = _ablate_args(train, val, out, steps=2)
    args[args.index("pconv,lbam,pconv@1")] = "pconv,forward"
    args[args.index("--batch-size") + 1] = "4"  # PConv's batch norm needs 2 samples per process
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    command += ["--master_addr=127.0.0.1", f"--master_port={port}", "-m", "lbam", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LBAM_DIST_BACKEND": "gloo"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for label in ("pconv", "forward"):
        assert "2 process(es)" in (out / "runs" / label / "train.log").read_text()
        assert trained_steps(out / "runs" / label) == 2
    assert "| forward |" in (out / "report.md").read_text()

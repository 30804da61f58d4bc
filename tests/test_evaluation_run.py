"""lbam.evaluation.evaluate and `lbam evaluate`: outputs, hand-checked numbers, bad input."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import structural_similarity

from lbam.cli.main import main
from lbam.errors import LbamError
from lbam.evaluation.evaluate import EvaluationSettings, evaluate
from lbam.evaluation.report import CSV_COLUMNS
from lbam.features.stlpips import find_weights
from shared_data import SHARED_DATA
from test_evaluation_protocol import write_binned_masks, write_images, write_mask

SHARED = SHARED_DATA


class ZeroFill:
    """Fills every hole with black: its error is known exactly."""

    name = "zero"

    def inpaint(self, image: np.ndarray, known_mask: np.ndarray) -> np.ndarray:
        return np.where(known_mask[..., None], image, 0.0).astype(np.float32)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def settings(tmp_path: Path, **overrides) -> EvaluationSettings:
    values = dict(
        images=tmp_path / "images",
        masks=tmp_path / "masks",
        methods=["telea", "ns"],
        out=tmp_path / "out",
        size=64,
        pairs=2,
        seed=0,
        grid_pairs=1,
        grid_tile=32,
        progress=False,
    )
    values.update(overrides)
    return EvaluationSettings(**values)


@pytest.fixture
def folders(tmp_path):
    write_images(tmp_path / "images", 3)
    write_binned_masks(tmp_path / "masks", per_bin=3)
    (tmp_path / "masks" / "index.csv").write_text("file,bin\n")  # not an image: ignored
    return tmp_path


def test_known_pair_gives_the_psnr_computed_by_hand(tmp_path):
    (tmp_path / "images").mkdir()
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp_path / "images" / "gray.png")
    hole = np.zeros((64, 64), np.uint8)
    hole[8:24, 30:46] = 255  # 256 of 4096 pixels: ratio 0.0625, bin (0.01, 0.1]
    (tmp_path / "masks").mkdir()
    Image.fromarray(hole).save(tmp_path / "masks" / "square.png")
    evaluate(settings(tmp_path, methods=[ZeroFill(), "telea"], pairs=1), log=lambda line: None)

    rows = {row["method"]: row for row in read_csv(tmp_path / "out" / "results.csv")}
    zero = rows["zero"]
    assert (zero["image"], zero["mask"], zero["bin"]) == ("gray.png", "square.png", "1")
    assert float(zero["hole_ratio"]) == pytest.approx(0.0625)
    # Every hole pixel is off by 128/255 in each channel, the rest is exact:
    # MSE = 0.0625 * (128/255)^2 = 0.0157478; PSNR = 10 log10(1 / MSE) = 12.0412 + 5.9867 = 18.0279 dB
    assert float(zero["psnr"]) == pytest.approx(10 * math.log10(1 / (0.0625 * (128 / 255) ** 2)), abs=1e-5)
    assert float(zero["psnr"]) == pytest.approx(18.0279, abs=1e-4)
    assert float(zero["l1"]) == pytest.approx(0.0625 * 128 / 255, abs=1e-6)
    composite = np.full((64, 64, 3), 128 / 255)
    composite[8:24, 30:46] = 0
    expected_ssim = structural_similarity(
        composite,
        np.full((64, 64, 3), 128 / 255),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=-1,
    )
    assert float(zero["ssim"]) == pytest.approx(expected_ssim, abs=1e-5)  # float32 SSIM
    # Telea fills a constant image with the constant: no error left.
    assert rows["telea"]["psnr"] == "inf" and float(rows["telea"]["l1"]) == 0.0


def test_outputs_exist_and_agree(folders):
    lines: list[str] = []
    summary = evaluate(settings(folders, methods=["telea", ZeroFill()], st_lpips=False), log=lines.append)
    out = folders / "out"
    rows = read_csv(out / "results.csv")
    assert len(rows) == 6 * 2 * 2  # bins x pairs x methods
    # the documented columns, in order; no lpips / st_lpips column without them
    assert list(rows[0]) == [
        column for column in CSV_COLUMNS if column not in ("lpips", "st_lpips", "st_lpips_hole")
    ]
    assert list(rows[0])[:6] == ["pair_id", "image", "mask", "bin", "hole_ratio", "method"]

    # Every method ran on exactly the same pairs.
    by_method = {
        m: [(r["pair_id"], r["image"], r["mask"], r["bin"]) for r in rows if r["method"] == m]
        for m in ("telea", "zero")
    }
    assert by_method["telea"] == by_method["zero"] and len(by_method["telea"]) == 12

    data = json.loads((out / "summary.json").read_text())
    assert data == json.loads(json.dumps(summary))
    assert data["counts"] == {"1": 2, "2": 2, "3": 2, "4": 2, "5": 2, "6": 2, "all": 12}
    assert data["settings"]["seed"] == 0 and data["settings"]["size"] == 64 and data["settings"]["pairs"] == 2
    assert data["settings"]["methods"] == ["telea", "zero"]
    assert {"lbam", "torch", "scikit-image", "opencv"} <= set(data["versions"])
    telea_bin3 = [float(r["psnr"]) for r in rows if r["method"] == "telea" and r["bin"] == "3"]
    assert data["methods"]["telea"]["bins"]["3"]["psnr"] == pytest.approx(np.mean(telea_bin3), abs=1e-5)
    assert data["methods"]["zero"]["seconds"] == pytest.approx(
        sum(float(r["seconds"]) for r in rows if r["method"] == "zero"), abs=1e-3
    )
    assert any(line.startswith("telea: 12 pairs in") for line in lines)  # the time each method took
    assert any("LPIPS not computed" in line for line in lines)

    md = (out / "summary.md").read_text()
    assert "| pairs | 2 | 2 | 2 | 2 | 2 | 2 | 12 |" in md
    psnr_table = md.split("**PSNR")[1].split("**SSIM")[0]
    telea_row = next(line for line in psnr_table.splitlines() if line.startswith("| telea |"))
    zero_row = next(line for line in psnr_table.splitlines() if line.startswith("| zero |"))
    assert telea_row.count("**") == 14 and "**" not in zero_row  # telea wins every column
    l1_table = md.split("**mean L1")[1]
    assert next(line for line in l1_table.splitlines() if line.startswith("| telea |")).count("**") == 14
    assert "LPIPS not computed" in md and "FID not computed" in md

    grids = sorted(p.name for p in out.glob("grid_*.png"))
    assert grids == [f"grid_bin{k}.png" for k in range(1, 7)]
    with Image.open(out / "grid_bin2.png") as grid:
        assert grid.size == (4 * 32 + 3 * 2, 16 + 16 + 32 + 2)  # input, 2 methods, truth; one row


def test_runs_are_reproducible_and_the_seed_matters(folders):
    def pairs_of(seed, out):
        evaluate(
            settings(folders, methods=["ns"], seed=seed, out=folders / out, grid_pairs=0),
            log=lambda line: None,
        )
        return [
            {k: v for k, v in r.items() if k != "seconds"} for r in read_csv(folders / out / "results.csv")
        ]

    first = pairs_of(1, "a")
    assert first == pairs_of(1, "b")
    assert first != pairs_of(2, "c")


def test_out_of_bin_masks_are_skipped_and_reported(folders):
    write_mask(folders / "masks" / "zz_empty.png", 0)
    write_mask(folders / "masks" / "zz_full.png", 64 * 64)
    lines: list[str] = []
    summary = evaluate(settings(folders, methods=["telea"], grid_pairs=0), log=lines.append)
    (line,) = [x for x in lines if "outside every bin" in x]
    assert (
        line.startswith("skipped 2 masks")
        and "zz_empty.png (0.0000)" in line
        and "zz_full.png (1.0000)" in line
    )
    assert summary["skipped"]["masks_out_of_bin"] == ["zz_empty.png", "zz_full.png"]
    assert "skipped 2 masks" in (folders / "out" / "summary.md").read_text()


def test_every_mask_out_of_bin_is_an_error(tmp_path):
    write_images(tmp_path / "images", 1)
    write_mask(tmp_path / "masks" / "a.png", 0)
    write_mask(tmp_path / "masks" / "b.png", 4000)
    with pytest.raises(
        LbamError, match=r"none of the 2 mask files .* is usable: 2 have a hole ratio outside"
    ):
        evaluate(settings(tmp_path), log=lambda line: None)


def test_unreadable_image_is_reported_and_left_out(folders):
    (folders / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    lines: list[str] = []
    summary = evaluate(settings(folders, methods=["telea"], grid_pairs=0), log=lines.append)
    assert any(x.startswith("skipped 1 image that cannot be read: broken.png (") for x in lines)
    assert summary["skipped"]["unreadable_images"] == ["broken.png"]
    assert "broken.png" not in (folders / "out" / "results.csv").read_text()


def test_all_images_unreadable_is_an_error(folders):
    for path in (folders / "images").glob("*.png"):
        path.write_bytes(b"nothing")
    with pytest.raises(LbamError, match="none of the 3 image files .* can be read"):
        evaluate(settings(folders), log=lambda line: None)


def test_unpairable_folders_are_errors(tmp_path):
    write_images(tmp_path / "images", 2)
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "index.csv").write_text("file\n")
    with pytest.raises(LbamError, match=r"mask folder .*masks.* holds no mask files"):
        evaluate(settings(tmp_path), log=lambda line: None)
    with pytest.raises(LbamError, match=r"image folder not found: .*nowhere"):
        evaluate(settings(tmp_path, images=tmp_path / "nowhere"), log=lambda line: None)


def test_bad_settings_are_errors(folders):
    with pytest.raises(LbamError, match="unknown method 'magic'"):
        evaluate(settings(folders, methods=["telea", "magic"]), log=lambda line: None)
    with pytest.raises(LbamError, match=r"FID weights not found: .*pt_inception\.pth"):
        evaluate(settings(folders, fid_weights=folders / "pt_inception.pth"), log=lambda line: None)
    with pytest.raises(LbamError, match="lies inside the images folder"):
        evaluate(settings(folders, out=folders / "images" / "report"), log=lambda line: None)
    with pytest.raises(LbamError, match="--size must be 0"):
        evaluate(settings(folders, size=8), log=lambda line: None)
    with pytest.raises(LbamError, match="unknown device 'gpu7'"):
        evaluate(settings(folders, device="gpu7"), log=lambda line: None)
    assert not (folders / "out").exists()


def test_full_resolution_run_with_a_generator_file(tmp_path):
    from lbam.model.lbam import LBAMGenerator
    from lbam.model.loading import save_model

    torch.manual_seed(0)
    model_path = save_model(LBAMGenerator(width=0.0625), tmp_path / "tiny.safetensors")
    write_images(tmp_path / "images", 2, size=72)  # 72 px: padded to 128 for the generator
    write_binned_masks(tmp_path / "masks", per_bin=1, size=72)
    evaluate(settings(tmp_path, methods=[f"lbam:{model_path}", "biharmonic"], size=0), log=lambda line: None)
    rows = read_csv(tmp_path / "out" / "results.csv")
    assert {r["method"] for r in rows} == {"lbam:tiny", "biharmonic"}
    assert len(rows) == 12
    assert all(0 < float(r["ssim"]) <= 1 and math.isfinite(float(r["psnr"])) for r in rows)


def test_cli_end_to_end(folders, capsys):
    out = folders / "cli_out"
    code = main(
        ["evaluate", "--images", str(folders / "images"), "--masks", str(folders / "masks"), "--methods", "telea,biharmonic",
         "--out", str(out), "--size", "64", "--pairs", "1", "--seed", "5", "--grid-tile", "32", "--no-progress"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0
    assert "telea: 6 pairs in" in captured.out and "| biharmonic |" in captured.out
    assert len(read_csv(out / "results.csv")) == 12
    assert json.loads((out / "summary.json").read_text())["settings"]["seed"] == 5

    code = main(["evaluate", "--images", str(folders / "images"), "--masks", str(folders / "masks"),
                 "--methods", "telea,nope", "--out", str(folders / "cli_bad")])  # fmt: skip
    assert code == 2
    assert "lbam: error: unknown method 'nope'; known: telea, ns, biharmonic" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(
    not SHARED.is_dir(), reason="needs the shared data folder (Kodak24 and the NVIDIA test masks)"
)
def test_real_data_a_few_pairs(tmp_path):
    lines: list[str] = []
    summary = evaluate(
        EvaluationSettings(
            images=SHARED / "eval" / "kodak24",
            masks=SHARED / "masks" / "nvidia_irregular_test",
            methods=["telea", "ns", "biharmonic"],
            out=tmp_path / "out",
            pairs=2,
            grid_pairs=1,
            grid_tile=64,
            progress=False,
        ),
        log=lines.append,
    )
    assert summary["counts"]["all"] == 12
    # One mask of the subset measures 0.6006 at 256 px: reported, not silently dropped.
    assert "bin6_border_11057.png" in summary["skipped"]["masks_out_of_bin"]
    psnr = [summary["methods"]["telea"]["bins"][str(k)]["psnr"] for k in range(1, 7)]
    assert psnr[0] > psnr[5] + 5  # larger holes, lower PSNR
    assert len(read_csv(tmp_path / "out" / "results.csv")) == 36


def test_st_lpips_column_when_its_weights_are_installed(folders):
    try:
        find_weights("alex")
    except LbamError:
        if os.environ.get("CI"):
            raise
        pytest.skip("stlpips-pytorch is not installed")
    summary = evaluate(
        settings(folders, methods=["telea", ZeroFill()], out=folders / "st"), log=lambda line: None
    )
    rows = read_csv(folders / "st" / "results.csv")
    assert "st_lpips" in summary["metrics"] and all(float(r["st_lpips"]) > 0 for r in rows)
    means = {name: summary["methods"][name]["bins"]["all"]["st_lpips"] for name in ("telea", "zero")}
    assert means["telea"] < means["zero"]  # filling holes with black looks worse than Telea's fill
    assert "ST-LPIPS" in (folders / "st" / "summary.md").read_text()

"""`lbam inpaint` end to end: single photos, folders, and every kind of bad input."""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from lbam.cli.main import main
from lbam.model.lbam import LBAMGenerator
from lbam.model.loading import save_model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(LBAMGenerator(width=0.0625), path)
    return path


def photo(path, height=96, width=128, seed=0, mode="RGB"):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def mask(path, height=96, width=128, box=(20, 40, 30, 70), value=255):
    pixels = np.zeros((height, width), dtype=np.uint8)
    top, bottom, left, right = box
    pixels[top:bottom, left:right] = value
    Image.fromarray(pixels).save(path)
    return path


def run_cli(capsys, *args):
    """``lbam inpaint ARGS``; the hole as drawn unless ARGS set --dilate (tests check exact pixels)."""
    dilate = [] if "--dilate" in args else ["--dilate", "0"]
    code = main(["inpaint", *map(str, args), *dilate])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---------------------------------------------------------------- single photo


def test_single_photo(tmp_path, tiny_model, capsys):
    image, hole = photo(tmp_path / "a.png"), mask(tmp_path / "m.png")
    out = tmp_path / "out" / "a_filled.png"
    code, stdout, stderr = run_cli(capsys, image, hole, "-o", out, "--model", tiny_model, "--device", "cpu")
    assert code == 0, stderr
    assert stdout.count("\n") == 1
    assert (
        "inpainted" in stdout
        and "128x96" in stdout
        and "hole 6.5%" in stdout
        and "strategy fit, 1 window" in stdout
    )
    before, after = np.asarray(Image.open(image)), np.asarray(Image.open(out))
    holes = np.asarray(Image.open(hole)) > 0
    np.testing.assert_array_equal(after[~holes], before[~holes])
    assert (after[holes] != before[holes]).mean() > 0.9


def test_single_photo_options_and_16bit(tmp_path, tiny_model, capsys):
    rgb = np.random.default_rng(3).integers(0, 65536, (96, 128, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), rgb)
    keep = mask(tmp_path / "keep.png", 48, 64, box=(0, 48, 0, 50))  # white = keep, half size
    out = tmp_path / "deep_out.png"
    options = ["--invert-mask", "--resize-mask", "--dilate", "2", "--strategy", "crop"]
    args = [tmp_path / "deep.png", keep, "-o", out, "--model", tiny_model, *options, "--crop-min-size", "128"]
    code, stdout, stderr = run_cli(capsys, *args)
    assert code == 0, stderr
    assert "strategy crop, 1 window)" in stdout
    after = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert after.dtype == np.uint16
    np.testing.assert_array_equal(after[:, :98], rgb[:, :98])  # kept columns 0..99, hole grown by 2
    assert (after[:, 100:] != rgb[:, 100:]).mean() > 0.9


def test_rgba_to_jpeg_notes_dropped_alpha(tmp_path, tiny_model, capsys):
    image = photo(tmp_path / "a.png", mode="RGBA")
    code, _, stderr = run_cli(
        capsys, image, mask(tmp_path / "m.png"), "-o", tmp_path / "a.jpg", "--model", tiny_model
    )
    assert code == 0
    assert "alpha" in stderr
    assert Image.open(tmp_path / "a.jpg").mode == "RGB"


def test_mask_without_hole_copies_the_input(tmp_path, capsys):
    image = photo(tmp_path / "a.png")
    empty = mask(tmp_path / "m.png", value=0)
    out = tmp_path / "copy.png"
    # no model is needed: a missing model must not matter
    code, stdout, _ = run_cli(capsys, image, empty, "-o", out, "--model", tmp_path / "absent.safetensors")
    assert code == 0
    assert "no hole" in stdout and "unchanged copy" in stdout
    assert out.read_bytes() == image.read_bytes()


def test_exif_rotated_jpeg(tmp_path, tiny_model, capsys):
    pil = Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 96, 3), dtype=np.uint8))
    exif = pil.getexif()
    exif[0x0112] = 6  # displayed turned a quarter clockwise: 64 wide, 96 high
    pil.save(tmp_path / "r.jpg", exif=exif.tobytes())
    hole = mask(tmp_path / "m.png", 96, 64, box=(10, 20, 10, 20))  # mask in display orientation
    code, stdout, stderr = run_cli(
        capsys, tmp_path / "r.jpg", hole, "-o", tmp_path / "r.png", "--model", tiny_model
    )
    assert code == 0, stderr
    assert "64x96" in stdout
    assert Image.open(tmp_path / "r.png").size == (64, 96)


# ------------------------------------------------ bad input: one line, exit 2, nothing written


def expect_error(capsys, tmp_path, args, message, touched=()):
    before = {p: p.read_bytes() for p in touched}
    outputs_before = set(tmp_path.rglob("*"))
    code, stdout, stderr = run_cli(capsys, *args)
    assert code == 2
    assert stderr.startswith("lbam: error: ") and stderr.count("\n") == 1, stderr
    assert message in stderr
    assert "Traceback" not in stderr + stdout
    assert set(tmp_path.rglob("*")) == outputs_before  # no output, no temporary file left
    for path, data in before.items():
        assert path.read_bytes() == data


def test_missing_image(tmp_path, tiny_model, capsys):
    hole = mask(tmp_path / "m.png")
    args = [tmp_path / "nope.png", hole, "-o", tmp_path / "o.png", "--model", tiny_model]
    expect_error(capsys, tmp_path, args, "image not found")


def test_missing_mask(tmp_path, tiny_model, capsys):
    image = photo(tmp_path / "a.png")
    args = [image, tmp_path / "nope.png", "-o", tmp_path / "o.png", "--model", tiny_model]
    expect_error(capsys, tmp_path, args, "mask not found", [image])


def test_text_file_named_png(tmp_path, tiny_model, capsys):
    fake = tmp_path / "fake.png"
    fake.write_text("hello")
    args = [fake, mask(tmp_path / "m.png"), "-o", tmp_path / "o.png", "--model", tiny_model]
    expect_error(capsys, tmp_path, args, "is not an image file", [fake])


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_image(tmp_path, tiny_model, capsys, suffix):
    full = photo(tmp_path / f"full{suffix}", 256, 256)
    cut = tmp_path / f"cut{suffix}"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    hole = mask(tmp_path / "m.png", 256, 256)
    args = [cut, hole, "-o", tmp_path / "o.png", "--model", tiny_model]
    expect_error(capsys, tmp_path, args, "truncated", [cut])


def test_mask_size_mismatch(tmp_path, tiny_model, capsys):
    image = photo(tmp_path / "a.png")
    small = mask(tmp_path / "m.png", 50, 50, box=(5, 10, 5, 10))
    args = [image, small, "-o", tmp_path / "o.png", "--model", tiny_model]
    expect_error(capsys, tmp_path, args, "is 50x50 but the image is 128x96", [image, small])


def test_all_hole_mask(tmp_path, tiny_model, capsys):
    image = photo(tmp_path / "a.png")
    full = mask(tmp_path / "m.png", box=(0, 96, 0, 128))
    args = [image, full, "-o", tmp_path / "o.png", "--model", tiny_model]
    expect_error(capsys, tmp_path, args, "nothing to condition on", [image])


def test_foreign_pth_checkpoint(tmp_path, capsys):
    foreign = tmp_path / "resnet.pth"
    torch.save(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Linear(8, 2)).state_dict(), foreign)
    image = photo(tmp_path / "a.png")
    args = [image, mask(tmp_path / "m.png"), "-o", tmp_path / "o.png", "--model", foreign]
    expect_error(capsys, tmp_path, args, "resnet.pth", [image, foreign])


def test_text_file_named_safetensors(tmp_path, capsys):
    fake = tmp_path / "model.safetensors"
    fake.write_text("definitely not weights")
    image = photo(tmp_path / "a.png")
    args = [image, mask(tmp_path / "m.png"), "-o", tmp_path / "o.png", "--model", fake]
    expect_error(capsys, tmp_path, args, "model.safetensors", [image, fake])


def test_unknown_model_name(tmp_path, capsys):
    image = photo(tmp_path / "a.png")
    args = [image, mask(tmp_path / "m.png"), "-o", tmp_path / "o.png", "--model", "lbam-nonexistent"]
    expect_error(capsys, tmp_path, args, "lbam-nonexistent", [image])


def test_output_is_the_input(tmp_path, tiny_model, capsys):
    image, hole = photo(tmp_path / "a.png"), mask(tmp_path / "m.png")
    expect_error(
        capsys, tmp_path, [image, hole, "-o", image, "--model", tiny_model], "refusing", [image, hole]
    )
    expect_error(
        capsys, tmp_path, [image, hole, "-o", hole, "--model", tiny_model], "refusing", [image, hole]
    )
    # the same file under another spelling
    other = tmp_path / "." / "a.png"
    expect_error(capsys, tmp_path, [image, hole, "-o", other, "--model", tiny_model], "refusing", [image])


def test_unknown_output_suffix(tmp_path, tiny_model, capsys):
    image = photo(tmp_path / "a.png")
    args = [image, mask(tmp_path / "m.png"), "-o", tmp_path / "o.gif", "--model", tiny_model]
    expect_error(capsys, tmp_path, args, "unknown image suffix", [image])


@pytest.mark.slow
def test_subprocess_error_has_no_traceback(tmp_path):
    env = {**os.environ, "LBAM_DEBUG": ""}
    args = ["inpaint", str(tmp_path / "x.png"), str(tmp_path / "m.png"), "-o", str(tmp_path / "o.png")]
    result = subprocess.run(
        [sys.executable, "-m", "lbam", *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"lbam: error: image not found: {tmp_path / 'x.png'}"


# ---------------------------------------------------------------- folders


def test_folder_with_one_failure_lists_it_and_exits_1(tmp_path, tiny_model, capsys):
    images, masks, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    images.mkdir()
    masks.mkdir()
    photo(images / "a.png", seed=1)
    photo(images / "b.jpg", seed=2)
    (images / "broken.png").write_text("not an image")
    photo(images / "lonely.png", seed=3)  # no mask
    (images / "notes.txt").write_text("ignored: not an image suffix")
    mask(masks / "a.png")
    mask(masks / "b_mask.png")
    mask(masks / "broken.png")
    mask(masks / "extra.png")  # no photo
    code, stdout, stderr = run_cli(capsys, images, masks, "-o", out, "--model", tiny_model)
    assert code == 1
    assert "inpainted 2 photos" in stdout and "2 failed" in stdout
    assert "2 photos failed" in stderr
    assert f"{images / 'broken.png'}: " in stderr and "not an image file" in stderr
    assert f"{images / 'lonely.png'}: no mask" in stderr
    assert "extra.png" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg"]
    before, after = np.asarray(Image.open(images / "a.png")), np.asarray(Image.open(out / "a.png"))
    holes = np.asarray(Image.open(masks / "a.png")) > 0
    np.testing.assert_array_equal(after[~holes], before[~holes])


def test_folder_with_one_mask_for_all_and_ext(tmp_path, tiny_model, capsys):
    images, out = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    photo(images / "a.png", seed=1)
    photo(images / "b.jpg", seed=2)
    hole = mask(tmp_path / "m.png")
    code, stdout, stderr = run_cli(capsys, images, hole, "-o", out, "--model", tiny_model, "--ext", "webp")
    assert code == 0, stderr
    assert "inpainted 2 photos" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["a.webp", "b.webp"]


def test_folder_refuses_to_write_into_an_input_folder(tmp_path, tiny_model, capsys):
    images = tmp_path / "images"
    images.mkdir()
    image = photo(images / "a.png")
    hole = mask(tmp_path / "m.png")
    expect_error(
        capsys, tmp_path, [images, hole, "-o", images, "--model", tiny_model], "is the input folder", [image]
    )


def test_folder_masks_next_to_photos(tmp_path, tiny_model, capsys):
    images, out = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    photo(images / "a.png")
    mask(images / "a_mask.png")
    code, stdout, stderr = run_cli(capsys, images, images, "-o", out, "--model", tiny_model)
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]


def test_folder_with_a_bad_model_stops_at_once(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    photo(images / "a.png")
    fake = tmp_path / "bad.safetensors"
    fake.write_text("nope")
    args = [images, mask(tmp_path / "m.png"), "-o", tmp_path / "out", "--model", fake]
    expect_error(capsys, tmp_path, args, "bad.safetensors")


def test_unwritable_output_is_a_one_line_error(tmp_path, tiny_model, capsys):
    image = photo(tmp_path / "a.png")
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    args = [image, mask(tmp_path / "m.png"), "-o", blocker / "o.png", "--model", tiny_model]
    expect_error(capsys, tmp_path, args, "cannot write", [image, blocker])


def test_one_photo_defaults_to_fp32_and_a_folder_to_auto(tmp_path, tiny_model, capsys):
    """One photo: float32, the Python API's result (a bfloat16 copy costs more than a photo's few
    windows save). A folder: auto, bfloat16 where the CPU has it; known pixels exact either way."""
    import lbam
    from lbam.inference.optimize import bf16_supported
    from lbam.model.loading import load_model

    (tmp_path / "in").mkdir()
    image, hole = photo(tmp_path / "in" / "a.png"), mask(tmp_path / "m.png")
    expected = np.asarray(
        lbam.inpaint(Image.open(image), Image.open(hole), load_model(tiny_model), dilate=0, refine="none")
    )
    common = ("--model", tiny_model, "--device", "cpu", "--refine", "none")  # the network's precision
    assert run_cli(capsys, image, hole, "-o", tmp_path / "one.png", *common)[0] == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "one.png")), expected)
    outputs = {}
    for name, extra in (("default", ()), ("fp32", ("--precision", "fp32"))):
        assert run_cli(capsys, tmp_path / "in", hole, "-o", tmp_path / name, *common, *extra)[0] == 0
        outputs[name] = np.asarray(Image.open(tmp_path / name / "a.png")).astype(float)
    np.testing.assert_array_equal(outputs["fp32"], expected)
    holes = np.asarray(Image.open(hole)) > 0
    np.testing.assert_array_equal(outputs["default"][~holes], outputs["fp32"][~holes])
    difference = np.abs(outputs["default"] - outputs["fp32"])[holes]
    if bf16_supported(torch.device("cpu")):
        assert 0 < difference.max() <= 8 and difference.mean() < 1  # bfloat16: a few levels at most
    else:
        assert difference.max() == 0


def test_bad_precision_and_threads_are_one_line_errors(tmp_path, tiny_model, capsys):
    image, hole = photo(tmp_path / "a.png"), mask(tmp_path / "m.png")
    code, _, stderr = run_cli(capsys, image, hole, "-o", tmp_path / "o.png", "--precision", "fp16")
    assert code == 2 and stderr.count("\n") == 1 and "--precision" in stderr
    code, _, stderr = run_cli(capsys, image, hole, "-o", tmp_path / "o.png", "--threads", "0")
    assert code == 2 and stderr.strip() == "lbam: error: --threads must be from 1 to 1024, got 0"

"""Bad input fails with one clear LbamError before any training step runs, and nothing is clobbered."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbam.cli.main import main
from lbam.errors import LbamError
from lbam.training import checkpoint as ckpt
from lbam.training.trainer import load_run_config, train
from training_helpers import make_photos, one_thread, tiny_cli_args, tiny_config  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def finished_run(photos, tmp_path_factory) -> Path:
    """A 2-step run to resume from (its checkpoint is copied by tests that damage it)."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    train(tiny_config(photos, run_dir, steps=2))
    return run_dir


def _copy_run(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


@pytest.mark.parametrize(
    ("make_overrides", "message"),
    [
        (
            lambda photos, tmp: {"data__train_dir": str(tmp / "empty")},
            "data.train_dir: image folder .* holds no image files",
        ),
        (
            lambda photos, tmp: {"data__train_dir": str(tmp / "missing")},
            "data.train_dir: image folder not found",
        ),
        (lambda photos, tmp: {"data__train_dir": ""}, "data.train_dir is not set"),
        (lambda photos, tmp: {"masks": []}, "no masks configured"),
        (lambda photos, tmp: {"masks": [{"kind": "scribbles"}]}, "masks: unknown mask kind 'scribbles'"),
        (
            lambda photos, tmp: {"masks": [{"kind": "files", "path": str(tmp / "empty")}]},
            "masks: mask folder .* holds no",
        ),
        (
            lambda photos, tmp: {"data__crop_size": 256, "data__load_size": None},
            "crop_size 256 is larger than every image",
        ),
        (lambda photos, tmp: {"data__crop_size": 192, "data__load_size": None}, "multiple of 128"),
        (lambda photos, tmp: {"train__batch_size": 8}, "only 4 training images for train.batch_size=8"),
        (lambda photos, tmp: {"data__val_count": 6}, "too few to hold out data.val_count=6"),
        (
            lambda photos, tmp: {"losses__perceptual": 0.01, "losses__vgg_weights": str(tmp / "no_vgg.pth")},
            "VGG16 weights not found",
        ),
        (lambda photos, tmp: {"train__device": "tpu"}, "unknown device|unsupported device"),
        (
            lambda photos, tmp: {
                "model__architecture": "pconv",
                "model__generator": {"width": 0.0625},
                "model__upsampling": "resize_conv",
            },
            "model.upsampling resize_conv ties .* the PConvUNet has none",
        ),
    ],
)
def test_bad_input_fails_before_training(photos, tmp_path, make_overrides, message):
    (tmp_path / "empty").mkdir()
    run_dir = tmp_path / "run"
    with pytest.raises(LbamError, match=message):
        train(tiny_config(photos, run_dir, **make_overrides(photos, tmp_path)))
    assert not run_dir.exists(), "a failed start must not create the run folder"


def test_images_smaller_than_the_crop_are_an_error_before_training(tmp_path):
    small = make_photos(tmp_path / "small", count=4, size=(100, 90))
    with pytest.raises(LbamError, match="crop_size 128 is larger than every image"):
        train(tiny_config(small, tmp_path / "run", data__load_size=None))


def test_new_run_refuses_a_non_empty_folder(photos, finished_run):
    before = sorted(p.name for p in (finished_run / "checkpoints").iterdir())
    with pytest.raises(LbamError, match="already exists and is not empty.*--resume"):
        train(tiny_config(photos, finished_run, steps=4))
    assert sorted(p.name for p in (finished_run / "checkpoints").iterdir()) == before


def test_resume_with_a_truncated_checkpoint(finished_run, tmp_path):
    run_dir = _copy_run(finished_run, tmp_path / "run")
    state_file = ckpt.find_checkpoint(run_dir, "latest") / "state.safetensors"
    state_file.write_bytes(state_file.read_bytes()[:1000])
    with pytest.raises(LbamError, match="corrupt checkpoint .*truncated"):
        train(load_run_config(run_dir, ["train.steps=4"]), run_dir, resume=True)


def test_resume_with_a_mismatched_model(finished_run, tmp_path):
    run_dir = _copy_run(finished_run, tmp_path / "run")
    config_file = run_dir / "config.yaml"
    config_file.write_text(config_file.read_text().replace("width: 0.0625", "width: 0.125", 1))
    with pytest.raises(
        LbamError, match=r"model.generator.width: 0.0625 in the checkpoint, 0.125 in config.yaml"
    ):
        train(load_run_config(run_dir, ["train.steps=4"]), run_dir, resume=True)


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("hole: 6.0", "hole: 2.0", "losses.hole"),
        ("g_lr: 0.0001", "g_lr: 0.001", "optim.g_lr"),
        ("seed: 0", "seed: 7", "train.seed"),
    ],
)
def test_a_hand_edited_config_is_refused_naming_the_keys(finished_run, tmp_path, old, new, key):
    run_dir = _copy_run(finished_run, tmp_path / "run")
    config_file = run_dir / "config.yaml"
    assert old in config_file.read_text()
    config_file.write_text(config_file.read_text().replace(old, new, 1))
    with pytest.raises(LbamError, match=rf"{key}: .* in the checkpoint, .* in config.yaml"):
        train(load_run_config(run_dir, ["train.steps=4"]), run_dir, resume=True)


def test_an_edited_meta_json_or_rng_state_is_refused(finished_run, tmp_path):
    import json

    for change in ("step", "rng"):
        run_dir = _copy_run(finished_run, tmp_path / change)
        meta_path = ckpt.find_checkpoint(run_dir, "latest") / "meta.json"
        meta = json.loads(meta_path.read_text())
        if change == "step":
            meta["step"] = 1
        else:
            meta["rng"]["python"][1][0] ^= 1  # one flipped bit of the Python RNG state
        meta_path.write_text(json.dumps(meta, indent=1))
        with pytest.raises(LbamError, match="meta.json does not match its state file"):
            train(load_run_config(run_dir, ["train.steps=4"]), run_dir, resume=True)


def test_resume_with_a_checkpoint_of_another_architecture(finished_run, photos, tmp_path):
    """Weights that do not fit (here: a PConv generator's) are refused with the offending key."""
    from lbam.model.pconv import PConvUNet

    run_dir = _copy_run(finished_run, tmp_path / "run")
    directory = ckpt.find_checkpoint(run_dir, "latest")
    state = ckpt.load_checkpoint(directory)
    state.generator = PConvUNet(width=0.0625).state_dict()
    ckpt.save_checkpoint(directory.parent, directory.name, state)
    with pytest.raises(
        LbamError, match=r"\(generator\) does not match the model: .encoder.0.conv.weight. has shape"
    ):
        train(load_run_config(run_dir, ["train.steps=4"]), run_dir, resume=True)


def test_resume_refuses_changes_that_alter_the_run(finished_run):
    with pytest.raises(LbamError, match="cannot change 'optim.g_lr' when resuming"):
        load_run_config(finished_run, ["optim.g_lr=1e-3"])
    with pytest.raises(LbamError, match="cannot resume .*no config.yaml"):
        load_run_config(finished_run / "checkpoints")


def test_cli_errors_exit_2_with_one_line(photos, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main([*tiny_cli_args(photos, run_dir), "--set", "train.stepz=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lbam: error: unknown config key 'train.stepz'; valid keys in 'train': steps,")
    assert len(err.splitlines()) == 1
    assert not run_dir.exists()

    assert main([*tiny_cli_args(tmp_path / "nothing_here", run_dir)]) == 2
    assert "image folder not found" in capsys.readouterr().err

    assert main([*tiny_cli_args(photos, run_dir), "--masks", ""]) == 2
    assert "lbam: error: no mask kinds in ''" in capsys.readouterr().err

    assert main(["train", "--resume", str(tmp_path / "no_run")]) == 2
    assert "cannot resume" in capsys.readouterr().err

    assert main([*tiny_cli_args(photos, run_dir), "--init-weights", str(tmp_path / "none.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lbam: error: model.init_weights") and "model not found" in err
    assert len(err.splitlines()) == 1 and not run_dir.exists()


def test_batch_norm_with_one_sample_per_process_is_refused_up_front(photos, tmp_path):
    # PConv's deepest level is 1x1 at 128 px: batch norm there cannot train on one sample.
    config = tiny_config(
        photos, tmp_path / "run", model__architecture="pconv", model__generator={"width": 0.0625}
    )
    config.train.batch_size = 1
    with pytest.raises(LbamError, match="batch norm, which needs at least 2 samples"):
        train(config)
    assert not (tmp_path / "run").exists()


def test_architecture_flag_and_the_deprecated_model_alias(photos, tmp_path, capsys):
    from lbam.cli.main import build_parser
    from lbam.cli.train import overrides_from_args

    parser = build_parser()
    args = parser.parse_args(["train", "--config", "compact_cpu", "--architecture", "pconv"])
    assert ("model.architecture", "pconv") in overrides_from_args(args)
    assert capsys.readouterr().err == ""
    old = parser.parse_args(["train", "--config", "compact_cpu", "--model", "pconv"])
    assert ("model.architecture", "pconv") in overrides_from_args(old)
    assert capsys.readouterr().err.strip() == (
        "lbam: warning: lbam train --model is now --architecture (--model will go)"
    )

"""Crafted weight files are refused cheaply: before the model is built, with one line.

Each case runs ``lbam inpaint --model FILE`` in a child process and reads its peak memory
(``ru_maxrss``), so a file that makes lbam allocate gigabytes before failing is caught: its peak
must stay within ``EXTRA_LIMIT_MB`` of a run with a good tiny model.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from lbam.errors import LbamError
from lbam.model.lbam import LBAMGenerator
from lbam.model.loading import load_model, save_model
from lbam.model.official import lbam_to_official_key
from lbam.model.registry import build_generator
from test_cli_inpaint import mask, photo

# Above what a good tiny model costs (torch, OpenCV and the photo: about 300 MB here).
EXTRA_LIMIT_MB = 150


def run_inpaint(tmp_path: Path, model: Path) -> tuple[int, str, float]:
    """Exit code, stderr and the child's peak memory in MB of ``lbam inpaint`` with ``model``."""
    image, hole = photo(tmp_path / "a.png"), mask(tmp_path / "m.png")
    code = (
        "import resource, sys; from lbam.cli.main import main; status = main(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stdout); sys.exit(status)"
    )
    args = ["inpaint", str(image), str(hole), "-o", str(tmp_path / "o.png"), "--model", str(model)]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr, int(done.stdout.split()[-1]) / 1024


@pytest.fixture(scope="module")
def limit_mb(tmp_path_factory) -> float:
    """The peak memory allowed: a good tiny model's run plus EXTRA_LIMIT_MB."""
    folder = tmp_path_factory.mktemp("baseline")
    save_model(LBAMGenerator(width=1 / 32), folder / "good.safetensors")
    code, err, peak = run_inpaint(folder, folder / "good.safetensors")
    assert code == 0, err
    return peak + EXTRA_LIMIT_MB


def lbam_file(path: Path, config: dict, state: dict[str, torch.Tensor]) -> Path:
    save_file(state, str(path), metadata={"format": "lbam", "config": json.dumps(config), "source": ""})
    return path


def tiny_state() -> dict[str, torch.Tensor]:
    return {k: v.contiguous() for k, v in LBAMGenerator(width=1 / 32).state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("width", [40, 10])
def test_metadata_declaring_a_huge_width_is_refused_without_building_it(tmp_path, width, limit_mb):
    path = lbam_file(tmp_path / "big.safetensors", {"architecture": "lbam", "width": width}, tiny_state())
    code, err, peak = run_inpaint(tmp_path, path)
    assert code == 2 and "width must be a number from 0.015625 to 2" in err and err.count("\n") == 1
    assert peak < limit_mb, f"peak {peak:.0f} MB"


@pytest.mark.slow
def test_authors_pth_whose_first_layer_implies_width_10_is_refused_cheaply(tmp_path, limit_mb):
    state = {lbam_to_official_key(k): v for k, v in tiny_state().items()}
    state["ec1.conv.conv.weight"] = torch.zeros(640, 4, 4, 4)  # 64 * 10 channels: width 10
    torch.save(state, tmp_path / "crafted.pth")
    code, err, peak = run_inpaint(tmp_path, tmp_path / "crafted.pth")
    assert code == 2 and "width must be" in err and err.count("\n") == 1
    assert peak < limit_mb, f"peak {peak:.0f} MB"


@pytest.mark.slow
def test_width_2_metadata_with_tiny_tensors_is_refused_before_allocating(tmp_path, limit_mb):
    path = lbam_file(tmp_path / "w2.safetensors", {"architecture": "lbam", "width": 2.0}, tiny_state())
    code, err, peak = run_inpaint(tmp_path, path)
    assert code == 2 and "has shape" in err
    assert peak < limit_mb, f"peak {peak:.0f} MB"  # the 1.1 GB model is never built


def test_zip_bomb_pth_is_refused_from_its_declared_sizes(tmp_path):
    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data/0", b"\0" * (64 << 20))  # 64 MB of zeros, a few KB on disk
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(LbamError, match="unpacks to 67108864 bytes"):
        load_model(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 32 * 1024  # KB: nothing unpacked


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (lambda t: t.to(torch.complex64), "complex64 values, expected float32"),
        (lambda t: t.to(torch.int32), "int32 values, expected float32"),
        (lambda t: t.bool(), "bool values, expected float32"),
        (lambda t: t.clone().fill_(float("nan")), "NaN or infinite"),
        (lambda t: t.clone().fill_(float("inf")), "NaN or infinite"),
    ],
)
def test_weights_of_the_wrong_kind_are_refused(tmp_path, value, message):
    state = tiny_state()
    state["head.weight"] = value(state["head.weight"])
    path = lbam_file(tmp_path / "odd.safetensors", {"architecture": "lbam", "width": 1 / 32}, state)
    with pytest.raises(LbamError, match=message):
        load_model(path)


@pytest.mark.parametrize("width", [0, -1, 1000, float("nan")])
def test_out_of_range_widths_are_one_line_errors(width):
    with pytest.raises(LbamError, match="width must be a number from"):
        build_generator("lbam", width=width)


def test_a_good_file_still_loads(tmp_path):
    save_model(LBAMGenerator(width=1 / 32), tmp_path / "ok.safetensors")
    assert load_model(tmp_path / "ok.safetensors").config.width == 1 / 32

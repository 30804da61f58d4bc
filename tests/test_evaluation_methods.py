"""lbam.evaluation.methods: classical baselines, generator files, method specs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lbam.errors import LbamError
from lbam.evaluation.methods import (
    Biharmonic,
    GeneratorMethod,
    OpenCVInpaint,
    make_method,
    make_methods,
    parse_method_list,
)
from lbam.imaging.harmonic import harmonize
from lbam.inference.pipeline import run_model
from lbam.options import InpaintOptions


def smooth_image(height: int = 48, width: int = 40) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([0.2 + 0.6 * xx / width, 0.3 + 0.4 * yy / height, np.full(xx.shape, 0.6)], -1)
    return (np.round(image * 255) / 255).astype(np.float32)  # 8-bit exact, like the evaluation's input


def square_hole(height: int = 48, width: int = 40) -> np.ndarray:
    known = np.ones((height, width), bool)
    known[14:30, 12:26] = False
    return known


@pytest.mark.parametrize("method", [OpenCVInpaint("telea"), OpenCVInpaint("ns"), Biharmonic()])
def test_classical_methods_fill_holes_and_keep_known_pixels(method):
    truth = smooth_image()
    known = square_hole()
    given = truth * known[..., None]  # holes zeroed, as the evaluation does
    result = method.inpaint(given, known)
    assert result.shape == truth.shape and result.dtype == np.float32
    assert np.array_equal(result[known], truth[known])
    # A smooth ramp is easy: every filled pixel is close to the truth, far from the zeroed input.
    error = np.abs(result[~known] - truth[~known])
    assert error.mean() < 0.03 and error.max() < 0.15
    assert result[~known].min() > 0.15


def test_opencv_radius_must_be_positive():
    with pytest.raises(LbamError, match="radius must be positive"):
        OpenCVInpaint("telea", radius=0)


def test_parse_method_list():
    assert parse_method_list(" telea, ns ,lbam:a.safetensors,") == ["telea", "ns", "lbam:a.safetensors"]
    with pytest.raises(LbamError, match="no methods given"):
        parse_method_list(" , ")


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(
        LbamError, match=r"unknown method 'criminisi'; known: telea, ns, biharmonic, patchmatch, lbam:"
    ):
        make_method("criminisi")
    with pytest.raises(LbamError, match=r"unknown suffix \+sharpen"):
        make_method("lbam:lbam-compact+sharpen")
    with pytest.raises(LbamError, match="unknown method 'telea:x'"):
        make_method("telea:x")
    with pytest.raises(LbamError, match=r"pconv:PATH"):
        make_method("pconv")


def test_missing_generator_file_is_a_clear_error(tmp_path):
    with pytest.raises(LbamError, match="not found"):
        make_method(f"lbam:{tmp_path / 'missing.safetensors'}")


def test_methods_given_twice_are_rejected():
    with pytest.raises(LbamError, match="given twice"):
        make_methods(["telea", "ns", "telea"])


@pytest.fixture
def tiny_lbam_file(tmp_path):
    from lbam.model.lbam import LBAMGenerator
    from lbam.model.loading import save_model

    torch.manual_seed(0)
    model = LBAMGenerator(width=0.0625)
    return save_model(model, tmp_path / "tiny.safetensors", source="test"), model.eval()


def test_generator_file_by_path_composites_the_raw_output(tiny_lbam_file):
    path, model = tiny_lbam_file
    method = make_method(f"lbam:{path}+paste")
    assert isinstance(method, GeneratorMethod)
    assert method.name == "lbam:tiny+paste"
    truth = smooth_image(128, 128)
    known = square_hole(128, 128)
    given = truth * known[..., None]
    result = method.inpaint(given, known)
    with torch.no_grad():
        raw = (
            model(
                torch.from_numpy(given).permute(2, 0, 1)[None],
                torch.from_numpy(known.astype(np.float32))[None, None],
            )[0]
            .permute(1, 2, 0)
            .numpy()
        )
    assert np.array_equal(result[known], truth[known])
    assert np.allclose(result[~known], raw[~known], atol=1e-6)


def test_generator_blends_as_lbam_inpaint_does_by_default(tiny_lbam_file):
    path, model = tiny_lbam_file
    method = make_method(f"lbam:{path}")
    assert method.name == "lbam:tiny" and method.options.blend == "harmonic"
    assert make_method(f"lbam:{path}@fit+paste").options == InpaintOptions(
        strategy="fit", blend="paste", refine="none"
    )
    truth = smooth_image(128, 128)
    known = square_hole(128, 128)
    given = truth * known[..., None]
    raw = run_model(model, given, ~known)
    expected = harmonize(np.clip(raw, 0, 1), given, known)
    result = method.inpaint(given, known)
    assert np.array_equal(result[known], truth[known])
    assert np.allclose(result[~known], np.clip(expected[~known], 0, 1), atol=1e-6)


def test_generator_pads_sizes_that_are_not_multiples(tiny_lbam_file):
    path, _ = tiny_lbam_file
    method = make_method(f"lbam:{path}")
    truth = smooth_image(100, 90)
    known = square_hole(100, 90)
    result = method.inpaint(truth * known[..., None], known)
    assert result.shape == (100, 90, 3)
    assert np.array_equal(result[known], truth[known])
    assert np.isfinite(result).all() and result.min() >= 0 and result.max() <= 1


def test_generator_architecture_must_match_the_prefix(tiny_lbam_file):
    path, _ = tiny_lbam_file
    with pytest.raises(LbamError, match="holds a lbam generator, not pconv"):
        make_method(f"pconv:{path}")


def test_pconv_file_by_path(tmp_path):
    from lbam.model.loading import save_model
    from lbam.model.pconv import PConvUNet

    torch.manual_seed(0)
    path = save_model(PConvUNet(width=0.0625), tmp_path / "pc.safetensors")
    method = make_method(f"pconv:{path}")
    assert method.name == "pconv:pc"
    truth = smooth_image(64, 64)
    known = square_hole(64, 64)
    result = method.inpaint(truth * known[..., None], known)
    assert result.shape == (64, 64, 3)
    assert np.array_equal(result[known], truth[known])
    assert np.isfinite(result).all()
    with pytest.raises(LbamError, match="holds a pconv generator, not lbam: use pconv:"):
        make_method(f"lbam:{path}")

"""The converted authors' weights reproduce the authors' own outputs (tests/data/reference)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lbam.cli.main import main
from lbam.model.loading import load_model
from official_recipe import recipe_state_dict

REFERENCE = Path(__file__).parent / "data" / "reference"
CASES = ["square_256", "wide_384x256"]
# REFERENCE.md's bound (max abs) between a converter's output and the authors' recorded output.
TOLERANCE = 1e-5
# The recorded outputs are float32 results of one CPU; another CPU's float32 kernels sum in another
# order. Measured: the float64 result is 1.0e-5 (square_256) and 2.0e-6 (wide) from the recordings
# on every machine; float32 is 2.6e-5 from them on an AVX2 Zen 3 and under 1e-5 on an AVX-512 one,
# and 3.1e-5 from float64. So the bound is checked in float64, where only the recording's own
# rounding is left, and float32 is checked against float64 with a bound for float32 rounding
# through 13 layers (a wrong constant, the mask-update exponent 0.81 for 0.8, moves it by 0.21).
FLOAT32_ROUNDING = 1e-4


def reference_inputs(case: str) -> tuple[torch.Tensor, torch.Tensor]:
    folder = REFERENCE / case
    image = np.asarray(Image.open(folder / "image.png").convert("RGB"), dtype=np.float32) / 255.0
    hole = np.asarray(Image.open(folder / "mask.png").convert("L"), dtype=np.float32) / 255.0 >= 0.5
    known = torch.from_numpy((~hole).astype(np.float32))[None, None]
    return torch.from_numpy(image).permute(2, 0, 1)[None], known


@pytest.fixture(scope="module")
def converted_models(tmp_path_factory) -> dict[str, torch.nn.Module]:
    """Each case's recipe weights, saved as the authors' .pth and run through `lbam convert`."""
    folder = tmp_path_factory.mktemp("weights")
    models = {}
    for case in CASES:
        seed = json.loads((REFERENCE / case / "meta.json").read_text())["seed"]
        pth = folder / f"{case}.pth"
        out = folder / f"{case}.safetensors"
        torch.save(recipe_state_dict(seed), pth)
        assert main(["convert", str(pth), str(out)]) == 0
        models[case] = load_model(out)
    return models


def outputs(
    model: torch.nn.Module, image: torch.Tensor, known: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """The raw output in float32 (as shipped) and in float64 (free of this CPU's rounding)."""
    exact = copy.deepcopy(model).double()
    with torch.inference_mode():
        single = model(image, known)[0].numpy()
        double = exact(image.double(), known.double())[0].numpy()
    return single, double


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_raw_output_matches_authors_code(case, converted_models):
    image, known = reference_inputs(case)
    single, double = outputs(converted_models[case], image, known)
    expected = np.load(REFERENCE / case / "raw_output.npy")
    assert single.shape == double.shape == expected.shape
    error, rounding = float(np.abs(double - expected).max()), float(np.abs(single - double).max())
    print(f"{case}: float64 vs authors {error:.3e}, float32 vs float64 {rounding:.3e}")
    assert error <= TOLERANCE
    assert rounding <= FLOAT32_ROUNDING


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_composite_matches_authors_code(case, converted_models):
    image, known = reference_inputs(case)
    single, double = outputs(converted_models[case], image, known)
    known, image = known[0].numpy(), image[0].numpy()
    expected = np.load(REFERENCE / case / "composite.npy")
    assert float(np.abs(double * (1 - known) + image * known - expected).max()) <= TOLERANCE
    assert (
        float(np.abs(single * (1 - known) + image * known - expected).max()) <= TOLERANCE + FLOAT32_ROUNDING
    )


@pytest.mark.slow
def test_pth_loads_directly_with_same_output(tmp_path, converted_models):
    seed = json.loads((REFERENCE / "square_256" / "meta.json").read_text())["seed"]
    pth = tmp_path / "authors.pth"
    torch.save({f"module.{k}": v for k, v in recipe_state_dict(seed).items()}, pth)
    image, known = reference_inputs("square_256")
    with torch.inference_mode():
        direct = load_model(pth)(image, known)
        converted = converted_models["square_256"](image, known)
    assert torch.equal(direct, converted)

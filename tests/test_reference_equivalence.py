"""The converted authors' weights reproduce the authors' own outputs (tests/data/reference)."""

from __future__ import annotations

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
TOLERANCE = 1e-5


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


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_raw_output_matches_authors_code(case, converted_models):
    image, known = reference_inputs(case)
    with torch.inference_mode():
        output = converted_models[case](image, known)[0].numpy()
    expected = np.load(REFERENCE / case / "raw_output.npy")
    assert output.shape == expected.shape
    error = float(np.abs(output - expected).max())
    print(f"{case}: max abs error {error:.3e}")
    assert error <= TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_composite_matches_authors_code(case, converted_models):
    image, known = reference_inputs(case)
    with torch.inference_mode():
        output = converted_models[case](image, known)
    composite = (output * (1 - known) + image * known)[0].numpy()
    expected = np.load(REFERENCE / case / "composite.npy")
    assert float(np.abs(composite - expected).max()) <= TOLERANCE


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

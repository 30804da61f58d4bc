"""lbam.optimize: the same contract as the model, within the stated tolerances."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

import lbam
from inference_helpers import StubConfig
from lbam.errors import LbamError
from lbam.inference.optimize import bf16_supported, optimize
from lbam.model.card import Generator
from lbam.model.lbam import LBAMGenerator

# These tests check exact hole geometry: the hole as given, without the default dilation.
inpaint = functools.partial(lbam.inpaint, dilate=0)


def inputs():
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 128, 256, generator=generator)
    known = torch.ones(1, 1, 128, 256)
    known[..., 30:90, 60:200] = 0
    return image, known


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LBAMGenerator(width=1 / 16).eval()


def test_bf16_is_close_to_fp32_and_leaves_the_original_alone(model):
    image, known = inputs()
    with torch.no_grad():
        reference = model(image, known)
    fast = optimize(model, "bf16", compile=False)
    output = fast(image, known)
    assert output.dtype == torch.float32 and output.shape == reference.shape and output.is_contiguous()
    assert next(model.parameters()).dtype == torch.float32  # a copy was converted, not the model
    conv_weights = [p for p in model.parameters() if p.dim() == 4]
    assert conv_weights and all(p.is_contiguous() for p in conv_weights)  # nor its memory format
    assert fast.inner.encoder[0].conv.weight.is_contiguous(memory_format=torch.channels_last)
    mse = (output - reference).pow(2).mean().item()
    psnr = 10 * np.log10(1 / max(mse, 1e-20))
    if bf16_supported(torch.device("cpu")):
        assert 35 < psnr < 200  # bfloat16 keeps 8 bits of mantissa: close, not equal
    else:
        assert psnr > 100  # ran in float32


@pytest.mark.slow
def test_compiled_fp32_matches_eager(model):
    image, known = inputs()
    with torch.no_grad():
        reference = model(image, known)
    output = optimize(model, "fp32", compile=True)(image, known)
    torch.testing.assert_close(output, reference, rtol=1e-5, atol=1e-5)


def test_optimized_module_works_in_the_pipeline_and_bad_precision_is_refused(model):
    photo = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    hole = np.zeros((96, 128), bool)
    hole[20:50, 30:80] = True
    result = inpaint(photo, hole, lbam.optimize(model, "bf16", compile=False))
    np.testing.assert_array_equal(result[~hole], photo[~hole])
    with pytest.raises(LbamError, match="precision must be"):
        optimize(model, "fp8")


def test_auto_precision_and_nothing_to_do(model):
    assert optimize(model, "fp32", compile=False) is model
    auto = optimize(model, "auto", compile=False)
    if bf16_supported(torch.device("cpu")):
        assert next(auto.parameters()).dtype == torch.bfloat16
    else:
        assert auto is model


def test_warm_up_runs_the_three_window_shapes_of_the_default_strategy(model):
    from inference_helpers import Recorder
    from lbam.inference.optimize import warm_up

    recorder = Recorder(model, train_size=256)
    warm_up(recorder)
    assert sorted(recorder.shapes) == [(128, 256), (256, 128), (256, 256)]


class TinyGenerator(Generator):
    """A generator that compiles in seconds."""

    config = StubConfig()
    size_multiple = 1

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, image, known_mask):
        return torch.sigmoid(self.conv(image * known_mask))


@pytest.mark.slow
def test_freezing_happens_even_after_a_plain_compile_of_the_same_model(monkeypatch):
    """The issue this guards: freezing once did nothing in a process that had compiled the same
    model without it. The freezing pass must run for lbam.optimize's compile all the same."""
    import torch._inductor.freezing as freezing

    torch.manual_seed(0)
    model = TinyGenerator().eval()
    image, known = torch.rand(1, 3, 32, 32), torch.ones(1, 1, 32, 32)
    with torch.no_grad():
        torch.compile(model, backend="inductor")(image, known)  # cached, unfrozen
    calls = []
    original = freezing.freeze

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(freezing, "freeze", spy)
    output = optimize(model, "fp32", compile=True)(image, known)
    assert calls, "inductor's freezing pass did not run"
    with torch.no_grad():
        torch.testing.assert_close(output, model(image, known), rtol=1e-5, atol=1e-6)

"""The LBAM generator: shapes, variants, widths, and the compile / trace / ONNX paths."""

from __future__ import annotations

import pytest
import torch

from lbam.errors import LbamError
from lbam.model.lbam import LBAMGenerator, asymmetric_gaussian, mask_update


def inputs(height=128, width=128, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, height, width, generator=g)
    known = (torch.rand(batch, 1, height, width, generator=g) > 0.3).float()
    return image, known


def test_released_variant_matches_authors_parameter_count():
    model = LBAMGenerator()
    assert sum(p.numel() for p in model.parameters()) == 68_304_948
    assert len(model.state_dict()) == 79
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_paper_variant_has_batch_norm_where_the_paper_puts_it():
    model = LBAMGenerator(variant="paper")
    encoder_bn = [not isinstance(level.norm, torch.nn.Identity) for level in model.encoder]
    assert encoder_bn == [False] + [True] * 6
    assert [level.norm.num_features for level in model.decoder] == [1024, 1024, 1024, 512, 256, 128]


@pytest.mark.parametrize("width", [0.0625, 0.25])
@pytest.mark.parametrize("variant,last", [("released", "tanh01"), ("paper", "abs_tanh"), ("paper", "tanh01")])
def test_output_shape_and_range(width, variant, last):
    model = LBAMGenerator(variant=variant, width=width, last_activation=last).eval()
    image, known = inputs(128, 256)
    with torch.no_grad():
        out = model(image, known)
    assert out.shape == image.shape
    assert out.min() >= 0 and out.max() <= 1


def test_width_scales_channels():
    model = LBAMGenerator(width=0.25)
    assert model.encoder[0].conv.out_channels == 16
    assert model.encoder[6].conv.out_channels == 128
    assert model.head.in_channels == 32


def test_rejects_sizes_that_are_not_multiples_of_128():
    model = LBAMGenerator(width=0.0625)
    image, known = inputs(100, 128)
    with pytest.raises(LbamError, match="multiples of 128"):
        model(image, known)


def test_asymmetric_gaussian_clamps_without_touching_parameters():
    model = LBAMGenerator(width=0.0625)
    gaussian = model.encoder[0].attention
    with torch.no_grad():
        gaussian.a.fill_(10.0)
        gaussian.sigma1.fill_(0.1)
    image, known = inputs()
    model(image, known)
    assert gaussian.a.item() == 10.0 and gaussian.sigma1.item() == pytest.approx(0.1)
    x = torch.linspace(-2, 5, 50)
    clamped = asymmetric_gaussian(x, torch.tensor(6.0), gaussian.mu, torch.tensor(0.5), gaussian.sigma2)
    assert torch.equal(gaussian(x), clamped)


def test_asymmetric_gaussian_values():
    a, mu, s1, s2 = (torch.tensor(v) for v in (2.0, 1.0, 1.0, 0.5))
    x = torch.tensor([0.0, 1.0, 3.0])
    expected = torch.tensor([2.0 * torch.exp(torch.tensor(-1.0)), 2.0, 1 + torch.exp(torch.tensor(-2.0))])
    assert torch.allclose(asymmetric_gaussian(x, a, mu, s1, s2), expected)
    assert torch.allclose(mask_update(torch.tensor([-1.0, 0.0, 2.0])), torch.tensor([0.0, 0.0, 2.0**0.8]))


def test_gradients_reach_attention_parameters():
    model = LBAMGenerator(width=0.0625)
    image, known = inputs()
    model(image, known).mean().backward()
    for level in model.encoder:
        assert level.attention.mu.grad is not None
    for level in model.reverse:
        assert level.attention.a.grad is not None


def test_torchscript_trace_matches_eager():
    model = LBAMGenerator(width=0.0625).eval()
    image, known = inputs()
    with torch.no_grad():
        traced = torch.jit.trace(model, (image, known))
        other_image, other_known = inputs(seed=1)
        assert torch.allclose(traced(other_image, other_known), model(other_image, other_known), atol=1e-6)


@pytest.mark.slow
def test_torch_compile_matches_eager():
    """fullgraph=True: Dynamo captures the whole forward as one graph (no break, no fallback).

    The aot_eager backend runs that captured graph through AOTAutograd without inductor's code
    generation, which takes 40 s on a cold cache here and proves nothing more about the model.
    """
    model = LBAMGenerator(width=0.0625).eval()
    image, known = inputs(batch=1)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        assert torch.allclose(compiled(image, known), model(image, known), atol=1e-5)


@pytest.mark.slow
def test_onnx_export_runs_in_onnxruntime_at_other_sizes(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the dev extra")
    from lbam.export.onnx import export_onnx

    model = LBAMGenerator(width=0.0625).eval()
    path = export_onnx(model, tmp_path / "lbam.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for height, width, batch in [(256, 256, 1), (256, 512, 2)]:
        image, known = inputs(height, width, batch, seed=height + width)
        (result,) = session.run(None, {"image": image.numpy(), "known_mask": known.numpy()})
        with torch.no_grad():
            expected = model(image, known).numpy()
        assert abs(result - expected).max() < 1e-5

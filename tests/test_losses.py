"""Generator loss terms and their weighting; WGAN-GP critic loss and gradient penalty."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lbam.errors import LbamError
from lbam.features.vgg import VGG16Features
from lbam.imaging.pixels import composite
from lbam.losses.adversarial import critic_loss, drift_penalty, generator_adversarial_loss, gradient_penalty
from lbam.losses.inpainting import (
    InpaintingLoss,
    LossConfig,
    gram_matrix,
    hole_l1,
    hole_total_variation,
    perceptual_loss,
    style_loss,
    valid_l1,
)


def small_vgg() -> VGG16Features:
    torch.manual_seed(0)
    return VGG16Features()  # random weights are enough to check the arithmetic


def half_hole_mask(batch: int = 1, size: int = 8) -> torch.Tensor:
    """Known mask (B, 1, size, size): left half known (1), right half hole (0)."""
    mask = torch.ones(batch, 1, size, size)
    mask[..., size // 2 :] = 0
    return mask


# ---- weights -------------------------------------------------------------------------------------------


def test_paper_defaults() -> None:
    w = LossConfig()
    assert (w.hole, w.valid, w.perceptual, w.style, w.adversarial, w.gradient_penalty, w.ssim) == (
        6.0, 1.0, 0.01, 120.0, 0.1, 10.0, 0.0,
    )  # fmt: skip
    assert w.critic_drift == 0.0  # off unless a recipe asks for it


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "big", None])
def test_bad_weight_names_field(bad: object) -> None:
    with pytest.raises(LbamError, match="losses.style"):
        LossConfig(style=bad)  # type: ignore[arg-type]


# ---- individual terms ----------------------------------------------------------------------------------


def test_hole_and_valid_l1_by_hand() -> None:
    known = half_hole_mask()
    target = torch.zeros(1, 3, 8, 8)
    output = torch.zeros(1, 3, 8, 8)
    output[..., 4:] = 0.5  # wrong only in the hole, by 0.5 on half of the pixels
    assert hole_l1(output, target, known).item() == pytest.approx(0.25)
    assert valid_l1(output, target, known).item() == 0.0
    output[..., :2] = -1.0  # now also wrong by 1 on a quarter of the pixels, all known
    assert valid_l1(output, target, known).item() == pytest.approx(0.25)
    assert hole_l1(output, target, known).item() == pytest.approx(0.25)
    # A 3-channel mask gives the same numbers.
    assert hole_l1(output, target, known.expand(-1, 3, -1, -1)).item() == pytest.approx(0.25)


def test_composite_takes_known_pixels_from_target() -> None:
    known = half_hole_mask()
    out = composite(torch.full((1, 3, 8, 8), 0.2), torch.full((1, 3, 8, 8), 0.9), known)
    assert torch.all(out[..., :4] == 0.9) and torch.all(out[..., 4:] == 0.2)


def test_gram_of_constant_tensor_by_hand() -> None:
    # Channel c is constant v_c over a 2x3 map: G[i, j] = v_i v_j * 6 / (C * 6) = v_i v_j / C.
    values = torch.tensor([1.0, 2.0])
    features = values.view(1, 2, 1, 1).expand(1, 2, 2, 3)
    expected = torch.tensor([[[0.5, 1.0], [1.0, 2.0]]])
    torch.testing.assert_close(gram_matrix(features), expected)


def test_style_and_perceptual_of_hand_features() -> None:
    gt = [torch.ones(1, 2, 2, 2)]
    out = [torch.full((1, 2, 2, 2), 3.0)]
    comp = [torch.ones(1, 2, 2, 2)]
    # L1(out, gt) = 2, L1(comp, gt) = 0.
    assert perceptual_loss(out, comp, gt).item() == pytest.approx(2.0)
    # G(gt) = 1/2 everywhere, G(out) = 9/2 everywhere: L1 = 4; comp equals gt: 0.
    assert style_loss(out, comp, gt).item() == pytest.approx(4.0)


def test_perceptual_and_style_zero_when_output_is_target() -> None:
    loss = InpaintingLoss(vgg=small_vgg())
    target = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    terms = loss(target.clone(), target, half_hole_mask(2, 32))
    for name in ("hole", "valid", "perceptual", "style", "total"):
        assert terms[name].item() == 0.0, name


def test_perceptual_counts_output_and_composite() -> None:
    vgg = small_vgg()
    loss = InpaintingLoss(vgg=vgg)
    g = torch.Generator().manual_seed(4)
    target, output = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    known = half_hole_mask(1, 32)
    terms = loss(output, target, known)
    out_f, comp_f, gt_f = vgg(output), vgg(composite(output, target, known)), vgg(target)
    expected = sum(
        (o - t).abs().mean() + (c - t).abs().mean() for o, c, t in zip(out_f, comp_f, gt_f, strict=True)
    )
    torch.testing.assert_close(terms["perceptual"], expected, rtol=1e-5, atol=1e-6)
    assert terms["perceptual"] > 0 and terms["style"] > 0


def test_total_is_weighted_sum() -> None:
    weights = LossConfig(hole=2.0, valid=3.0, perceptual=0.5, style=7.0, adversarial=99.0)
    loss = InpaintingLoss(weights, vgg=small_vgg())
    g = torch.Generator().manual_seed(5)
    output, target = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    terms = loss(output, target, half_hole_mask(2, 32))
    assert set(terms) == {"hole", "valid", "perceptual", "style", "total"}
    expected = 2 * terms["hole"] + 3 * terms["valid"] + 0.5 * terms["perceptual"] + 7 * terms["style"]
    torch.testing.assert_close(terms["total"], expected)


def test_gradient_reaches_output_only_through_holes_for_l1() -> None:
    weights = LossConfig(perceptual=0.0, style=0.0, valid=0.0)
    output = torch.rand(1, 3, 8, 8, requires_grad=True)
    InpaintingLoss(weights)(output, torch.rand(1, 3, 8, 8), half_hole_mask())["total"].backward()
    assert output.grad[..., :4].abs().sum() == 0 and output.grad[..., 4:].abs().min() > 0


def test_vgg_required_for_perceptual_and_style() -> None:
    with pytest.raises(LbamError, match="VGG16"):
        InpaintingLoss(LossConfig(style=0.0))
    terms = InpaintingLoss(LossConfig(perceptual=0.0, style=0.0))(
        torch.ones(1, 3, 8, 8), torch.zeros(1, 3, 8, 8), half_hole_mask()
    )
    assert set(terms) == {"hole", "valid", "total"}
    assert terms["total"].item() == pytest.approx(6 * 0.5 + 1 * 0.5)


def test_ssim_term_on_composite() -> None:
    from lbam.imaging.metrics import ssim

    weights = LossConfig(perceptual=0.0, style=0.0, ssim=2.0)
    loss = InpaintingLoss(weights)
    g = torch.Generator().manual_seed(6)
    output = torch.rand(2, 3, 32, 32, generator=g, requires_grad=True)
    target = torch.rand(2, 3, 32, 32, generator=g)
    known = half_hole_mask(2, 32)
    terms = loss(output, target, known)
    expected = 1 - ssim(composite(output, target, known), target, data_range=1.0).mean()
    torch.testing.assert_close(terms["ssim"], expected)
    torch.testing.assert_close(terms["total"], 6 * terms["hole"] + terms["valid"] + 2 * terms["ssim"])
    terms["ssim"].backward()
    assert output.grad[..., 16:].abs().sum() > 0
    assert loss(target, target, known)["ssim"].abs().item() < 1e-5


def test_total_variation_by_hand_counts_only_the_grown_hole() -> None:
    known = torch.ones(1, 1, 8, 8)
    known[..., 2:4, 2:4] = 0  # a 2x2 hole; grown by one pixel it is rows/columns 1..4
    comp = torch.zeros(1, 1, 8, 8)
    comp[..., 6:, :] = 1.0  # an edge far from the hole does not count
    assert hole_total_variation(comp, known).item() == 0
    comp[..., 2, 2] = 1.0  # one bright hole pixel: 4 neighbour differences of 1, all in the region
    # dx: 2 differences of 1 over 1*8*7 pairs; dy the same.
    assert hole_total_variation(comp, known).item() == pytest.approx(2 / 56 + 2 / 56)


def test_total_variation_term_punishes_a_checkerboard_fill() -> None:
    loss = InpaintingLoss(LossConfig(perceptual=0.0, style=0.0, tv=1.0))
    known = half_hole_mask(1, 16)
    target = torch.full((1, 3, 16, 16), 0.5)
    flat = target.clone()
    checker = target.clone()
    checker[..., 8:] += 0.05 * (torch.arange(16)[:, None] + torch.arange(8)[None, :]) % 2
    assert loss(flat, target, known)["tv"].item() == 0
    assert loss(checker, target, known)["tv"].item() > 0.02
    assert set(loss(flat, target, known)) == {"hole", "valid", "tv", "total"}


def test_bf16_features_agree_with_fp32() -> None:
    g = torch.Generator().manual_seed(7)
    output = torch.rand(2, 3, 32, 32, generator=g)
    target = torch.rand(2, 3, 32, 32, generator=g)
    known = half_hole_mask(2, 32)
    vgg = small_vgg()
    values = {}
    grads = {}
    for precision in ("fp32", "bf16"):
        leaf = output.clone().requires_grad_(True)
        loss = InpaintingLoss(LossConfig(perceptual=1.0, style=100.0, feature_precision=precision), vgg)
        terms = loss(leaf, target, known)
        terms["total"].backward()
        assert all(value.dtype == torch.float32 for value in terms.values())
        values[precision], grads[precision] = terms, leaf.grad
    for name in ("perceptual", "style"):
        torch.testing.assert_close(values["bf16"][name], values["fp32"][name], rtol=0.03, atol=0)
        assert values["bf16"][name] != values["fp32"][name]  # bf16 really ran
    cosine = torch.nn.functional.cosine_similarity(grads["bf16"].flatten(), grads["fp32"].flatten(), dim=0)
    assert cosine > 0.99


def test_bad_feature_precision() -> None:
    with pytest.raises(LbamError, match="losses.feature_precision must be one of fp32, bf16"):
        LossConfig(feature_precision="fp16")


# ---- adversarial ---------------------------------------------------------------------------------------


def test_critic_loss_sign() -> None:
    real, fake = torch.tensor([3.0, 5.0]), torch.tensor([-1.0, 1.0])
    assert critic_loss(real, fake).item() == pytest.approx(0.0 - 4.0)  # good critic: negative
    assert critic_loss(fake, real).item() == pytest.approx(4.0)
    assert generator_adversarial_loss(fake).item() == pytest.approx(0.0)
    assert generator_adversarial_loss(torch.tensor([2.0, 4.0])).item() == pytest.approx(-3.0)


class LinearCritic(nn.Module):
    """score = <w, image * known_mask>: its gradient w.r.t. the image is w * known_mask everywhere."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, image: torch.Tensor, known_mask: torch.Tensor) -> torch.Tensor:
        return (image * known_mask * self.weight).flatten(1).sum(dim=1)


def test_gradient_penalty_zero_for_unit_gradient() -> None:
    weight = torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(7))
    critic = LinearCritic(weight / weight.norm())
    real, fake = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    gp = gradient_penalty(critic, real, fake, torch.ones(4, 1, 8, 8))
    assert gp.item() < 1e-10


def test_gradient_penalty_value_and_backprop() -> None:
    weight = torch.full((3, 8, 8), 0.5)  # gradient norm = 0.5 * sqrt(192) everywhere
    critic = LinearCritic(weight)
    real, fake = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8, requires_grad=True)
    gp = gradient_penalty(
        critic, real, fake, torch.ones(4, 1, 8, 8), generator=torch.Generator().manual_seed(0)
    )
    assert gp.item() == pytest.approx((0.5 * 192**0.5 - 1) ** 2, rel=1e-5)
    gp.backward()
    # d gp / d w = 2 (|w| - 1) w / |w| for a linear critic: it reaches the critic, not the generator.
    norm = weight.norm()
    torch.testing.assert_close(critic.weight.grad, 2 * (norm - 1) * weight / norm)
    assert fake.grad is None


def test_gradient_penalty_interpolates_per_sample() -> None:
    # A critic whose gradient norm is |x| itself (score = |x|^2 / 2) reveals where it was evaluated.
    seen = []

    def critic(image: torch.Tensor, known_mask: torch.Tensor) -> torch.Tensor:
        seen.append(image.detach().clone())
        return 0.5 * image.pow(2).flatten(1).sum(dim=1)

    real, fake = torch.ones(3, 3, 4, 4), torch.zeros(3, 3, 4, 4)
    gradient_penalty(critic, real, fake, torch.ones(3, 1, 4, 4), generator=torch.Generator().manual_seed(1))
    mixed = seen[0]
    alpha = mixed[:, 0, 0, 0]
    assert torch.all(mixed == alpha.view(3, 1, 1, 1))  # one factor per sample, uniform over the image
    assert len(set(alpha.tolist())) == 3 and torch.all((alpha >= 0) & (alpha <= 1))
    again = []
    gradient_penalty(
        lambda x, m: again.append(x.detach()) or x.sum((1, 2, 3)),
        real,
        fake,
        torch.ones(3, 1, 4, 4),
        generator=torch.Generator().manual_seed(1),
    )
    assert torch.equal(again[0], mixed)  # reproducible from the given generator


def test_gradient_penalty_uses_known_mask() -> None:
    critic = LinearCritic(torch.full((3, 8, 8), 1.0))
    known = half_hole_mask(2, 8)  # gradient = known mask: norm sqrt(96)
    gp = gradient_penalty(critic, torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), known)
    assert gp.item() == pytest.approx((96**0.5 - 1) ** 2, rel=1e-5)


def test_drift_penalty_is_mean_square_of_real_scores() -> None:
    scores = torch.tensor([3.0, -1.0, 2.0], requires_grad=True)
    penalty = drift_penalty(scores)
    assert penalty.item() == pytest.approx((9 + 1 + 4) / 3)
    penalty.backward()
    torch.testing.assert_close(scores.grad, 2 * scores.detach() / 3)  # pulls every score to 0

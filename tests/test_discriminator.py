"""The critics: shapes, widths, normalisation options, the two columns, the patch critic, WGAN-GP through them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lbam.losses.adversarial import critic_loss, gradient_penalty
from lbam.model.discriminator import PatchDiscriminator, TwoColumnDiscriminator, build_critic
from lbam.training.step import critic_input


def inputs(batch: int, height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    known = (torch.rand(batch, 1, height, width, generator=g) > 0.3).float()
    return torch.rand(batch, 3, height, width, generator=g), known


@pytest.mark.parametrize(("height", "width"), [(128, 128), (256, 256), (128, 256), (192, 320)])
def test_one_score_per_sample(height: int, width: int) -> None:
    critic = TwoColumnDiscriminator(width=0.0625)
    scores = critic(*inputs(2, height, width))
    assert scores.shape == (2,) and torch.isfinite(scores).all()


def test_paper_layout_at_256() -> None:
    critic = TwoColumnDiscriminator(width=0.125, norm="none")
    image, known = inputs(1, 256, 256)
    column_out = critic.known_column(image)
    assert column_out.shape == (1, 64, 4, 4)  # 512 * 0.125 channels, 4x4: the fusion conv's size
    assert critic.fusion.kernel_size == (4, 4) and critic.fusion.padding == (0, 0)
    fused = torch.cat((critic.known_column(image * known), critic.hole_column(image * (1 - known))), 1)
    torch.testing.assert_close(critic(image, known), critic.fusion(fused).view(1))


@pytest.mark.parametrize(
    ("width", "channels"), [(1.0, [64, 128, 256, 512, 512, 512]), (0.25, [16, 32, 64, 128, 128, 128])]
)
def test_width_scales_channels(width: float, channels: list[int]) -> None:
    critic = TwoColumnDiscriminator(width=width)
    for column in (critic.known_column, critic.hole_column):
        assert [block.conv.out_channels for block in column] == channels
        assert all(block.conv.kernel_size == (4, 4) and block.conv.stride == (2, 2) for block in column)
        assert all(block.conv.bias is not None for block in column)
    assert critic.fusion.in_channels == 2 * channels[-1] and critic.fusion.out_channels == 1


@pytest.mark.parametrize(
    ("norm", "kind"), [("batch", nn.BatchNorm2d), ("instance", nn.InstanceNorm2d), ("none", nn.Identity)]
)
def test_norm_after_all_but_first(norm: str, kind: type) -> None:
    critic = TwoColumnDiscriminator(width=0.0625, norm=norm)
    norms = [block.norm for block in critic.known_column]
    assert isinstance(norms[0], nn.Identity)
    assert all(isinstance(n, kind) for n in norms[1:])
    assert critic(*inputs(2, 128, 128)).shape == (2,)


def test_default_is_paper_batch_norm() -> None:
    assert isinstance(TwoColumnDiscriminator().known_column[1].norm, nn.BatchNorm2d)


def test_columns_see_their_own_region() -> None:
    critic = TwoColumnDiscriminator(width=0.0625).eval()
    image, known = inputs(1, 128, 128)
    other = torch.rand(1, 3, 128, 128)
    # Changing the hole content changes only what the hole column sees.
    changed = image * known + other * (1 - known)
    assert torch.equal(critic.known_column(image * known), critic.known_column(changed * known))
    assert not torch.equal(critic(image, known), critic(changed, known))


def test_no_sigmoid_scores_unbounded() -> None:
    critic = TwoColumnDiscriminator(width=0.0625, norm="none")
    with torch.no_grad():
        critic.fusion.bias.fill_(5.0)
    assert (critic(*inputs(2, 128, 128)) > 1.5).all()


def test_rejects_bad_sizes_and_options() -> None:
    critic = TwoColumnDiscriminator(width=0.0625)
    with pytest.raises(ValueError, match="multiples of 64"):
        critic(*inputs(1, 128, 100))
    with pytest.raises(ValueError, match="at least 128"):
        critic(*inputs(1, 64, 128))
    with pytest.raises(ValueError, match="'group'"):
        TwoColumnDiscriminator(norm="group")


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_wgan_gp_step_trains_critic(norm: str) -> None:
    torch.manual_seed(0)
    critic = TwoColumnDiscriminator(width=0.0625, norm=norm)
    real, known = inputs(2, 128, 128, seed=1)
    fake = torch.rand(2, 3, 128, 128)
    loss = critic_loss(critic(real, known), critic(fake, known)) + 10 * gradient_penalty(
        critic, real, fake, known
    )
    loss.backward()
    grads = [p.grad for p in critic.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert critic.fusion.weight.grad.abs().sum() > 0


def test_patch_critic_scores_only_hole_patches() -> None:
    critic = PatchDiscriminator(width=0.125)
    image, _ = inputs(2, 128, 128)
    known = torch.ones(2, 1, 128, 128)
    known[:, :, 40:80, 40:80] = 0
    scores = critic(image, known)
    assert scores.shape == (2,) and torch.isfinite(scores).all()
    # Pixels far from the hole (further than the 70 px receptive field) do not change the score.
    changed = image.clone()
    changed[:, :, :, 125:] = torch.rand(2, 3, 128, 3)
    changed[:, :, :2, :] = torch.rand(2, 3, 2, 128)
    torch.testing.assert_close(critic(changed, known), scores)
    # Pixels in the hole do.
    filled = image.clone()
    filled[:, :, 50:70, 50:70] = 1 - filled[:, :, 50:70, 50:70]
    assert not torch.allclose(critic(filled, known), scores)


def test_patch_critic_is_hole_weighted_mean_of_patch_scores() -> None:
    critic = PatchDiscriminator(width=0.0625)
    image, known = inputs(1, 64, 96, seed=3)
    patch_scores = critic.layers(torch.cat((image, known), 1))
    assert patch_scores.shape == (1, 1, 6, 10)  # 64/8 - 2, 96/8 - 2: two stride-1 4x4 convs
    hole_share = torch.nn.functional.interpolate(1 - known, size=(6, 10), mode="area")
    expected = (patch_scores * hole_share).sum() / hole_share.sum()
    torch.testing.assert_close(critic(image, known), expected.view(1))


def test_patch_critic_without_hole_scores_zero() -> None:
    critic = PatchDiscriminator(width=0.0625)
    image, _ = inputs(2, 64, 64)
    assert torch.equal(critic(image, torch.ones(2, 1, 64, 64)), torch.zeros(2))


def test_build_critic_names() -> None:
    assert isinstance(build_critic("two_column", 0.0625, "none"), TwoColumnDiscriminator)
    patch = build_critic("patch", 0.25, "instance")
    assert isinstance(patch, PatchDiscriminator) and patch.sees_composite
    assert [m.out_channels for m in patch.modules() if isinstance(m, nn.Conv2d)] == [16, 32, 64, 128, 1]
    with pytest.raises(ValueError, match="critic must be one of two_column, patch"):
        build_critic("global", 1.0, "none")
    with pytest.raises(ValueError, match="multiples of 8 and at least 32"):
        patch(torch.rand(1, 3, 16, 64), torch.ones(1, 1, 16, 64))
    with pytest.raises(ValueError, match="multiples of 8 and at least 32"):
        patch(torch.rand(1, 3, 36, 64), torch.ones(1, 1, 36, 64))


def _period8_share(critic: nn.Module) -> float:
    """How much of the critic's input gradient on a flat grey hole repeats every 8 px (interior only)."""
    image = torch.full((1, 3, 512, 512), 0.5, requires_grad=True)
    critic(image, torch.zeros(1, 1, 512, 512)).sum().backward()
    grad = image.grad[0].sum(0)[128:384, 128:384]
    phases = grad.reshape(32, 8, 32, 8).mean(dim=(0, 2))
    return ((phases - phases.mean()).pow(2).mean().sqrt() / grad.abs().mean()).item()


def test_patch_critic_gradient_has_no_8px_lattice() -> None:
    """A generator learns whatever lattice the critic's gradient has: keep the blur before stride 2."""
    torch.manual_seed(0)
    assert _period8_share(PatchDiscriminator(width=0.25)) < 1e-4
    # The same layout with plain 4x4 stride-2 convs (the first version) repeats every 8 px.
    torch.manual_seed(0)
    aliased = PatchDiscriminator(width=0.25)
    for block in aliased.layers[:3]:
        conv = block.conv
        block.conv = nn.Conv2d(conv.in_channels, conv.out_channels, kernel_size=4, stride=2, padding=1)
        block.down = nn.Identity()
    assert _period8_share(aliased) > 0.3


def test_patch_critic_judges_the_composite() -> None:
    image, known = inputs(2, 64, 64, seed=5)
    output = torch.rand(2, 3, 64, 64, requires_grad=True)
    patch, two_column = PatchDiscriminator(width=0.0625), TwoColumnDiscriminator(width=0.0625)
    judged = critic_input(patch, output, image, known)
    torch.testing.assert_close(judged, output * (1 - known) + image * known)
    assert critic_input(two_column, output, image, known) is output
    # The adversarial term of a patch critic reaches the hole pixels of the output only.
    patch(judged, known).sum().backward()
    assert output.grad is not None
    assert torch.all(output.grad * known == 0) and torch.any(output.grad * (1 - known) != 0)

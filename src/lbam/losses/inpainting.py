"""Generator reconstruction losses of LBAM: hole/valid L1, perceptual, style (and an optional SSIM term).

Definitions (Xie et al. 2019, as in the authors' release; the same as Liu et al. 2018):

- ``hole  = mean(|(1 - M) * (out - gt)|)`` and ``valid = mean(|M * (out - gt)|)``, both means over
  *all* pixels and channels, so a small hole gives a small hole loss;
- ``perceptual = sum_l L1(phi_l(out), phi_l(gt)) + L1(phi_l(comp), phi_l(gt))`` over VGG16 pool1..pool3;
- ``style`` = the same sum on Gram matrices ``G = F F^T / (C * H * W)``;
- ``ssim = 1 - mean SSIM(comp, gt)`` (not in the paper; for recipes without VGG);
- ``tv`` = total variation of ``comp`` on the hole grown by one pixel (Liu et al. 2018's term; not
  in LBAM's release): it damps the checkerboard that transposed convolutions make under
  strong perceptual and style weights;

with ``M`` the known mask (1 = known pixel, 0 = hole), ``comp = out * (1 - M) + gt * M``, and
``L1`` the mean absolute difference. The adversarial term lives in :mod:`lbam.losses.adversarial`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lbam.errors import LbamError
from lbam.imaging.metrics import ssim
from lbam.imaging.pixels import composite

# The weighted terms, in the order of LossConfig's fields.
WEIGHT_NAMES = (
    "hole",
    "valid",
    "perceptual",
    "style",
    "adversarial",
    "gradient_penalty",
    "critic_drift",
    "ssim",
    "tv",
)
FEATURE_PRECISIONS = ("fp32", "bf16")


@dataclass
class LossConfig:
    """The loss weights (the paper's by default) and where the VGG16 features come from.

    ``total = hole*L_hole + valid*L_valid + perceptual*L_perc + style*L_style + ssim*L_ssim``; the
    trainer adds ``adversarial * L_adv``, and ``gradient_penalty`` weighs the critic's WGAN-GP term
    and ``critic_drift`` its drift penalty (:func:`lbam.losses.adversarial.drift_penalty`).
    ``adversarial = 0`` turns the critic off entirely: it is neither built nor trained.
    """

    hole: float = 6.0
    valid: float = 1.0
    perceptual: float = 0.01
    style: float = 120.0
    adversarial: float = 0.1
    gradient_penalty: float = 10.0
    critic_drift: float = 0.0
    ssim: float = 0.0
    tv: float = 0.0
    # The perceptual/style feature network: a torchvision vgg16-397923af.pth (None: torch's hub
    # cache, see lbam.features.vgg), or "stlpips" / "stlpips=PATH": ST-LPIPS's shift-tolerant VGG16.
    vgg_weights: str | None = None
    allow_random_vgg: bool = False  # only for smoke tests: perceptual/style become meaningless
    # The perceptual and style terms see the images resized by this factor: 1 is the paper; 0.5
    # costs a quarter of the feature network's time, which decides a CPU run's speed.
    feature_scale: float = 1.0
    # "bf16" runs the frozen feature network under bfloat16 autocast (channels-last on the CPU):
    # 0.33x to 0.65x the time of a CPU training step's VGG part, gradients within about 1 %.
    feature_precision: str = "fp32"

    def __post_init__(self) -> None:
        for name in WEIGHT_NAMES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise LbamError(f"loss weight losses.{name} must be a number, got {value!r}")
            if not (math.isfinite(value) and value >= 0):  # also rejects NaN and infinity
                raise LbamError(f"loss weight losses.{name} must be a finite number >= 0, got {value!r}")
            setattr(self, name, float(value))
        if not (math.isfinite(self.feature_scale) and 0 < self.feature_scale <= 1):
            raise LbamError(f"losses.feature_scale must be in (0, 1], got {self.feature_scale!r}")
        if self.feature_precision not in FEATURE_PRECISIONS:
            raise LbamError(
                f"losses.feature_precision must be one of {', '.join(FEATURE_PRECISIONS)}, "
                f"got {self.feature_precision!r}"
            )

    @property
    def uses_vgg(self) -> bool:
        return self.perceptual > 0 or self.style > 0

    @property
    def uses_critic(self) -> bool:
        return self.adversarial > 0


def hole_l1(output: Tensor, target: Tensor, known_mask: Tensor) -> Tensor:
    """Mean over all pixels and channels of ``|(1 - known_mask) * (output - target)|``; scalar."""
    return torch.mean(torch.abs((1 - known_mask) * (output - target)))


def valid_l1(output: Tensor, target: Tensor, known_mask: Tensor) -> Tensor:
    """Mean over all pixels and channels of ``|known_mask * (output - target)|``; scalar."""
    return torch.mean(torch.abs(known_mask * (output - target)))


def gram_matrix(features: Tensor) -> Tensor:
    """Gram matrix ``F F^T / (C * H * W)`` of features (B, C, H, W) -> (B, C, C).

    Computed in float32 with autocast off: under mixed precision the sum over H*W overflows fp16.
    """
    b, c, h, w = features.shape
    with torch.autocast(device_type=features.device.type, enabled=False):
        flat = features.float().reshape(b, c, h * w)
        return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def hole_total_variation(comp: Tensor, known_mask: Tensor) -> Tensor:
    """Mean absolute difference of neighbouring pixels of ``comp`` (B, C, H, W) where both lie in
    the hole of ``known_mask`` (B, 1 or C, H, W; 1 = known) grown by one pixel; scalar.

    The hole is grown by a 3x3 max pool, so that the seam between fill and photo counts too.
    """
    region = F.max_pool2d(1 - known_mask[:, :1], kernel_size=3, stride=1, padding=1)
    dx = torch.abs(comp[..., :, 1:] - comp[..., :, :-1]) * region[..., :, 1:] * region[..., :, :-1]
    dy = torch.abs(comp[..., 1:, :] - comp[..., :-1, :]) * region[..., 1:, :] * region[..., :-1, :]
    return dx.mean() + dy.mean()


def perceptual_loss(out_feats: list[Tensor], comp_feats: list[Tensor], gt_feats: list[Tensor]) -> Tensor:
    """``sum_l L1(out_l, gt_l) + L1(comp_l, gt_l)`` over matching feature lists; scalar."""
    total = out_feats[0].new_zeros((), dtype=torch.float32)
    for out_f, comp_f, gt_f in zip(out_feats, comp_feats, gt_feats, strict=True):
        total = total + F.l1_loss(out_f, gt_f).float() + F.l1_loss(comp_f, gt_f).float()
    return total


def style_loss(out_feats: list[Tensor], comp_feats: list[Tensor], gt_feats: list[Tensor]) -> Tensor:
    """``sum_l L1(G(out_l), G(gt_l)) + L1(G(comp_l), G(gt_l))`` with :func:`gram_matrix`; scalar."""
    total = out_feats[0].new_zeros((), dtype=torch.float32)
    for out_f, comp_f, gt_f in zip(out_feats, comp_feats, gt_feats, strict=True):
        gt_gram = gram_matrix(gt_f)
        total = total + F.l1_loss(gram_matrix(out_f), gt_gram) + F.l1_loss(gram_matrix(comp_f), gt_gram)
    return total


class InpaintingLoss(nn.Module):
    """The weighted generator reconstruction loss (everything but the adversarial term).

    Args:
        weights: the term weights (a :class:`LossConfig`); None means the paper's defaults.
        vgg: a frozen feature network returning a list of activations, ``pool1..pool3`` for the
            paper's losses: torchvision's VGG16 (:func:`lbam.features.vgg.load_vgg16`) or ST-LPIPS's
            shift-tolerant VGG16 (:func:`lbam.features.stlpips.load_stlpips_vgg`). Required when
            the perceptual or style weight is non-zero; otherwise it may be None and is never run.

    ``forward(output, target, known_mask)``: output = the generator's raw output (B, 3, H, W) in
    [0, 1], not composited; target = ground truth (B, 3, H, W) in [0, 1]; known_mask
    (B, 1, H, W) or (B, 3, H, W), 1 = known pixel, 0 = hole. Returns a dict of scalar tensors:
    the unweighted terms ``"hole"``, ``"valid"``, and ``"perceptual"``, ``"style"``, ``"tv"``,
    ``"ssim"`` when their weight is non-zero, plus ``"total"`` = their weighted sum.
    """

    def __init__(self, weights: LossConfig | None = None, vgg: nn.Module | None = None) -> None:
        super().__init__()
        self.weights = weights if weights is not None else LossConfig()
        needs_vgg = self.weights.uses_vgg
        if needs_vgg and vgg is None:
            raise LbamError(
                f"the perceptual ({self.weights.perceptual}) and style ({self.weights.style}) loss weights "
                "need VGG16 features; load them with load_vgg16 or set both weights to 0"
            )
        self.vgg = vgg if needs_vgg else None

    def forward(self, output: Tensor, target: Tensor, known_mask: Tensor) -> dict[str, Tensor]:
        if output.shape != target.shape:
            raise ValueError(f"output {tuple(output.shape)} and target {tuple(target.shape)} differ")
        known_mask = known_mask.to(output.dtype)
        comp = composite(output, target, known_mask)
        terms = {
            "hole": hole_l1(output, target, known_mask),
            "valid": valid_l1(output, target, known_mask),
        }
        if self.vgg is not None:
            terms.update(self._feature_terms(output, comp, target))
        if self.weights.tv > 0:
            terms["tv"] = hole_total_variation(comp, known_mask)
        if self.weights.ssim > 0:
            with torch.autocast(device_type=output.device.type, enabled=False):
                terms["ssim"] = 1 - ssim(comp.float(), target.float(), data_range=1.0).mean()
        terms["total"] = sum(getattr(self.weights, name) * value for name, value in terms.items())
        return terms

    def _feature_terms(self, output: Tensor, comp: Tensor, target: Tensor) -> dict[str, Tensor]:
        """The perceptual and style terms (those with a non-zero weight) from one feature network."""
        assert self.vgg is not None
        bf16 = self.weights.feature_precision == "bf16"
        with torch.autocast(output.device.type, dtype=torch.bfloat16, enabled=bf16):
            # One pass for output and composite; the target needs no graph.
            out_and_comp = self.vgg(self._for_features(torch.cat([output, comp])))
            with torch.no_grad():
                gt_feats = self.vgg(self._for_features(target))
        out_feats = [f[: output.shape[0]].float() for f in out_and_comp]
        comp_feats = [f[output.shape[0] :].float() for f in out_and_comp]
        gt_feats = [f.float() for f in gt_feats]
        terms = {}
        if self.weights.perceptual > 0:
            terms["perceptual"] = perceptual_loss(out_feats, comp_feats, gt_feats)
        if self.weights.style > 0:
            terms["style"] = style_loss(out_feats, comp_feats, gt_feats)
        return terms

    def _for_features(self, images: Tensor) -> Tensor:
        scale = self.weights.feature_scale
        if scale == 1:
            return images
        return F.interpolate(images, scale_factor=scale, mode="bilinear", antialias=True, align_corners=False)

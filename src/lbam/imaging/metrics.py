"""Image maths shared by training and evaluation: batched, differentiable metrics.

This module is the neutral home of these functions (kornia's layout): losses, evaluation,
validation and the demo import them from here, and it imports nothing else from lbam.

Every metric takes ``x`` and ``y`` of shape (B, C, H, W) with values in ``[0, data_range]``
(``[0, 1]`` for the package's images) and returns one value per image, a tensor of shape (B,).
They work in the inputs' dtype and device; pass float64 for reference-grade numbers.

``ssim`` is the standard Gaussian-window SSIM (Wang et al., 2004) and reproduces scikit-image's
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=..., channel_axis=...)``: an 11-tap Gaussian (sigma 1.5), statistics only where the
window lies fully inside the image, averaged over those pixels and then over channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_SIGMA = 1.5
SSIM_WINDOW = 11  # scikit-image: 2 * int(truncate * sigma + 0.5) + 1 with truncate 3.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape:
        raise ValueError(f"metric inputs differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.dim() != 4:
        raise ValueError(f"metric inputs must be (B, C, H, W), got shape {tuple(x.shape)}")


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image: (B,)."""
    _check_pair(x, y)
    return (x - y).pow(2).flatten(1).mean(dim=1)


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image over channels and pixels: (B,)."""
    _check_pair(x, y)
    return (x - y).abs().flatten(1).mean(dim=1)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image: ``10 log10(data_range^2 / MSE)``, shape (B,).

    Identical images give ``inf``, as in scikit-image's ``peak_signal_noise_ratio``.
    """
    return 10.0 * torch.log10(data_range**2 / mse(x, y))


def gaussian_window(
    size: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Normalised 1-D Gaussian taps, shape (size,), centred on the middle tap."""
    offsets = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    taps = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return taps / taps.sum()


def _blur_valid(images: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    # Separable Gaussian without padding: the output covers only the pixels whose whole window
    # lies inside the image, which is the region scikit-image averages over.
    channels = images.shape[1]
    size = taps.numel()
    horizontal = taps.view(1, 1, 1, size).expand(channels, 1, 1, size)
    vertical = taps.view(1, 1, size, 1).expand(channels, 1, size, 1)
    images = F.conv2d(images, horizontal, groups=channels)
    return F.conv2d(images, vertical, groups=channels)


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Local SSIM values, shape (B, C, H - 10, W - 10): one per valid window position."""
    _check_pair(x, y)
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {tuple(x.shape[-2:])}"
        )
    taps = gaussian_window(dtype=x.dtype, device=x.device)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    # One blur call for all five statistics keeps the graph small when SSIM is used as a loss.
    stats = _blur_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1), taps)
    mu_x, mu_y, xx, yy, xy = stats.chunk(5, dim=1)
    var_x = xx - mu_x * mu_x
    var_y = yy - mu_y * mu_y
    cov_xy = xy - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return numerator / denominator


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean structural similarity per image, shape (B,); 1 for identical images.

    Mean over valid window positions of each channel, then over channels (equal weights, the same
    as averaging the per-channel values as scikit-image does). Differentiable, so ``1 - ssim`` is
    usable as a loss.
    """
    return ssim_map(x, y, data_range).flatten(1).mean(dim=1)

"""lbam.imaging.metrics: hand-computed values and agreement with scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lbam.imaging.metrics import l1, psnr, ssim
from shared_data import SHARED_DATA

KODAK = SHARED_DATA / "eval" / "kodak24"


def to_tensor(image: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(H, W, 3) -> (1, 3, H, W)."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].to(dtype)


def skimage_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=-1
    )


def test_psnr_of_a_constant_error_of_one_tenth_is_20_db():
    x = torch.full((2, 3, 16, 16), 0.5, dtype=torch.float64)
    # MSE = 0.1^2 = 0.01, so PSNR = 10 log10(1 / 0.01) = 20 dB.
    assert torch.allclose(psnr(x + 0.1, x), torch.full((2,), 20.0, dtype=torch.float64), atol=1e-9)


def test_psnr_l1_of_a_few_known_pixel_errors():
    y = torch.zeros(1, 3, 4, 4, dtype=torch.float64)
    x = y.clone()
    x[0, 0, 0, 0] = 0.5  # squared error 0.25
    x[0, 1, 2, 3] = 0.25  # 0.0625
    x[0, 2, 3, 1] = 1.0  # 1.0
    # 48 values: MSE = 1.3125 / 48 = 0.02734375; PSNR = 10 log10(1 / 0.02734375) = 15.6314... dB
    assert psnr(x, y).item() == pytest.approx(10 * math.log10(48 / 1.3125), abs=1e-12)
    assert psnr(x, y).item() == pytest.approx(15.6314, abs=1e-4)
    # L1 = (0.5 + 0.25 + 1) / 48
    assert l1(x, y).item() == pytest.approx(1.75 / 48, abs=1e-15)
    # On a 0..255 scale the same errors give the same PSNR.
    assert psnr(255 * x, 255 * y, data_range=255.0).item() == pytest.approx(15.6314, abs=1e-4)


def test_psnr_is_per_image_and_infinite_for_identical_images():
    y = torch.rand(2, 3, 12, 12, dtype=torch.float64)
    x = y.clone()
    x[1] += 0.05
    values = psnr(x, y)
    assert values.shape == (2,)
    assert math.isinf(values[0].item())
    assert values[1].item() == pytest.approx(10 * math.log10(1 / 0.0025), abs=1e-9)


@pytest.mark.parametrize("shape", [(32, 32, 3), (23, 41, 3), (11, 11, 3), (64, 48, 3)])
def test_ssim_and_psnr_match_scikit_image_on_random_pairs(shape):
    rng = np.random.default_rng(sum(shape))
    a = rng.random(shape)
    b = np.clip(a + 0.15 * rng.standard_normal(shape), 0, 1)
    assert ssim(to_tensor(a), to_tensor(b)).item() == pytest.approx(skimage_ssim(a, b), abs=1e-10)
    assert ssim(to_tensor(a, torch.float32), to_tensor(b, torch.float32)).item() == pytest.approx(
        skimage_ssim(a, b), abs=1e-4
    )
    assert psnr(to_tensor(a), to_tensor(b)).item() == pytest.approx(
        peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-9
    )


def real_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """A photo against a blurred, a noisy and an inpainted copy of itself."""
    import cv2
    from skimage import data

    image = data.astronaut()[::4, ::4].astype(np.float64) / 255  # 128 x 128
    blurred = cv2.GaussianBlur(image, (5, 5), 1.2)
    noisy = np.clip(image + np.random.default_rng(0).normal(0, 0.05, image.shape), 0, 1)
    hole = np.zeros(image.shape[:2], np.uint8)
    hole[40:90, 30:70] = 255
    inpainted = cv2.inpaint((image * 255).round().astype(np.uint8), hole, 3, cv2.INPAINT_TELEA) / 255.0
    pairs = [(image, blurred), (image, noisy), (image, inpainted)]
    if KODAK.is_dir():
        kodak = cv2.imread(str(KODAK / "kodim23.png"))[::4, ::4, ::-1].astype(np.float64) / 255
        pairs.append((kodak, cv2.GaussianBlur(kodak, (3, 3), 0.8)))
    return pairs


def test_ssim_matches_scikit_image_on_real_images():
    for a, b in real_pairs():
        expected = skimage_ssim(a, b)
        assert 0.2 < expected < 0.999  # a meaningful, non-trivial comparison
        assert ssim(to_tensor(a), to_tensor(b)).item() == pytest.approx(expected, abs=1e-10)


def test_float32_ssim_of_8_bit_images_is_within_1e_5_of_scikit_image():
    # The evaluation computes SSIM in float32 for speed.
    for a, b in real_pairs():
        a8, b8 = np.round(a * 255) / 255, np.round(b * 255) / 255
        value = ssim(to_tensor(a8, torch.float32), to_tensor(b8, torch.float32)).item()
        assert value == pytest.approx(skimage_ssim(a8, b8), abs=1e-5)


def test_ssim_batch_equals_single_images_and_is_one_for_identical_images():
    x = torch.rand(3, 3, 20, 24, dtype=torch.float64)
    y = torch.rand(3, 3, 20, 24, dtype=torch.float64)
    batch = ssim(x, y)
    singles = torch.stack([ssim(x[i : i + 1], y[i : i + 1])[0] for i in range(3)])
    assert torch.allclose(batch, singles, atol=1e-12)
    assert torch.allclose(ssim(x, x), torch.ones(3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(ssim(x, y), ssim(y, x), atol=1e-12)


def test_ssim_is_differentiable_and_its_gradient_improves_it():
    target = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    x = (target + 0.2 * torch.randn_like(target)).clamp(0, 1).requires_grad_(True)
    value = ssim(x, target)
    value.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    stepped = (x + 0.5 * x.grad / x.grad.abs().max()).detach()
    assert ssim(stepped, target).item() > value.item()


def test_metrics_reject_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        psnr(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
    with pytest.raises(ValueError, match="B, C, H, W"):
        l1(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 3, 10, 30), torch.zeros(1, 3, 10, 30))

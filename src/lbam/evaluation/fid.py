"""FID (Heusel et al., 2017): the Fréchet distance between Gaussians fitted to Inception-v3 features.

The feature network is the Inception-v3 of the original TensorFlow FID code as ported to PyTorch
by pytorch-fid, weights file ``pt_inception-2015-12-05-6726825d.pth`` (a plain state_dict with
torchvision-style names, plus a 1008-class ``fc`` that FID does not use). It does not ship with
lbam; the user supplies it. The network differs from torchvision's ImageNet Inception-v3 in two
places that change the numbers, so that classifier's weights are refused:

- the 3x3 average pools inside the InceptionA, InceptionC and InceptionE blocks leave the zero
  padding out of the average (``count_include_pad=False``);
- the last block (``Mixed_7c``) max-pools instead of average-pools in its pool branch.

Input: RGB in [0, 1], any size, bilinearly resized to 299 x 299 and mapped to [-1, 1]. Features:
the 2048 channels of the last block averaged over space.

FID of two feature sets: ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))`` with means mu
and covariances S. It is biased upwards for small sets (the bias shrinks like 1 / count), so FIDs
are only comparable between sets of equal size.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from torch import Tensor, nn

from lbam.errors import LbamError
from lbam.model.loading import load_state_strict
from lbam.utils.weights import as_state_dict, load_pth

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FEATURE_DIM = 2048
INPUT_SIZE = 299
FC_CLASSES = 1008  # the 2015 TensorFlow graph's classifier; present in the file, unused for FID


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001), ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _average_pool(x: Tensor) -> Tensor:
    # The TensorFlow graph averages only the pixels inside the image at the borders.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35 x 35 block: 1x1, 5x5, double 3x3 and pool branches; 224 + ``pool_features`` channels out."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(_average_pool(x))
        return torch.cat([branch1x1, branch5x5, branch3x3dbl, branch_pool], 1)


class InceptionB(nn.Module):
    """35 -> 17 reduction: strided 3x3, strided double 3x3 and max-pool; 480 + ``in_channels`` out."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        branch3x3 = self.branch3x3(x)
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([branch3x3, branch3x3dbl, branch_pool], 1)


class InceptionC(nn.Module):
    """17 x 17 block with factorised 7x7 convolutions of ``channels_7x7`` channels; 768 out."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        branch1x1 = self.branch1x1(x)
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = x
        for i in range(1, 6):
            branch7x7dbl = getattr(self, f"branch7x7dbl_{i}")(branch7x7dbl)
        branch_pool = self.branch_pool(_average_pool(x))
        return torch.cat([branch1x1, branch7x7, branch7x7dbl, branch_pool], 1)


class InceptionD(nn.Module):
    """17 -> 8 reduction: 3x3 and 7x7-then-3x3 strided branches and max-pool; 512 + ``in_channels`` out."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = x
        for i in range(1, 5):
            branch7x7x3 = getattr(self, f"branch7x7x3_{i}")(branch7x7x3)
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([branch3x3, branch7x7x3, branch_pool], 1)


class InceptionE(nn.Module):
    """8 x 8 block with split 1x3 / 3x1 outputs; 2048 channels out.

    Args:
        max_pool: max-pool (3x3, stride 1, padding 1) in the pool branch instead of the average;
            the FID network does so in its last block only.
    """

    def __init__(self, in_channels: int, max_pool: bool = False) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        branch1x1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        b3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(b3dbl), self.branch3x3dbl_3b(b3dbl)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _average_pool(x)
        branch_pool = self.branch_pool(pooled)
        return torch.cat([branch1x1, branch3x3, branch3x3dbl, branch_pool], 1)


class FIDInceptionV3(nn.Module):
    """``forward(images)``: images (B, 3, H, W) in [0, 1], any H and W -> features (B, 2048), >= 0.

    Module names follow torchvision's Inception3 so the FID weights file loads by its own keys.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool1 = nn.MaxPool2d(3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.maxpool2 = nn.MaxPool2d(3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048, max_pool=True)

    def forward(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"FID Inception needs (B, 3, H, W) images, got {tuple(images.shape)}")
        x = F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        for module in self.children():
            x = module(x)
        return x.mean(dim=(2, 3))


def _read_state(path: Path) -> dict[str, Tensor]:
    loaded = load_pth(path, "FID weights", hint=f"pytorch-fid's {WEIGHTS_FILE}")
    return as_state_dict(loaded, path, contents=f"the FID Inception-v3 ({WEIGHTS_FILE})")


def load_fid_inception(path: str | Path, device: str | torch.device = "cpu") -> FIDInceptionV3:
    """The FID network with pytorch-fid's weights file, in eval mode; LbamError naming a bad key."""
    path = Path(path).expanduser()
    state = _read_state(path)
    if any(key.startswith("AuxLogits.") for key in state):
        raise LbamError(
            f"{path}: an ImageNet Inception-v3 classifier (it has AuxLogits.* keys), not the FID network "
            f"{WEIGHTS_FILE}"
        )
    fc = state.get("fc.weight")
    if fc is not None and tuple(fc.shape) != (FC_CLASSES, FEATURE_DIM):
        raise LbamError(
            f"{path}: 'fc.weight' has shape {list(fc.shape)}, the FID network's is [{FC_CLASSES}, {FEATURE_DIM}]: "
            f"not {WEIGHTS_FILE}"
        )
    model = FIDInceptionV3()
    state = {key: value for key, value in state.items() if not key.startswith("fc.")}
    # Files saved before torch 0.4.1 have no batch-norm batch counters; eval mode never reads them.
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, value)

    load_state_strict(model, state, f"FID weights {path}")
    return model.requires_grad_(False).eval().to(device)


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D), float64, of features (N, D) with N >= 2."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"feature statistics need an (N >= 2, D) array, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2); means (D,), covariances (D, D).

    The matrix square root is scipy's ``sqrtm``. When it is not finite (singular covariances),
    ``eps`` is added to both diagonals and it is taken again; a complex result whose diagonal has an
    imaginary part above 1e-3 raises ValueError, a smaller one is rounding and is dropped. A
    distance that is still not finite raises ValueError.
    """

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    dim = mu1.shape[0]
    if mu2.shape != (dim,) or sigma1.shape != (dim, dim) or sigma2.shape != (dim, dim):
        raise ValueError(
            f"means and covariances disagree: {mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}"
        )
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # Singular products are expected (fewer samples than dimensions) and handled below.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(dim) * eps
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imaginary = float(np.abs(np.diagonal(covmean).imag).max())
        if imaginary > 1e-3:
            raise ValueError(f"the covariance product's square root has an imaginary part of {imaginary:.3g}")
        covmean = covmean.real
    diff = mu1 - mu2
    distance = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))
    if not math.isfinite(distance):
        raise ValueError("the Fréchet distance is not finite (non-finite features or covariances)")
    return distance


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID of two feature sets (N1, D) and (N2, D), N1, N2 >= 2.

    With fewer samples than dimensions in both sets (a few hundred pairs against 2048 features)
    the covariances are singular and ``sqrtm`` of their D x D product is slow (about 16 s for
    D = 2048 on one core) and ill-conditioned. Then the same number comes from the centred features
    A, B: the non-zero eigenvalues of S1 S2 are the squared singular values of
    A B^T / sqrt((N1 - 1)(N2 - 1)), so tr((S1 S2)^(1/2)) is the sum of those singular values.
    Otherwise :func:`frechet_distance` of the fitted Gaussians.
    """
    a = np.asarray(features1, dtype=np.float64)
    b = np.asarray(features2, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"FID needs two (N >= 2, D) feature arrays, got shapes {a.shape} and {b.shape}")
    n1, n2, dim = len(a), len(b), a.shape[1]
    if n1 >= dim or n2 >= dim:
        return frechet_distance(*feature_statistics(a), *feature_statistics(b))
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    centred1, centred2 = a - mu1, b - mu2
    trace1 = float((centred1**2).sum()) / (n1 - 1)
    trace2 = float((centred2**2).sum()) / (n2 - 1)
    singular = np.linalg.svd(centred1 @ centred2.T, compute_uv=False)
    trace_covmean = float(singular.sum()) / math.sqrt((n1 - 1) * (n2 - 1))
    diff = mu1 - mu2
    distance = float(diff @ diff + trace1 + trace2 - 2 * trace_covmean)
    if not math.isfinite(distance):
        raise ValueError("FID is not finite (non-finite features)")
    return distance

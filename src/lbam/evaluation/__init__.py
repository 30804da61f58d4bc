"""Evaluation: image metrics (:mod:`.metrics`), the NVIDIA-bin protocol (:mod:`.protocol`), methods
(:mod:`.methods`), LPIPS (:mod:`.lpips`), the report (:mod:`.report`) and the run (:mod:`.evaluate`).

Only the metrics are imported here, so ``from lbam.evaluation import ssim`` stays light.
"""

from lbam.imaging.metrics import l1, psnr, ssim

__all__ = ["l1", "psnr", "ssim"]

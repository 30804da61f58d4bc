"""lbam: image inpainting with Learnable Bidirectional Attention Maps (Xie et al., ICCV 2019).

Public API (stable):

- :func:`lbam.load_model` -- a generator ``nn.Module`` in eval mode from a file or a packaged name;
  ``model(image, known_mask)`` takes image (B,3,H,W) in [0,1] and known_mask (B,1,H,W), 1 = known,
  H and W multiples of 128, and returns the raw output (B,3,H,W) in [0,1], not composited.
- :func:`lbam.inpaint` -- a PIL image or HxWx3 uint8 array in, the same type out; in its mask
  white / non-zero / True marks the hole.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "inpaint", "load_model"]

if TYPE_CHECKING:
    from lbam.inference.pipeline import inpaint
    from lbam.model.loading import load_model


def __getattr__(name: str) -> Any:
    # Lazy so that `import lbam` (and `lbam --help`) do not pay for importing torch.
    if name == "load_model":
        from lbam.model.loading import load_model

        return load_model
    if name == "inpaint":
        from lbam.inference.pipeline import inpaint

        return inpaint
    raise AttributeError(f"module 'lbam' has no attribute {name!r}")

"""lbam: image inpainting with Learnable Bidirectional Attention Maps (Xie et al., ICCV 2019).

Public API (stable):

- :func:`lbam.inpaint` -- a PIL image or HxWx3 uint8 array in, the same type out; in its mask
  white / non-zero / True marks the hole. Options: :class:`lbam.InpaintOptions`.
- :func:`lbam.load_model` -- a generator ``nn.Module`` in eval mode from a file or a packaged name;
  ``model(image, known_mask)`` takes image (B,3,H,W) in [0,1] and known_mask (B,1,H,W), 1 = known,
  H and W multiples of 128, and returns the raw output (B,3,H,W) in [0,1], not composited.
- :func:`lbam.save_model` -- write a generator to a safetensors file that ``load_model`` reads.
- :func:`lbam.optimize` -- a faster module with the same contract (bf16, torch.compile, or the
  backend measured fastest here: ONNX Runtime, OpenVINO, ...).
- :func:`lbam.build_generator` -- a fresh generator of a registered architecture (``lbam``, ``pconv``).
- :func:`lbam.train`, :func:`lbam.load_train_config` -- training, as ``lbam train`` runs it.
- :class:`lbam.LbamError` -- the one exception for bad input; its message is one line.

The heavy parts (torch) load on first use, so ``import lbam`` and ``lbam --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lbam._version import __version__
from lbam.defaults import DEFAULT_MODEL
from lbam.errors import LbamError
from lbam.options import InpaintOptions

# name -> the module that defines it; imported when the name is first used.
_LAZY = {
    "inpaint": "lbam.inference.pipeline",
    "load_model": "lbam.model.loading",
    "save_model": "lbam.model.loading",
    "build_generator": "lbam.model.registry",
    "optimize": "lbam.inference.optimize",
    "train": "lbam.training.trainer",
    "load_train_config": "lbam.training.config",
}

__all__ = ["DEFAULT_MODEL", "InpaintOptions", "LbamError", "__version__", *_LAZY]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports them
    from lbam.inference.optimize import optimize  # noqa: F401
    from lbam.inference.pipeline import inpaint  # noqa: F401
    from lbam.model.loading import load_model, save_model  # noqa: F401
    from lbam.model.registry import build_generator  # noqa: F401
    from lbam.training.config import load_train_config  # noqa: F401
    from lbam.training.trainer import train  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'lbam' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

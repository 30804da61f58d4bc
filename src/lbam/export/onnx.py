"""Export a generator to ONNX with dynamic batch, height and width."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from lbam.utils.files import atomic_path

# One 128-px tile would make the bottleneck 1x1, which the exporter specialises on; start at two.
MIN_TILES = 2
MAX_TILES = 64


def export_onnx(model: nn.Module, path: str | os.PathLike, opset: int = 18, quiet: bool = False) -> Path:
    """Write ``model`` as ONNX; inputs ``image`` (B,3,H,W) and ``known_mask`` (B,1,H,W), output ``output``.

    The graph accepts any batch and any H, W that are multiples of ``model.size_multiple`` from
    ``2 * size_multiple`` (256 px for LBAM) up to ``64 * size_multiple``. ``quiet``: without the
    exporter's progress lines and warnings (an export made on the side, e.g. for a backend).
    """
    model = model.eval()
    multiple = model.size_multiple
    side = MIN_TILES * multiple
    example = (torch.rand(1, 3, side, side + multiple), torch.ones(1, 1, side, side + multiple))
    batch = torch.export.Dim("batch", max=1024)
    tiles_h = torch.export.Dim("tiles_h", min=MIN_TILES, max=MAX_TILES)
    tiles_w = torch.export.Dim("tiles_w", min=MIN_TILES, max=MAX_TILES)
    dims = {0: batch, 2: multiple * tiles_h, 3: multiple * tiles_w}
    path = Path(path)
    with atomic_path(path) as tmp, _hushed(quiet):
        torch.onnx.export(
            model,
            example,
            str(tmp),
            input_names=["image", "known_mask"],
            output_names=["output"],
            dynamo=True,
            opset_version=opset,
            dynamic_shapes={"image": dims, "known_mask": dims},
            external_data=False,
            verbose=not quiet,
        )
    return path


@contextlib.contextmanager
def _hushed(quiet: bool) -> Iterator[None]:
    if not quiet:
        yield
        return
    torch_log = logging.getLogger("torch")
    level = torch_log.level
    torch_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        torch_log.setLevel(level)

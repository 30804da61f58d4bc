"""Input checks shared by the generators."""

from __future__ import annotations

from torch import Tensor

from lbam.errors import LbamError


def check_multiple(name: str, image: Tensor, multiple: int) -> None:
    """LbamError unless the image's height and width are multiples of ``multiple``."""
    height, width = image.shape[-2:]
    if height % multiple or width % multiple:
        raise LbamError(
            f"{name} needs H and W to be multiples of {multiple}, got {height}x{width}; "
            "pad the input (lbam.inpaint does this for you)"
        )

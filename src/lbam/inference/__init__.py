"""Inference: inpaint photos of any size and format with a generator.

- :func:`inpaint` -- the public entry point (also ``lbam.inpaint``): a PIL image or array in, the same out.
- :func:`inpaint_picture`, :class:`InpaintOptions`, :class:`InpaintReport` -- the core on decoded pixels.
- :func:`inpaint_file`, :func:`inpaint_folder` -- files and folders (the ``lbam inpaint`` command).
- :func:`read_image`, :func:`write_image`, :class:`Picture`, :func:`read_mask` -- image and mask files.
"""

from lbam.imaging.io import Picture, read_image, write_image
from lbam.imaging.masks import as_hole, prepare_hole, read_mask
from lbam.inference.batch import FileResult, FolderSummary, inpaint_file, inpaint_folder
from lbam.inference.pipeline import (
    InpaintReport,
    get_model,
    inpaint,
    inpaint_picture,
)

__all__ = [
    "FileResult",
    "FolderSummary",
    "InpaintReport",
    "Picture",
    "as_hole",
    "get_model",
    "inpaint",
    "inpaint_file",
    "inpaint_folder",
    "inpaint_picture",
    "prepare_hole",
    "read_image",
    "read_mask",
    "write_image",
]

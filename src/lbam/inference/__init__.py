"""Inference: inpaint photos of any size and format with a generator.

- :func:`lbam.inference.pipeline.inpaint` -- the public entry point (also ``lbam.inpaint``): a PIL
  image or array in, the same out; :func:`~lbam.inference.pipeline.inpaint_picture` -- the core on
  decoded pixels.
- :mod:`lbam.inference.batch` -- files and folders (the ``lbam inpaint`` command).
- :mod:`lbam.inference.optimize` -- a faster generator with the same contract (``lbam.optimize``).
- :mod:`lbam.inference.shard` -- splitting a folder over torchrun processes.

Image and mask files are read and written by :mod:`lbam.imaging`.
"""

from lbam.inference.batch import FileResult, FolderSummary, inpaint_file, inpaint_folder
from lbam.inference.pipeline import InpaintReport, get_model, inpaint, inpaint_picture

__all__ = [
    "FileResult",
    "FolderSummary",
    "InpaintReport",
    "get_model",
    "inpaint",
    "inpaint_file",
    "inpaint_folder",
    "inpaint_picture",
]

"""The package's defaults and fixed choice lists, in one module that imports nothing.

Low layers (model loading, image reading) and high ones (the options, the command line, the
server) read these names from here, so no layer imports a higher one for a constant.
"""

from __future__ import annotations

DEFAULT_MODEL = "lbam-compact"
# The side of the training crops of a generator whose file does not say: the LBAM paper's 256 px
# (the authors' releases, and lbam files written before the metadata existed).
DEFAULT_TRAIN_SIZE = 256
# The largest photo or mask lbam decodes unless told otherwise: 144 Mpx (12000 x 12000), about
# 430 MB of 8-bit RGB, past any camera's photo and far below what would exhaust a workstation.
DEFAULT_MAX_PIXELS = 144_000_000
# How a model runs (lbam.optimize, --precision): auto = bfloat16 where the device has it natively.
PRECISIONS = ("auto", "fp32", "bf16")
# The engines that can run a generator (lbam.inference.backends, --backend); auto = measured.
BACKENDS = ("eager", "eager-bf16", "inductor", "inductor-bf16", "onnxruntime", "openvino")
BACKEND_CHOICES = ("auto", *BACKENDS)
STRATEGIES = ("auto", "fit", "full", "crop", "resize")
# How a fill meets the photo (lbam.inference.pipeline.blend_fill).
BLENDS = ("harmonic", "paste")
# What follows the network (lbam.inference.pipeline.refine_fill): texture = patches of the photo
# laid out as the network's fill (lbam.imaging.exemplar.texture_fill), none = the network alone.
REFINES = ("texture", "none")

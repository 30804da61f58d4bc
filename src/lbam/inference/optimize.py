"""A faster generator with the same contract: ``lbam.optimize(model, precision, compile)``.

- ``compile``: ``torch.compile`` with inductor and weight freezing (the weights become constants of
  the compiled graph; given per call, so a compile cache of another setting is never taken for it),
  with inductor's cache under the lbam cache folder so a second process starts warm. Where
  compilation is unavailable (no C compiler, an unsupported platform) the first call says so in
  one line and the module runs eagerly from then on.
- ``precision="bf16"``: weights and inputs in bfloat16 where the device supports it (CPUs with
  AVX-512 BF16 or AMX, CUDA with bf16), output back in float32; elsewhere a one-line notice and
  float32.

Every engine here runs channels-last (:data:`MEMORY_FORMAT`). Measured on a 2-core AMD EPYC with
AVX512-BF16 (``python benchmarks/inference.py --modes``, docs/benchmarks.md), width 1 and the
compact model at 256 and 512 px: eager bfloat16 takes 0.46x to 0.62x of eager float32's time with
the output 58 to 64 dB from float32's; compiled float32 0.61x to 0.79x, compiled bfloat16 0.36x to
0.55x. Every new input shape compiles again: 10 to 17 s with an empty cache, 2 to 3 s with the cache
of an earlier process (in an earlier test, ``dynamic=True`` still recompiled for three sizes before
it generalised, so shapes are bucketed instead). The default strategy (``fit``) gives the model
windows of only three shapes, 256x256, 256x128 and 128x256 for a model trained at 256 px (tested in
tests/test_inference_crop.py), so on photos of 256 px and more a compiled model compiles at most
three times; :func:`warm_up` runs them ahead (``lbam serve`` does so at start). Whether compiling,
bfloat16 or an exported engine (ONNX Runtime, OpenVINO) is fastest depends on the CPU:
``optimize(model, backend="auto")`` measures them (:mod:`lbam.inference.backends`), and folder runs
of ``lbam inpaint`` and ``lbam serve`` do so by default (``--backend``).
"""

from __future__ import annotations

import copy
import os
import sys
from dataclasses import replace

import torch
from torch import Tensor, nn

from lbam.defaults import PRECISIONS
from lbam.errors import LbamError
from lbam.model.card import PRECISION_NAMES, Generator, GeneratorCard, card_of
from lbam.model.catalog import cache_dir
from lbam.utils.device import bf16_supported

# oneDNN's convolutions run on channels-last tensors without reordering them: width 1 at 256 px
# took 0.45x of eager float32's time compiled in bfloat16 this way, 0.61x in the default layout.
MEMORY_FORMAT = torch.channels_last


class OptimizedGenerator(Generator):
    """``model(image, known_mask)`` run in ``dtype``, compiled when asked; float32 output.

    Its card is the wrapped generator's with the precision it computes in.
    """

    def __init__(self, model: Generator, dtype: torch.dtype, compile: bool) -> None:
        inner_card = card_of(model)
        super().__init__(inner_card.train_size)
        # A copy: the caller's model (perhaps a cached one) keeps its dtype and memory format.
        self.inner = copy.deepcopy(model).to(dtype).to(memory_format=MEMORY_FORMAT).eval()
        self.dtype = dtype
        self.size_multiple = inner_card.size_multiple
        self.config = model.config
        self.compiled = None
        if compile:
            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir() / "inductor"))
            self.compiled = torch.compile(self.inner, backend="inductor", options={"freezing": True})

    @property
    def card(self) -> GeneratorCard:
        return replace(self.inner.card, precision=PRECISION_NAMES[str(self.dtype)])

    def forward(self, image: Tensor, known_mask: Tensor) -> Tensor:
        image = image.to(self.dtype, memory_format=MEMORY_FORMAT)
        known_mask = known_mask.to(self.dtype, memory_format=MEMORY_FORMAT)
        with torch.no_grad():
            if self.compiled is not None:
                try:
                    return self.compiled(image, known_mask).float().contiguous()
                except Exception as error:  # compiler missing or broken: say it once, run eagerly
                    print(
                        f"lbam: note: compiling the model failed ({type(error).__name__}); running it uncompiled",
                        file=sys.stderr,
                    )
                    self.compiled = None
            return self.inner(image, known_mask).float().contiguous()


def optimize(
    model: nn.Module, precision: str = "fp32", compile: bool = True, backend: str | None = None
) -> nn.Module:
    """``model`` made faster for inference (see the module doc); same inputs, float32 output.

    ``precision``: "fp32", "bf16" (float32 with a one-line notice where the device has no fast
    bfloat16), or "auto" (bfloat16 where the device has it, silently float32 elsewhere). Returns
    ``model`` itself when that leaves nothing to do (float32, not compiled).

    ``backend``: run on an engine instead (:mod:`lbam.inference.backends`): "auto" measures the
    candidates on first use for this machine, model and input size and keeps the fastest one within
    tolerance (bfloat16 ones only when ``precision`` is not "fp32"); a name ("onnxruntime",
    "openvino", "inductor", ...) takes that one. ``compile`` is then ignored.

    Raises:
        LbamError: an unknown precision or backend.
    """
    if precision not in PRECISIONS:
        raise LbamError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if backend is not None:
        from lbam.inference.backends import BackendGenerator

        return BackendGenerator(model, backend, bf16=precision != "fp32")
    device = next(model.parameters()).device
    dtype = torch.float32
    if precision != "fp32":
        if bf16_supported(device):
            dtype = torch.bfloat16
        elif precision == "bf16":
            print(f"lbam: note: {device} has no fast bfloat16; running in float32", file=sys.stderr)
    if dtype == torch.float32 and not compile:
        return model
    return OptimizedGenerator(model, dtype, compile)


def warm_up(model: nn.Module, device: torch.device | str = "cpu") -> None:
    """Run ``model`` once on each window shape the default strategy gives it, so that compiling
    happens before the first request (see tests/test_inference_crop.py for the shapes)."""
    card = card_of(model)
    multiple = card.size_multiple
    top = -(-card.train_size // multiple) * multiple
    shapes = {(top, side) for side in range(multiple, top + 1, multiple)}
    with torch.inference_mode():  # as the pipeline runs it: the compiled graphs are guarded on it
        for height, width in sorted(shapes | {(w, h) for h, w in shapes}):
            model(
                torch.zeros(1, 3, height, width, device=device),
                torch.ones(1, 1, height, width, device=device),
            )

"""Inpainting methods under one interface, so that every method sees exactly the same input.

A method has a ``name`` (its row in the tables) and
``inpaint(image, known_mask) -> result``:

- image: (H, W, 3) float32 in [0, 1]; the evaluation zeroes its hole pixels first, so no method
  can see the ground truth it is scored against.
- known_mask: (H, W) bool, True = known pixel, False = hole.
- result: (H, W, 3) float32 in [0, 1], already composited: known pixels equal ``image``.

Specs accepted by :func:`make_method`: ``telea`` and ``ns`` (OpenCV's ``cv2.inpaint``, on 8-bit
images, radius 3 by default), ``biharmonic`` (scikit-image), ``patchmatch`` (exemplar synthesis,
:mod:`lbam.imaging.exemplar`), ``lbam:PATH_OR_NAME`` and
``pconv:PATH`` (a generator file loaded with :func:`lbam.model.loading.load_model`; bare ``lbam``
means the default packaged model). A generator runs in one pass over the whole image unless the
spec names ``@STRATEGY`` (``lbam:lbam-compact@fit``): then it runs as ``lbam inpaint
--strategy STRATEGY`` does. Its fill meets the photo as ``lbam inpaint``'s default ``--blend
harmonic`` has it, unless the spec ends in ``+paste`` (``lbam:lbam-compact+paste``,
``lbam:lbam-compact@fit+paste``): the raw output, as lbam 0.1 pasted it. The network's fill is
measured alone (the paper's protocol, ``lbam inpaint --refine none``) unless the spec has
``+texture`` (``lbam:lbam-compact@fit+texture``): then the texture stage follows it, as in
``lbam inpaint``'s default.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from skimage.restoration import inpaint_biharmonic

from lbam.defaults import BLENDS, DEFAULT_MODEL, REFINES
from lbam.errors import LbamError
from lbam.imaging.classical import classical_fill
from lbam.imaging.io import picture_from_array, picture_to_array
from lbam.imaging.pixels import composite, to_uint8
from lbam.inference.pipeline import inpaint_picture, predict
from lbam.model.loading import load_model
from lbam.options import InpaintOptions

CLASSICAL = ("telea", "ns", "biharmonic", "patchmatch")
GENERATOR_KINDS = ("lbam", "pconv")
KNOWN_SPECS = (
    "telea, ns, biharmonic, patchmatch, lbam:PATH_OR_NAME[@STRATEGY][+texture][+BLEND], "
    "pconv:PATH[@STRATEGY][+texture][+BLEND]"
)


@runtime_checkable
class Method(Protocol):
    """Anything with a ``name`` and ``inpaint(image (H,W,3) float [0,1], known_mask (H,W) bool, True = known)``."""

    name: str

    def inpaint(self, image: np.ndarray, known_mask: np.ndarray) -> np.ndarray: ...


def fill_holes(output: np.ndarray, image: np.ndarray, known_mask: np.ndarray) -> np.ndarray:
    """A method's result: ``output`` in the holes, ``image`` elsewhere; known_mask (H, W) bool, True = known."""
    return composite(output.astype(np.float32), image.astype(np.float32), known_mask[..., None])


class OpenCVInpaint:
    """``cv2.inpaint`` with the Telea (fast marching) or Navier-Stokes algorithm, on 8-bit RGB."""

    def __init__(self, algorithm: str, radius: float = 3.0) -> None:
        if algorithm not in ("telea", "ns"):
            raise LbamError(f"unknown OpenCV inpainting algorithm {algorithm!r}; known: telea, ns")
        if not radius > 0:
            raise LbamError(f"inpainting radius must be positive, got {radius}")
        self.name = algorithm
        self._radius = float(radius)

    def inpaint(self, image: np.ndarray, known_mask: np.ndarray) -> np.ndarray:
        filled = classical_fill(to_uint8(image), ~known_mask, self.name, self._radius)
        return fill_holes(filled, image, known_mask)


class Biharmonic:
    """scikit-image's biharmonic inpainting (``skimage.restoration.inpaint_biharmonic``), per channel."""

    name = "biharmonic"

    def inpaint(self, image: np.ndarray, known_mask: np.ndarray) -> np.ndarray:

        filled = inpaint_biharmonic(image.astype(np.float64), ~known_mask, channel_axis=-1)
        return fill_holes(np.clip(filled, 0.0, 1.0), image, known_mask)


class PatchMatchInpaint:
    """PatchMatch (Barnes et al. 2009): the hole filled with patches of the photo itself
    (:func:`lbam.imaging.exemplar.patchmatch_fill`, patch size 5, seed 0): the exemplar anchor."""

    name = "patchmatch"

    def inpaint(self, image: np.ndarray, known_mask: np.ndarray) -> np.ndarray:
        return fill_holes(classical_fill(to_uint8(image), ~known_mask, "patchmatch"), image, known_mask)


class GeneratorMethod:
    """A trained generator (LBAM or PConv) applied to one image at a time.

    Sizes that are not multiples of ``model.size_multiple`` are padded and cropped back exactly as
    ``lbam inpaint`` does (:func:`lbam.inference.pipeline.run_model`).
    """

    def __init__(
        self,
        model,
        name: str,
        device: str = "cpu",
        strategy: str = "full",
        blend: str | None = None,
        refine: str = "none",
    ) -> None:
        self.model = model.to(device)
        self.name = name
        self.device = device
        # blend None: lbam inpaint's default, so the two never drift apart; refine "none" keeps the
        # paper's protocol a measure of the network
        self.options = InpaintOptions(strategy=strategy, refine=refine, **({"blend": blend} if blend else {}))

    def inpaint(self, image: np.ndarray, known_mask: np.ndarray) -> np.ndarray:
        if self.options.strategy == "full":
            output = predict(self.model, image.astype(np.float32), ~known_mask, None, self.options)
            return fill_holes(np.clip(output, 0.0, 1.0), image, known_mask)
        # Other strategies work on the photo's own 8-bit pixels, as lbam inpaint does.
        pixels = to_uint8(image)
        picture, _ = inpaint_picture(picture_from_array(pixels), ~known_mask, self.model, self.options)
        filled = picture_to_array(picture).astype(np.float32) / 255.0
        return fill_holes(filled, image, known_mask)


def parse_method_list(text: str) -> list[str]:
    """``"telea,lbam:x.safetensors"`` -> ``["telea", "lbam:x.safetensors"]``; LbamError if empty."""
    specs = [part.strip() for part in text.split(",") if part.strip()]
    if not specs:
        raise LbamError(f"no methods given (--methods {text!r}); known: {KNOWN_SPECS}")
    return specs


def _generator_label(kind: str, target: str) -> str:
    path = Path(target)
    return f"{kind}:{path.stem}" if path.suffix in (".safetensors", ".pth", ".pt") else f"{kind}:{target}"


def _suffixes(spec: str) -> tuple[str, str | None, str]:
    """``"lbam:x@fit+texture+paste"`` -> ``("lbam:x@fit", "paste", "texture")``: the blend and refine."""
    blend, refine = None, "none"
    while "+" in spec:
        spec, _, suffix = spec.rpartition("+")
        if suffix in BLENDS and blend is None:
            blend = suffix
        elif suffix in REFINES and refine == "none":
            refine = suffix
        else:
            raise LbamError(f"unknown suffix +{suffix} in method {spec}+{suffix}; known: {KNOWN_SPECS}")
    return spec, blend, refine


def make_method(spec: str, device: str = "cpu", radius: float = 3.0) -> Method:
    """Build the method a spec names (see the module docstring); LbamError for an unknown spec."""
    spec, blend, refine = _suffixes(spec)
    spec, at, strategy = spec.partition("@")
    kind, sep, target = spec.partition(":")
    if not sep and kind in CLASSICAL:
        if kind == "biharmonic":
            return Biharmonic()
        if kind == "patchmatch":
            return PatchMatchInpaint()
        return OpenCVInpaint(kind, radius)
    if kind in GENERATOR_KINDS:
        if not target:
            if kind == "pconv":
                raise LbamError("method 'pconv' needs a weights file: pconv:PATH")
            target = DEFAULT_MODEL

        model = load_model(target, device=device)
        architecture = model.card.architecture
        if architecture != kind:
            raise LbamError(
                f"{target} holds a {architecture} generator, not {kind}: use {architecture}:{target}"
            )
        label = _generator_label(kind, target) + (f"@{strategy}" if at else "")
        label += (f"+{refine}" if refine != "none" else "") + (f"+{blend}" if blend else "")
        return GeneratorMethod(model, label, device, strategy if at else "full", blend, refine)
    raise LbamError(f"unknown method {spec!r}; known: {KNOWN_SPECS}")


def make_methods(specs: Sequence[str | Method], device: str = "cpu", radius: float = 3.0) -> list[Method]:
    """Build every method (spec strings or ready objects); LbamError on a repeated name."""
    methods: list[Method] = []
    for spec in specs:
        method = make_method(spec, device, radius) if isinstance(spec, str) else spec
        if not isinstance(method, Method):
            raise LbamError(f"not an inpainting method: {spec!r}")
        if any(m.name == method.name for m in methods):
            raise LbamError(f"method {method.name!r} is given twice")
        methods.append(method)
    return methods

"""How much memory an inpainting call needs, estimated before any pixel is decoded, and the budget.

Measured with ``lbam-compact`` on a CPU (peak resident memory above the loaded model, one thread):
``full`` 368 MB at 1 Mpx and 1,097 MB at 4 Mpx (about 245 bytes per pixel the model sees, plus
~125 MB); ``fit`` 70, 121 and 275 MB at 1, 4 and 12 Mpx (about 20 bytes per photo pixel for its
copies of the photo, plus its windows). The model's activations grow with its width, that is with
the square root of its parameter count. The texture stage (``refine="texture"``, after the model)
adds float copies of each window at full resolution (up to the whole photo; PatchMatch itself
works on at most 512 px a side): measured 335 and 931 MB at 1 and 4 Mpx with ``full`` (313 and
959 MB without it), 43 and 199 MB with ``fit`` (40 and 194 MB). ``fit`` fills several windows
at once only while the windows alive at once add up to no more than the photo, and runs one
network pass at a time (:func:`lbam.inference.pipeline.window_threads`), so the same bounds hold. :func:`estimate_bytes` rounds
these up; a request whose estimate is over the budget is refused before it is decoded
(:func:`check_budget`).
"""

from __future__ import annotations

import math
import os

from lbam.errors import PixelLimitError
from lbam.imaging import exemplar
from lbam.model.card import GeneratorCard
from lbam.options import InpaintOptions

BYTES_PER_PHOTO_PIXEL = 32  # the decoded photo, its float copy, the result and the hole map
BYTES_PER_MODEL_PIXEL = 300  # activations per pixel a pass of lbam-compact sees
COMPACT_PARAMETERS = 4_272_180
BYTES_PER_TEXTURE_PIXEL = 40  # the texture stage's copies per pixel of its window, at most the photo
FIXED_BYTES = 200 << 20
FIT_WINDOW_SIDE = 2  # fit's windows are at most this many training crops on a side (FIT_ZOOM)


def model_pixels(pixels: int, options: InpaintOptions, card: GeneratorCard) -> int:
    """The largest number of pixels one model pass sees under ``options``' strategy."""
    strategy = "fit" if options.strategy == "auto" else options.strategy
    if strategy == "full":
        return pixels
    if strategy == "fit":
        return min(pixels, (FIT_WINDOW_SIDE * card.train_size) ** 2)
    return min(pixels, options.max_size**2)  # crop and resize run at most max_size on a side


def estimate_bytes(width: int, height: int, options: InpaintOptions, card: GeneratorCard) -> int:
    """Peak memory of inpainting a ``width`` x ``height`` photo with the generator of ``card``."""
    pixels = width * height
    scale = math.sqrt(max(card.parameters, 1) / COMPACT_PARAMETERS)
    activations = BYTES_PER_MODEL_PIXEL * scale * model_pixels(pixels, options, card)
    texture = options.refine == "texture" and exemplar.available()
    return int(
        FIXED_BYTES + (BYTES_PER_PHOTO_PIXEL + texture * BYTES_PER_TEXTURE_PIXEL) * pixels + activations
    )


def machine_memory_bytes() -> int:
    """Physical memory of this machine (0 where the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def default_budget_bytes(fraction: float) -> int | None:
    """``fraction`` of this machine's memory, or None (no budget) where it is unknown."""
    total = machine_memory_bytes()
    return int(total * fraction) if total else None


def check_budget(
    size: tuple[int, int], options: InpaintOptions, card: GeneratorCard, budget: int | None, how: str
) -> None:
    """PixelLimitError when inpainting a photo of ``size`` = (width, height) would need more than
    ``budget`` bytes; ``how`` says how to get under it."""
    if budget is None:
        return
    needed = estimate_bytes(size[0], size[1], options, card)
    if needed > budget:
        raise PixelLimitError(
            f"a {size[0]}x{size[1]} photo with strategy {options.strategy} needs about "
            f"{needed / 2**20:,.0f} MB, over the budget of {budget / 2**20:,.0f} MB; {how}"
        )

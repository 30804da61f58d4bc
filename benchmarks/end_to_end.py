"""``lbam inpaint`` on a 4000x3000 photo, end to end: start-up, read, model, write.

    python benchmarks/end_to_end.py               # prints the table
    python benchmarks/end_to_end.py --write-docs  # also the end_to_end region of docs/benchmarks.md

Each case runs in a fresh Python process, as a user's command would, and reports: importing torch,
importing the rest of lbam, decoding the photo and the mask, the model passes, encoding and writing
the result, with loading the model apart (the timings ``lbam.inference.batch.inpaint_file``
records). The photo is Kodak's kodim05 upscaled to 4000x3000 with mild noise (JPEG, quality 92);
the cases are five small holes (48 px), one hole of 20 % of the photo, and a caption of 480
letters (a window per letter). The result is written as PNG by lbam's encoder (zlib level 1,
lbam.imaging.png) and, for the first two cases, by Pillow at zlib levels 1 and 6 (Pillow's
default), so the table shows size against time. lbam's default fill includes the texture stage
(``refine="texture"``, part of *model*); the rows with ``none`` run the network alone, so the
difference is the texture stage's time, given per megapixel of the windows it fills.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from docs_region import write_benchmark_section  # noqa: E402  (a script beside this one)

REPO = Path(__file__).resolve().parents[1]
KODAK = REPO.parent / "shared" / "data" / "eval" / "kodak24" / "kodim05.png"
CHILD = """
import json, sys, time
start = time.perf_counter()
import torch
torch_done = time.perf_counter()
from lbam.imaging import io as image_io
from lbam.inference.batch import Job, inpaint_file
from lbam.inference.pipeline import get_model
from lbam.options import InpaintOptions
image_io.PNG_COMPRESS_LEVEL = int(sys.argv[5])
if sys.argv[4] == "Pillow":
    import io
    from PIL import Image
    def pillow_png(pixels, level, icc_profile=None, exif=None):
        buffer = io.BytesIO()
        Image.fromarray(pixels.squeeze(2) if pixels.shape[2] == 1 else pixels).save(buffer, "PNG", compress_level=level)
        return buffer.getvalue()
    image_io.encode_png = pillow_png
lbam_done = time.perf_counter()
result = inpaint_file(Job(*map(__import__("pathlib").Path, sys.argv[1:4])), lambda: get_model("lbam-compact", "cpu"), InpaintOptions(refine=sys.argv[6]))
print(json.dumps({"torch": torch_done - start, "lbam": lbam_done - torch_done, **result.timings,
                  "total": time.perf_counter() - start, "bytes": __import__("os").path.getsize(sys.argv[3])}))
"""


def make_inputs(folder: Path) -> dict[str, tuple[Path, Path]]:
    rng = np.random.default_rng(0)
    photo = Image.open(KODAK).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    pixels = np.clip(np.asarray(photo).astype(np.int16) + rng.integers(-6, 7, (3000, 4000, 3)), 0, 255)
    Image.fromarray(pixels.astype(np.uint8)).save(folder / "photo.jpg", quality=92)
    small = np.zeros((3000, 4000), np.uint8)
    for k in range(5):
        top, left = 400 + 450 * k, 500 + 600 * k
        small[top : top + 48, left : left + 48] = 255
    large = np.zeros((3000, 4000), np.uint8)
    large[900:2242, 1200:2988] = 255  # 1342 x 1788 = 20 % of the photo
    Image.fromarray(small).save(folder / "small.png")
    Image.fromarray(large).save(folder / "large.png")
    Image.fromarray(caption(rng)).save(folder / "caption.png")
    return {
        "5 small holes": (folder / "photo.jpg", folder / "small.png"),
        "one 20 % hole": (folder / "photo.jpg", folder / "large.png"),
        CAPTION: (folder / "photo.jpg", folder / "caption.png"),
    }


CAPTION = "480 letters"


def caption(rng: np.random.Generator) -> np.ndarray:
    """A mask of text over the photo: 12 lines of 40 capital letters 80 px high (white = hole)."""
    mask = np.zeros((3000, 4000), np.uint8)
    for line in range(12):
        for k in range(40):
            letter = chr(ord("A") + int(rng.integers(26)))
            cv2.putText(mask, letter, (100 + 95 * k, 200 + 220 * line), cv2.FONT_HERSHEY_SIMPLEX, 3, 255, 8)
    return mask


# (PNG writer, zlib level, refine): lbam's defaults, the network alone, Pillow's encoder for comparison
SETUPS = (("lbam", 1, "texture"), ("lbam", 1, "none"), ("Pillow", 1, "none"), ("Pillow", 6, "none"))
# the caption is about the fill's time, not the encoder's
CAPTION_SETUPS = SETUPS[:2]


def window_megapixels(mask: Path) -> float:
    """Megapixels of the windows the default strategy fills for ``mask`` (the hole as lbam grows it)."""
    from lbam import load_model
    from lbam.imaging.masks import prepare_hole, read_mask
    from lbam.inference.windows import fit_plan, hole_boxes
    from lbam.options import InpaintOptions

    options, hole = InpaintOptions(), read_mask(mask)
    hole = prepare_hole(hole, hole.shape, dilate=options.dilate)
    plan = fit_plan(hole.shape, options.context, load_model("lbam-compact").card.train_size)
    windows = [step.window for step in plan(hole_boxes(hole))]
    return sum((bottom - top) * (right - left) for top, bottom, left, right in windows) / 1e6


def texture_cost(rows: list[tuple[str, str, int, str, dict]], windows: dict[str, float]) -> str:
    """The texture stage's seconds per megapixel of windows: the lbam writer's texture row less its none row."""
    model = {(case, refine): t["model"] for case, writer, _, refine, t in rows if writer == "lbam"}
    lines = []
    for case, megapixels in windows.items():
        seconds = model[case, "texture"] - model[case, "none"]
        lines.append(
            f"- {case}: windows {megapixels:.2f} Mpx, texture stage {seconds:.2f} s = "
            f"{seconds / megapixels:.2f} s per Mpx"
        )
    return "\n".join(lines)


def run_case(photo: Path, mask: Path, out: Path, writer: str, level: int, refine: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(photo), str(mask), str(out), writer, str(level), refine],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[tuple[str, str, int, str, dict]]) -> str:
    lines = [
        "| case | PNG writer | zlib level | refine | import torch (s) | import lbam (s) | read (s) | load model (s) | model (s) | write (s) | after torch (s) | total (s) | output (MB) |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case, writer, level, refine, t in rows:
        after = t["total"] - t["torch"]
        lines.append(
            f"| {case} | {writer} | {level} | {refine} | {t['torch']:.2f} | {t['lbam']:.2f} | {t['read']:.2f} | {t['load']:.2f} | {t['model']:.2f} | "
            f"{t['write']:.2f} | {after:.2f} | {t['total']:.2f} | {t['bytes'] / 1e6:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cases = make_inputs(Path(folder))
        windows = {case: window_megapixels(mask) for case, (_, mask) in cases.items()}
        rows = []
        for case, (photo, mask) in cases.items():
            for writer, level, refine in CAPTION_SETUPS if case == CAPTION else SETUPS:
                out = Path(folder) / f"out_{writer}{level}{refine}.png"
                rows.append((case, writer, level, refine, run_case(photo, mask, out, writer, level, refine)))
                print(rows[-1], flush=True)
    text = table(rows) + "\n\n" + texture_cost(rows, windows)
    print(text)
    if args.write_docs:
        write_benchmark_section(
            "end_to_end",
            "lbam inpaint end to end (CPU)",
            "python benchmarks/end_to_end.py --write-docs",
            "protocol in its docstring: a 4000x3000 JPEG, default strategy (fit), PNG output. *after torch* "
            "is everything but importing torch.\n\n" + text,
        )


if __name__ == "__main__":
    main()

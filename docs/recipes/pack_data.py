"""Pack what a GPU training run needs into one small folder, to copy to the GPU machine with the repo.

    python docs/recipes/prepare_data.py ../shared/data ../runs/data      # the split, as links
    python docs/recipes/pack_data.py ../runs/data .gpudata                # then this

A GPU machine may not see the photo folders (or the stlpips wheel) of this one, so this writes one
self-contained ``OUT/`` of about 38 MiB:

- ``train/`` and ``val/``: every photo of DATA's ``train`` and ``val`` folders as a JPEG (quality
  90) whose shorter side is at most 512 px, the most the recipes load (``data.max_load_size``);
- ``vgg_loss_layers.pth``: the layers of ST-LPIPS's shift-tolerant VGG16 that the perceptual and
  style losses use (up to pool3, the input scaling with them), in float32: 7 MB instead of the
  wheel's 59 MB. ``losses.vgg_weights: stlpips=OUT/vgg_loss_layers.pth`` reads it.

Add ``/.gpudata/`` (or OUT) to ``.git/info/exclude`` so that git leaves it alone. Then see
``docs/recipes/gpu_run.sh``.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import torch
from PIL import Image

from lbam.features.stlpips import LOSS_TAPS, ShiftTolerantTrunk, find_weights, read_weights
from lbam.imaging.files import list_images
from lbam.imaging.io import load_rgb
from lbam.utils.files import atomic_write_bytes

MAX_SIDE = 512
QUALITY = 90


def shrink_photos(source: Path, target: Path) -> int:
    """Write every photo of ``source`` to ``target`` as a JPEG with a shorter side of at most 512 px."""
    target.mkdir(parents=True, exist_ok=True)
    photos = list_images(source)
    for path in photos:
        image = load_rgb(path)
        scale = MAX_SIDE / min(image.size)
        if scale < 1:
            size = (round(image.width * scale), round(image.height * scale))
            image = image.resize(size, Image.Resampling.LANCZOS)
        image.save(target / f"{path.stem}.jpg", quality=QUALITY)
    return len(photos)


def loss_layers(out: Path) -> int:
    """Save the loss taps' part of the ST-LPIPS VGG16 under the file's own key names; its size in bytes."""
    trunk, _ = read_weights(find_weights("vgg"), "vgg")
    wanted = ShiftTolerantTrunk("vgg", LOSS_TAPS).state_dict().keys()
    state = {}
    for key in wanted:
        if key.startswith("features."):
            state["net.slice1." + key.split(".", 1)[1]] = trunk[key]
        else:
            state["scaling_layer." + key] = trunk[key]
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(out, buffer.getvalue())
    return len(buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the folder prepare_data.py made (train/, val/)")
    parser.add_argument("out", type=Path, help="the folder to write, e.g. .gpudata in the repo root")
    args = parser.parse_args(argv)
    counts = {name: shrink_photos(args.data / name, args.out / name) for name in ("train", "val")}
    size = loss_layers(args.out / "vgg_loss_layers.pth")
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(
        f"{counts['train']} training and {counts['val']} validation photos, VGG loss layers "
        f"{size / 1e6:.1f} MB; {total / 2**20:.1f} MiB in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

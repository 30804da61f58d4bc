"""Lay out the training and validation folders of the lbam-compact recipe as symbolic links.

    python docs/recipes/prepare_data.py ../shared/data ../runs/data

train/: shared/data/photos/train (50) + shared/data/photos_more except the validation subset.
val/:   shared/data/photos/val except the demo photo (scikit-image__chelsea, which lbam demo shows
        and which therefore neither trains nor chooses checkpoints) + every 8th photo of
        photos_more in name order, starting with the 4th (43 photos).
"""

from __future__ import annotations

import sys
from pathlib import Path

DEMO_PHOTO = "scikit-image__chelsea.jpg"


def validation_subset(photos_more: list[Path]) -> list[Path]:
    """The fixed photos_more files that validate instead of training (43 of 344)."""
    return sorted(photos_more)[3::8]


def link_all(files: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        link = folder / file.name
        if not link.exists():
            link.symlink_to(file.resolve())


def main(shared: Path, out: Path) -> None:
    more = sorted((shared / "photos_more").glob("*.jpg"))
    held = set(validation_subset(more))
    train = sorted((shared / "photos" / "train").glob("*.jpg")) + [p for p in more if p not in held]
    val = [p for p in sorted((shared / "photos" / "val").glob("*.jpg")) if p.name != DEMO_PHOTO]
    link_all(train, out / "train")
    link_all(val + sorted(held), out / "val")
    print(
        f"{len(train)} training photos in {out / 'train'}, {len(val) + len(held)} validation photos in {out / 'val'}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

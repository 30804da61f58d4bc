"""How well ``POST /api/v1/select`` (lbam.imaging.select) finds an object: IoU against outlines
drawn by hand, for one click, one box, and a box with two clicks, with the time per selection.

    python benchmarks/select_iou.py                 # photos from ../shared/data/photos_more
    python benchmarks/select_iou.py --upscale 1.2   # the same at about 1 Mpx (timing)
    python benchmarks/select_iou.py --upscale 4     # at 9.4 to 12.6 Mpx

The outlines (benchmarks/data/select_objects.json) are polygons drawn by hand on the photos. The
one click lands where a person clicks, at the point deepest inside the object (farthest from its
outline). The box is the outline's bounding box grown by 2 % of the photo's longer side. The two
further clicks follow the usual interactive-segmentation protocol: each at the deepest point of
the largest wrong region of the selection so far, on the object (1) or off it (0).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from lbam.imaging.select import make_hints, select_object
from lbam.utils.machine import machine_description

REPO = Path(__file__).resolve().parents[1]
OUTLINES = REPO / "benchmarks" / "data" / "select_objects.json"


def object_mask(polygon: list[list[float]], size: tuple[int, int], scale: float) -> np.ndarray:
    mask = np.zeros(size, np.uint8)
    cv2.fillPoly(mask, [np.round(np.array(polygon) * scale).astype(np.int32)], 1)
    return mask > 0


def deepest_click(mask: np.ndarray) -> list[float]:
    """The point of ``mask`` farthest from its outline, where a person clicks on an object."""
    depth = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    row, col = np.unravel_index(np.argmax(depth), depth.shape)
    return [float(col), float(row)]


def corrective_click(selected: np.ndarray, truth: np.ndarray) -> list[float]:
    """The next click of the usual interactive-segmentation protocol: the deepest point of the
    largest wrong region, labelled 1 where the object was missed and 0 where too much was taken."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((selected != truth).astype(np.uint8))
    if count < 2:
        return [*deepest_click(truth), 1]
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y = deepest_click(labels == largest)
    return [x, y, int(truth[int(y), int(x)])]


def box_of(mask: np.ndarray) -> list[float]:
    rows, cols = np.nonzero(mask)
    grow = 0.02 * max(mask.shape)
    height, width = mask.shape
    return [
        max(0.0, cols.min() - grow),
        max(0.0, rows.min() - grow),
        min(float(width), cols.max() + 1 + grow),
        min(float(height), rows.max() + 1 + grow),
    ]


def select_timed(rgb: np.ndarray, points: list, box: list | None, truth: np.ndarray) -> tuple[float, float]:
    start = time.perf_counter()
    selected = select_object(rgb, make_hints(points, box, rgb.shape[:2]))
    return iou(selected, truth), time.perf_counter() - start


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def measure(photos: Path, upscale: float) -> dict[str, list[tuple[float, float]]]:
    outlines = json.loads(OUTLINES.read_text())
    rows: dict[str, list[tuple[float, float]]] = {"one click": [], "one box": [], "box + 2 clicks": []}
    for name, polygon in outlines["objects"].items():
        image = Image.open(photos / name).convert("RGB")
        if upscale != 1:
            image = image.resize((round(image.width * upscale), round(image.height * upscale)), Image.LANCZOS)
        rgb = np.asarray(image)
        truth = object_mask(polygon, rgb.shape[:2], max(rgb.shape[:2]) / outlines["scale_side"])
        box = box_of(truth)
        for case, points, frame in (("one click", [[*deepest_click(truth), 1]], None), ("one box", [], box)):
            rows[case].append(select_timed(rgb, points, frame, truth))
        points: list[list[float]] = []
        for _ in range(2):
            selected = select_object(rgb, make_hints(points, box, rgb.shape[:2]))
            points.append(corrective_click(selected, truth))
        rows["box + 2 clicks"].append(select_timed(rgb, points, box, truth))
        print(name, " ".join(f"{case}: {values[-1][0]:.3f}" for case, values in rows.items()), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=REPO.parent / "shared" / "data" / "photos_more")
    parser.add_argument(
        "--upscale", type=float, default=1.0, help="scale the photos first (timing at 1 or 12 Mpx)"
    )
    args = parser.parse_args()
    rows = measure(args.photos, args.upscale)
    count = len(next(iter(rows.values())))
    print(f"\n{count} photos, {machine_description()}, upscale {args.upscale:g}\n")
    print("| hints | mean IoU | median IoU | IoU >= 0.8 | mean seconds |")
    print("|---|---:|---:|---:|---:|")
    for case, values in rows.items():
        scores = np.array([v[0] for v in values])
        seconds = np.mean([v[1] for v in values])
        share = f"{int((scores >= 0.8).sum())}/{len(scores)}"
        print(f"| {case} | {scores.mean():.3f} | {np.median(scores):.3f} | {share} | {seconds:.2f} |")


if __name__ == "__main__":
    main()

"""The crop strategy: hole regions, windows, and bounded memory on a large photo."""

import functools

import cv2
import numpy as np
import pytest
import torch

import lbam
from inference_helpers import Recorder
from lbam.imaging.io import load_rgb
from lbam.inference import pipeline, windows
from lbam.inference.windows import crop_window, hole_boxes
from lbam.model.lbam import LBAMGenerator
from shared_data import shared_file

# These tests check exact hole geometry: the hole as given, without the default dilation.
inpaint = functools.partial(lbam.inpaint, dilate=0, refine="none")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LBAMGenerator(width=0.0625).eval()


def test_hole_boxes_merges_overlapping_boxes_only():
    hole = np.zeros((100, 100), dtype=bool)
    hole[10:20, 10:40] = True  # an L shape made of two strokes: one region
    hole[10:50, 10:15] = True
    hole[40:45, 30:35] = True  # inside the L's bounding box but not connected: merged into it
    hole[80:90, 80:95] = True  # far away: its own box
    assert sorted(hole_boxes(hole)) == [(10, 50, 10, 40), (80, 90, 80, 95)]


def test_hole_boxes_merges_chains_of_overlaps():
    hole = np.zeros((60, 60), dtype=bool)
    hole[0:10, 0:2] = hole[0:2, 0:10] = True  # box (0,10,0,10) from an L
    hole[8:20, 8:9] = True  # overlaps the first box
    hole[18:19, 8:30] = True  # connected to the previous one
    hole[50:55, 50:55] = True
    assert sorted(hole_boxes(hole)) == [(0, 20, 0, 30), (50, 55, 50, 55)]


def test_hole_boxes_compares_pairs_as_labelling_the_drawn_boxes_would(monkeypatch):
    """The pairwise merge (few boxes) and the drawn-and-labelled merge (many) give the same boxes."""

    rng = np.random.default_rng(3)
    for trial in range(40):
        hole = np.zeros((120, 150), dtype=bool)
        for _ in range(rng.integers(1, 25)):
            top, left = rng.integers(0, 115), rng.integers(0, 145)
            hole[top : top + rng.integers(1, 15), left : left + rng.integers(1, 15)] = True
        if trial == 0:  # boxes touching at a corner and along an edge, and one a pixel apart
            hole[:] = False
            hole[0:10, 0:10] = hole[10:20, 10:20] = hole[20:30, 0:5] = hole[0:5, 21:30] = True
        monkeypatch.setattr(windows, "PAIRWISE_BOXES", 10_000)
        pairwise = hole_boxes(hole)
        monkeypatch.setattr(windows, "PAIRWISE_BOXES", 0)
        assert pairwise == hole_boxes(hole), trial
        if trial == 0:
            assert pairwise == [(0, 30, 0, 20), (0, 5, 21, 30)]


@pytest.mark.parametrize(
    "box", [(0, 5, 0, 5), (500, 520, 700, 760), (990, 1000, 1490, 1500), (0, 1000, 10, 20)]
)
def test_crop_window_contains_box_plus_margin_and_is_clipped(box):
    shape = (1000, 1500)
    top, bottom, left, right = crop_window(box, shape, margin=64, min_size=256, multiple=128)
    assert 0 <= top <= box[0] and box[1] <= bottom <= shape[0]
    assert 0 <= left <= box[2] and box[3] <= right <= shape[1]
    assert right - left >= 256 and (right - left) % 128 == 0
    assert bottom - top >= 256 and ((bottom - top) % 128 == 0 or bottom - top == shape[0])
    if box[0] >= 64 and box[1] <= shape[0] - 64:
        assert top <= box[0] - 64 and bottom >= box[1] + 64


def test_large_photo_runs_in_small_windows_and_keeps_known_pixels(model):
    height, width = 3000, 4000
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    hole = np.zeros((height, width), dtype=bool)
    hole[100:130, 200:260] = True  # near a corner
    hole[1500:1540, 2000:2010] = True  # in the middle
    hole[2950:3000, 3900:4000] = True  # touching two borders
    recorder = Recorder(model)
    result = inpaint(image, hole, recorder)  # auto: longer side 4000 > 1024 -> crop
    assert len(recorder.shapes) == 3
    for shape in recorder.shapes:
        assert max(shape) <= 512  # 512-px windows on a 4000x3000 photo
    assert result.shape == image.shape and result.dtype == np.uint8
    known = ~hole
    assert np.array_equal(result[known], image[known])
    assert (result[hole] != image[hole]).mean() > 0.9


def test_crop_windows_larger_than_max_size_are_downscaled(model):
    image = np.random.default_rng(1).integers(0, 256, (600, 900, 3), dtype=np.uint8)
    hole = np.zeros((600, 900), dtype=bool)
    hole[100:500, 100:800] = True  # one big region: its window is the whole photo
    hole[580:590, 10:20] = True
    recorder = Recorder(model)
    result = inpaint(image, hole, recorder, strategy="crop", max_size=256, crop_margin=32, crop_min_size=128)
    assert len(recorder.shapes) == 2
    assert all(max(shape) <= 256 for shape in recorder.shapes)
    np.testing.assert_array_equal(result[~hole], image[~hole])
    assert (result[hole] != image[hole]).mean() > 0.9


def test_crop_and_full_agree_where_the_window_sees_the_whole_context(model):
    image = np.random.default_rng(2).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    hole = np.zeros((256, 256), dtype=bool)
    hole[100:120, 100:130] = True
    full = inpaint(image, hole, model, strategy="full")
    crop = inpaint(image, hole, model, strategy="crop", crop_min_size=256)  # window = photo
    np.testing.assert_array_equal(crop, full)


def test_fit_feeds_the_model_at_most_three_shapes(model):
    """The default strategy buckets its windows: a compiled model sees 256x256, 256x128 or 128x256
    (photos of 256 px and more), so it compiles at most three times whatever the photos' sizes."""
    recorder = Recorder(model, train_size=256)
    rng = np.random.default_rng(5)
    for height, width in [(300, 1200), (1000, 700), (512, 512), (2000, 260), (256, 256)]:
        photo = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        hole = np.zeros((height, width), bool)
        for _ in range(3):  # holes from specks to a third of the photo
            h, w = rng.integers(2, height // 3), rng.integers(2, width // 3)
            top, left = rng.integers(0, height - h), rng.integers(0, width - w)
            hole[top : top + h, left : left + w] = True
        inpaint(photo, hole, recorder)
    assert set(recorder.shapes) <= {(256, 256), (256, 128), (128, 256)}
    assert len(recorder.shapes) >= 10


def test_windows_run_at_once_only_while_those_alive_add_up_to_no_more_than_the_photo(monkeypatch):
    monkeypatch.setattr(pipeline, "usable_cpus", lambda: 8)
    small = [(0, 100, 0, 100)] * 6
    assert pipeline.window_threads(small, 1000 * 1000) == pipeline.WINDOW_THREADS
    assert pipeline.window_threads(small[:2], 1000 * 1000) == 2  # no more threads than windows
    # 2 threads keep 5 windows alive, 3 threads 7: the photo holds 5 but not 7
    many = [(0, 100, 0, 100)] * 500
    assert pipeline.window_threads(many, 5 * 100 * 100) == 2
    assert pipeline.window_threads(many, 3 * 100 * 100 - 1) == 1
    # the largest windows count: one big window among small ones
    assert pipeline.window_threads([(0, 900, 0, 1000), *small], 930_000) == 1
    monkeypatch.setattr(pipeline, "usable_cpus", lambda: 1)
    assert pipeline.window_threads(small, 1000 * 1000) == 1


def _inside(box, outer):
    return outer[0] <= box[0] and box[1] <= outer[1] and outer[2] <= box[2] and box[3] <= outer[3]


def _meets(a, b):
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def test_small_regions_share_a_window_and_each_keeps_its_context():
    shape = (1000, 1500)
    specks = [(100, 110, 100, 110), (150, 160, 200, 212), (120, 128, 260, 266)]  # within 256 px
    boxes = sorted([*specks, (600, 700, 600, 720), (105, 115, 1300, 1310)])  # an object, a far speck
    steps = windows.fit_plan(shape, context=1.0, train_size=256)(boxes)
    assert len(steps) == 3
    for step in steps:
        members = [box for box in boxes if _inside(box, step.box)]
        assert members and not any(_meets(box, step.box) for box in boxes if box not in members)
        top, bottom, left, right = step.window
        if step.box == (600, 700, 600, 720):  # alone, centred, downscaled as before
            assert step.limit == 256 and (bottom - top, right - left) == (340, 360)
        else:
            assert (bottom - top, right - left) == (256, 256) and step.limit is None
        for box in members:  # context: its side, and at least 32 px (GROUP_PAD of 256)
            margin = max(windows.side(box), 32)
            assert top <= box[0] - margin and box[1] + margin <= bottom
            assert left <= box[2] - margin and box[3] + margin <= right
        assert step.span == max(windows.side(box) for box in members)
    assert sorted(box for step in steps for box in boxes if _inside(box, step.box)) == sorted(boxes)
    grouped = next(step for step in steps if _inside(specks[0], step.box))
    assert all(_inside(box, grouped.box) for box in specks)


def test_a_shared_window_never_takes_pixels_of_a_region_outside_it():
    """Two specks would fit one window, but the box around both meets a larger region's box: each
    pass pastes the hole pixels inside its box, so they stay apart."""
    boxes = sorted([(100, 110, 100, 110), (100, 110, 250, 260), (60, 160, 150, 200)])
    steps = windows.fit_plan((1000, 1500), context=1.0, train_size=256)(boxes)
    assert sorted(step.box for step in steps) == boxes
    # the same with a region taller than a window, starting far above the specks
    boxes = sorted([(400, 410, 100, 110), (400, 410, 250, 260), (0, 900, 150, 200)])
    steps = windows.fit_plan((1000, 1500), context=1.0, train_size=256)(boxes)
    assert sorted(step.box for step in steps) == boxes


def test_many_specks_take_few_passes_and_fill_as_well_as_one_by_one(monkeypatch):
    rng = np.random.default_rng(7)
    photo = np.asarray(load_rgb(shared_file("eval", "kodak24", "kodim05.png")))
    hole = np.zeros(photo.shape[:2], np.uint8)
    for _ in range(40):
        cv2.circle(
            hole, (int(rng.integers(0, 768)), int(rng.integers(0, 512))), int(rng.integers(2, 6)), 1, -1
        )
    hole = hole.astype(bool)
    model = pipeline.get_model("lbam-compact", "cpu")
    recorder = Recorder(model)
    grouped = inpaint(photo, hole, recorder)
    monkeypatch.setattr(windows, "group_boxes", lambda boxes, reach, limit: [[box] for box in boxes])
    alone_recorder = Recorder(model)
    alone = inpaint(photo, hole, alone_recorder)
    assert len(recorder.shapes) <= len(alone_recorder.shapes) // 2
    np.testing.assert_array_equal(grouped[~hole], photo[~hole])
    error = lambda result: float(np.abs(result[hole].astype(float) - photo[hole]).mean())  # noqa: E731
    assert error(grouped) <= 1.05 * error(alone)


@pytest.mark.parametrize("seed", range(5))
def test_shared_windows_cover_every_region_once_on_random_specks(seed):
    """On random masks: every region is pasted by exactly one pass, no pass's box meets a region
    outside it, and every region keeps its context inside the window that fills it."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(200, 900)), int(rng.integers(200, 1200)))
    hole = np.zeros(shape, np.uint8)
    for _ in range(int(rng.integers(5, 120))):
        radius = int(rng.choice([2, 4, 8, 30]))
        cv2.circle(hole, (int(rng.integers(0, shape[1])), int(rng.integers(0, shape[0]))), radius, 1, -1)
    boxes = hole_boxes(hole.astype(bool))
    steps = windows.fit_plan(shape, context=1.0, train_size=256)(boxes)
    owners = [[step for step in steps if _inside(box, step.box)] for box in boxes]
    assert all(len(found) == 1 for found in owners)
    assert len(steps) < len(boxes)  # some specks did share a window
    for box, [step] in zip(boxes, owners, strict=True):
        assert not any(_meets(other, step.box) and not _inside(other, step.box) for other in boxes)
        top, bottom, left, right = step.window
        margin = max(windows.side(box), 32)  # its side, and GROUP_PAD of the crop, or more
        assert max(top, 0) <= max(box[0] - margin, 0) and min(box[1] + margin, shape[0]) <= bottom
        assert max(left, 0) <= max(box[2] - margin, 0) and min(box[3] + margin, shape[1]) <= right

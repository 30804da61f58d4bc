"""lbam.imaging.harmonic: the membrane interpolation and the seam correction of the fills."""

import cv2
import numpy as np
import pytest
from skimage.restoration import inpaint_biharmonic

from lbam.imaging import harmonic
from lbam.imaging.harmonic import (
    NEIGHBOUR_MEAN,
    _relax,
    _solve_exactly,
    biharmonic_fill,
    harmonic_fill,
    harmonize,
)


def strokes(height, width, seed=1):
    """A hole of thick random strokes, as a person or the NVIDIA masks draw them: (H, W) bool."""
    rng = np.random.default_rng(seed)
    canvas = np.zeros((height, width), dtype=np.uint8)
    for _ in range(6):
        x0, x1 = rng.integers(0, width, 2)
        y0, y1 = rng.integers(0, height, 2)
        cv2.line(canvas, (int(x0), int(y0)), (int(x1), int(y1)), 1, int(rng.integers(3, 40)))
    return canvas > 0


def test_known_pixels_are_kept_and_nothing_known_gives_zeros():
    values = np.random.default_rng(0).random((40, 50, 3))
    known = ~strokes(40, 50)
    filled = harmonic_fill(values, known)
    np.testing.assert_array_equal(filled[known], values[known])
    np.testing.assert_array_equal(harmonic_fill(values, np.ones((40, 50), bool)), values)
    np.testing.assert_array_equal(harmonic_fill(values, np.zeros((40, 50), bool)), 0)
    with pytest.raises(ValueError, match="do not match"):
        harmonic_fill(values, known[:-1])


def test_a_linear_ramp_is_continued_across_a_large_hole():
    """Linear functions are harmonic: the fill of a 200 x 290 box must be the ramp itself."""
    rows, cols = np.mgrid[:300, :400].astype(np.float64)
    ramp = np.stack([0.002 * rows + 0.001 * cols, 0.5 - 0.001 * cols, np.full_like(cols, 0.3)], axis=-1)
    hole = np.zeros((300, 400), dtype=bool)
    hole[50:250, 60:350] = True
    filled = harmonic_fill(ramp, ~hole)
    # The cascade is approximate: 1.2 % of the ramp's range where the hole is deepest.
    assert np.abs(filled - ramp).max() < 0.015


def test_close_to_the_exact_solution_of_laplace_equation():
    """Against a sparse LU solve of the same equations, for random (rough) boundary values."""
    values = np.random.default_rng(1).random((300, 400, 3))
    hole = strokes(300, 400)
    exact = _solve_exactly(values, ~hole)
    filled = harmonic_fill(values, ~hole)
    error = np.abs(filled - exact)[hole]
    # Values are uniform in [0, 1], the roughest boundary there is; measured: mean 0.0126, max 0.094.
    assert error.mean() < 0.015 and error.max() < 0.12


def test_exact_solution_has_the_mean_value_property_with_a_mirror_edge():
    values = np.random.default_rng(2).random((20, 24, 1))
    hole = np.zeros((20, 24), dtype=bool)
    hole[:8, 5:15] = True  # touches the top edge
    exact = _solve_exactly(values, ~hole)[..., 0]
    padded = np.pad(exact, 1, mode="edge")  # the mirror: a missing neighbour is the pixel itself
    mean = (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]) / 4
    np.testing.assert_allclose(exact[hole], mean[hole], atol=1e-12)


def test_harmonize_takes_away_a_colour_cast_and_keeps_detail():
    """A fill = truth + detail + a cast: the cast goes, the fill's own detail stays."""
    rng = np.random.default_rng(3)
    truth = np.full((96, 96, 3), 0.4)
    detail = 0.05 * rng.standard_normal((96, 96, 3))
    output = truth + detail + np.array([0.15, -0.1, 0.05])
    hole = np.zeros((96, 96), dtype=bool)
    hole[30:70, 20:80] = True
    fixed = harmonize(output, truth, ~hole)
    np.testing.assert_allclose(fixed[~hole], truth[~hole], atol=1e-6)
    # The noise on the known ring spreads in only a few pixels; away from the border the
    # correction is the cast, so what is left in the hole's core is the fill's own detail.
    core = np.zeros_like(hole)
    core[38:62, 28:72] = True
    assert np.abs((fixed - truth - detail)[core].mean(axis=0)).max() < 0.01
    assert np.abs(fixed - truth - detail)[core].std() < 0.03


def _small_discs(shape, radius, step):
    hole = np.zeros(shape, np.uint8)
    for cy in range(step, shape[0] - step // 2, step):
        for cx in range(step, shape[1] - step // 2, step):
            cv2.circle(hole, (cx, cy), radius, 1, -1)
    return hole.astype(bool)


def _level_errors(photo, hole, output):
    """Each disc's mean colour error (the worst channel) after harmonize."""
    fixed = harmonize(output, photo, ~hole)
    count, labels = cv2.connectedComponents(hole.astype(np.uint8))
    return np.array([np.abs((fixed - photo)[labels == k].mean(0)).max() for k in range(1, count)])


def test_small_holes_are_levelled_on_several_rings(monkeypatch):
    """Grain on a small hole's one-pixel border moves its level; rings further out average it
    away, and a linear gradient is still continued exactly."""
    rng = np.random.default_rng(5)
    hole = _small_discs((400, 400), 6, 40)
    y, x = np.mgrid[0:400, 0:400] / 400
    ramp = np.stack([0.3 + 0.2 * y, 0.5 - 0.1 * x, 0.6 + 0.1 * (x + y)], -1)
    grain = ramp + rng.normal(0, 1 / 255, ramp.shape)
    cast = ramp + np.array([0.02, -0.03, 0.01])  # a fill without the grain, its level off
    rings = _level_errors(grain, hole, cast)
    assert _level_errors(ramp, hole, cast).max() < 1e-3  # no bias on a clean gradient
    monkeypatch.setattr(harmonic, "LEVEL_RINGS", 1)
    one_ring = _level_errors(grain, hole, cast)
    print(
        f"mean level error, grain of 1 grey level: {255 * rings.mean():.3f} (one ring {255 * one_ring.mean():.3f})"
    )
    assert rings.mean() < 0.75 * one_ring.mean()


def test_a_curving_region_keeps_the_nearest_rings_level(monkeypatch):
    """Without grain, rings differ only because the photo curves: the nearest ring's level is kept,
    where always averaging the rings would move it."""
    monkeypatch.setattr(harmonic, "LEVEL_CURVED_PIXELS", 0)  # the rings' choice alone
    hole = _small_discs((400, 400), 6, 40)
    y, x = np.mgrid[0:400, 0:400] / 400
    bowl = 0.3 + 0.4 * np.stack([np.sin(9 * x) * np.cos(7 * y)] * 3, -1) ** 2
    cast = bowl + 0.02
    rings = _level_errors(bowl, hole, cast)
    monkeypatch.setattr(harmonic, "LEVEL_RINGS", 1)
    one_ring = _level_errors(bowl, hole, cast)
    monkeypatch.setattr(harmonic, "LEVEL_RINGS", 3)
    monkeypatch.setattr(harmonic, "_grain", lambda values, known, near: np.ones(values.shape[-1]))
    always = _level_errors(bowl, hole, cast)
    assert always.mean() > 1.5 * one_ring.mean()  # the farther rings are worse here
    assert rings.mean() < 1.05 * one_ring.mean()


def test_a_hole_without_a_border_is_left_as_the_fill():
    output = np.random.default_rng(0).random((24, 30, 3))
    fixed = harmonize(output, np.zeros_like(output), np.zeros((24, 30), bool))
    np.testing.assert_allclose(fixed, output, atol=1e-6)


def _relax_whole_field(field, known, sweeps):
    """Red-black Gauss-Seidel over the whole field, the plain way: what _relax must equal."""
    field = np.ascontiguousarray(field, dtype=np.float32)
    checker = np.indices(known.shape).sum(axis=0) % 2 == 1
    for _ in range(sweeps):
        for black in (False, True):
            where = np.nonzero(~known & (checker == black))
            field[where] = cv2.filter2D(field, -1, NEIGHBOUR_MEAN, borderType=cv2.BORDER_REPLICATE)[where]
    return field.astype(np.float64)


@pytest.mark.parametrize("case", range(12))
def test_relaxing_the_holes_box_equals_relaxing_the_whole_field(case):
    rng = np.random.default_rng(case)
    height, width = rng.integers(20, 200, 2)
    field = rng.random((height, width, 3))
    known = np.ones((height, width), bool)
    top, left = rng.integers(0, height - 4), rng.integers(0, width - 4)
    known[top : top + rng.integers(2, height // 2 + 3), left : left + rng.integers(2, width // 2 + 3)] = False
    if case % 3 == 0:
        known[:, :2] = False  # a hole on the photo's edge, where the mirror border matters
    if case % 4 == 1:
        known[rng.random((height, width)) < 0.05] = False  # scattered holes: a box of odd offset
    assert np.array_equal(_relax(field, known, 5), _relax_whole_field(field, known, 5))


def test_a_letter_across_a_highlight_keeps_its_level(monkeypatch):
    """A letter across a bright rim (a highlight whose profile peaks inside the letter), filled
    exactly: the harmonic interpolation has no maximum inside, so levelling to it darkened the
    letter; the biharmonic one continues the rim's slopes. A cast on a flat grainy region still goes."""
    rng = np.random.default_rng(2)
    y = np.arange(140)[:, None, None]
    rim = np.exp(-(((y - 70) / 18.0) ** 2))  # brightest on row 70
    photo = np.broadcast_to(0.35 + rim * np.array([0.55, 0.5, 0.1]), (140, 200, 3)).copy()
    letter = np.zeros((140, 200), np.uint8)
    cv2.putText(letter, "DYR", (20, 95), cv2.FONT_HERSHEY_SIMPLEX, 2.0, 1, 8)
    hole = cv2.dilate(letter, np.ones((7, 7), np.uint8)) > 0
    flat = np.full((140, 200, 3), 0.5) + rng.normal(0, 1 / 255, (140, 200, 3))
    disc = np.zeros((140, 200), np.uint8)
    cv2.circle(disc, (100, 70), 12, 1, -1)

    def level_error(photo, output, hole):
        """Each region's mean colour error after harmonize, grey levels, the worst channel."""
        fixed = harmonize(output, photo, ~hole)
        count, labels = cv2.connectedComponents(hole.astype(np.uint8))
        return np.mean([255 * np.abs((fixed - photo)[labels == k].mean(0)).max() for k in range(1, count)])

    curved = level_error(photo, photo, hole)
    cast = level_error(flat, flat + np.array([0.03, -0.02, 0.02]), disc > 0)
    monkeypatch.setattr(harmonic, "LEVEL_CURVED_PIXELS", 0)
    harmonic_only = level_error(photo, photo, hole)
    cast_harmonic_only = level_error(flat, flat + np.array([0.03, -0.02, 0.02]), disc > 0)
    print(
        f"letters across a rim: {curved:.2f} grey levels ({harmonic_only:.2f} levelled to the harmonic "
        f"interpolation); cast left on a flat disc {cast:.3f} ({cast_harmonic_only:.3f})"
    )
    assert curved < 0.25 * harmonic_only and harmonic_only > 2
    assert cast < cast_harmonic_only + 0.05


def test_a_region_inside_a_thin_ring_of_photo_is_levelled_without_the_check():
    """A disc whose only known pixels are a 2 px ring, inside a larger hole: the check on the ring
    has nothing beyond it to predict from, so the disc keeps its harmonic level."""
    hole = np.ones((60, 60), np.uint8)
    cv2.circle(hole, (30, 30), 11, 0, -1)
    cv2.circle(hole, (30, 30), 9, 1, -1)
    photo = np.full((60, 60, 3), 0.5)
    fixed = harmonize(photo + 0.02, photo, ~(hole > 0))
    assert np.isfinite(fixed).all()
    assert np.abs(fixed - photo)[hole > 0].mean() < 0.02


def test_the_biharmonic_fill_continues_a_cubic_and_agrees_with_scikit_image():
    """Any cubic is biharmonic, so a hole in one is filled exactly; on a letter-shaped hole in a
    smooth random field the fill is scikit-image's inpaint_biharmonic (the same equations)."""
    y, x = np.mgrid[0:50, 0:60] / 50.0
    cubic = np.stack([0.2 + x**3 - 0.5 * x * y**2 + 0.3 * y, 0.5 - y**3 + x * y, 0.1 + 0.2 * x**2 * y], -1)
    hole = np.zeros((50, 60), bool)
    hole[15:35, 20:42] = True
    np.testing.assert_allclose(biharmonic_fill(cubic, ~hole), cubic, atol=1e-10)
    field = cv2.GaussianBlur(np.random.default_rng(0).random((70, 70, 3)), (0, 0), 4)
    letter = np.zeros((70, 70), np.uint8)
    cv2.putText(letter, "Y", (15, 55), cv2.FONT_HERSHEY_SIMPLEX, 1.6, 1, 7)
    theirs = inpaint_biharmonic(field, letter > 0, channel_axis=-1)
    np.testing.assert_allclose(biharmonic_fill(field, letter == 0), theirs, atol=1e-9)
    assert not biharmonic_fill(field, np.zeros((70, 70), bool)).any()  # nothing known: zeros


def test_levelling_only_some_regions_leaves_them_as_levelled_alone():
    """A window levels only the regions it pastes: those come out as when every region is
    levelled, the others as the blend without levelling."""
    rng = np.random.default_rng(4)
    photo = 0.5 + 0.02 * rng.standard_normal((80, 120, 3))
    output = photo + np.array([0.04, -0.03, 0.02])
    hole = np.zeros((80, 120), bool)
    hole[20:40, 15:40], hole[30:60, 70:100] = True, True
    first = np.zeros_like(hole)
    first[:, :60] = hole[:, :60]
    some = harmonize(output, photo, ~hole, level_only=first)
    every = harmonize(output, photo, ~hole)
    unlevelled = harmonize(output, photo, ~hole, level=False)
    np.testing.assert_array_equal(some[first], every[first])
    second = hole & ~first
    np.testing.assert_array_equal(some[second], unlevelled[second])
    assert np.abs(every[second] - unlevelled[second]).max() > 1e-3  # levelling does move it

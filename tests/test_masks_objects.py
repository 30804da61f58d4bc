"""Object-sized masks: deterministic, inside their hole-ratio range, some cut by the border."""

from __future__ import annotations

import numpy as np
import pytest

from lbam.data.masks import ObjectMasks, build_mask_generator
from lbam.errors import LbamError


def test_objects_are_deterministic_sized_and_often_touch_the_border():
    generator = build_mask_generator("objects")
    masks = [generator((256, 192), np.random.default_rng(seed)) for seed in range(60)]
    again = generator((256, 192), np.random.default_rng(7))
    np.testing.assert_array_equal(masks[7], again)
    ratios = [1 - m.mean() for m in masks]
    assert all(m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0} for m in masks)
    assert 0.08 < np.mean(ratios) < 0.35 and max(ratios) <= 0.6
    touching = [
        ((m[0] == 0).any() or (m[-1] == 0).any() or (m[:, 0] == 0).any() or (m[:, -1] == 0).any())
        for m in masks
    ]
    assert 0.25 < np.mean(touching) < 0.9


def test_no_border_option_keeps_holes_inside_mostly():
    generator = ObjectMasks(border=0, size=(0.2, 0.3))
    masks = [generator((256, 256), np.random.default_rng(seed)) for seed in range(30)]
    touching = [
        (m[0] == 0).any() or (m[-1] == 0).any() or (m[:, 0] == 0).any() or (m[:, -1] == 0).any()
        for m in masks
    ]
    assert np.mean(touching) < 0.5


def test_bad_options_name_the_kind():
    with pytest.raises(LbamError, match="objects"):
        ObjectMasks(count=(0, 2))

"""lbam.inpaint and the pad / run / crop / composite core, on a tiny random LBAM."""

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import lbam
from inference_helpers import Recorder, StubConfig
from lbam.errors import LbamError
from lbam.imaging.harmonic import harmonize
from lbam.inference import pipeline
from lbam.inference.pipeline import pad_to_multiple
from lbam.model.card import Generator
from lbam.model.lbam import LBAMGenerator
from lbam.utils.device import resolve_device

# These tests check exact hole geometry: the hole as given, without the default dilation.
inpaint = functools.partial(lbam.inpaint, dilate=0, refine="none")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LBAMGenerator(width=0.0625).eval()


def random_image(height, width, channels=3, dtype=np.uint8, seed=0):
    top = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, top + 1, (height, width, channels), dtype=dtype)


def expected_hole_values(model, image, hole):
    """The hole pixels as the method defines them, computed without the pipeline: pad by reflection
    to 128 multiples, run, crop, round to the image's integer type."""
    height, width = hole.shape
    top = np.iinfo(image.dtype).max
    known = torch.from_numpy((~hole).astype(np.float32))[None, None]
    x = torch.from_numpy(image.astype(np.float32) / top).permute(2, 0, 1)[None] * known
    pad = (0, -width % 128, 0, -height % 128)
    with torch.no_grad():
        out = model(F.pad(x, pad, mode="reflect"), F.pad(known, pad, mode="reflect"))
    out = out[0, :, :height, :width].permute(1, 2, 0).numpy()
    return np.rint(np.clip(out, 0, 1) * top).astype(image.dtype)[hole]


def test_numpy_odd_size_known_pixels_bit_exact_and_holes_from_model(model):
    image = random_image(333, 517)
    hole = np.zeros((333, 517), dtype=bool)
    hole[100:160, 200:290] = True
    result = inpaint(image, hole, model, blend="paste")
    assert isinstance(result, np.ndarray)
    assert result.shape == image.shape and result.dtype == np.uint8
    np.testing.assert_array_equal(result[~hole], image[~hole])
    expected = expected_hole_values(model, image, hole)
    assert np.abs(result[hole].astype(int) - expected.astype(int)).max() <= 1  # float rounding only
    assert (result[hole] != image[hole]).mean() > 0.9


def test_harmonic_blend_is_the_model_output_shifted_by_the_harmonic_error(model):
    """The default blend: raw output plus the harmonic spread of its error on the known pixels."""
    image = random_image(150, 170, seed=3)
    hole = np.zeros((150, 170), dtype=bool)
    hole[40:90, 60:130] = True
    result = inpaint(image, hole, model)
    np.testing.assert_array_equal(result[~hole], image[~hole])
    raw = pipeline.run_model(model, image, hole)
    expected = harmonize(np.clip(raw, 0, 1), image / 255.0, ~hole)
    expected = np.rint(np.clip(expected, 0, 1) * 255)[hole]
    assert np.abs(result[hole].astype(int) - expected).max() <= 1
    assert np.abs(result[hole].astype(int) - expected_hole_values(model, image, hole).astype(int)).max() > 5


def test_harmonic_blend_removes_a_colour_cast_the_paste_keeps():
    """A model whose fill is the photo plus a constant cast: harmonic takes the cast away, paste keeps it."""

    class Cast(Generator):
        config = StubConfig()
        size_multiple = 1

        def forward(self, image, known_mask):
            return torch.full_like(image, 0.5) + 0.2  # a flat grey, 51 levels too bright

    image = np.full((64, 80, 3), 128, dtype=np.uint8)
    hole = np.zeros((64, 80), dtype=bool)
    hole[20:44, 25:60] = True
    harmonic = inpaint(image, hole, Cast(), strategy="full")
    pasted = inpaint(image, hole, Cast(), strategy="full", blend="paste")
    assert np.abs(harmonic[hole].astype(int) - 128).max() <= 1
    assert np.abs(pasted[hole].astype(int) - 179).max() <= 1
    with pytest.raises(LbamError, match="blend"):
        inpaint(image, hole, Cast(), blend="poisson")


def test_pil_rgb_round_trip(model):
    image = Image.fromarray(random_image(120, 90))
    mask = Image.new("L", image.size, 0)
    mask.paste(255, (10, 20, 40, 60))  # white = hole
    result = inpaint(image, mask, model)
    assert isinstance(result, Image.Image)
    assert result.mode == "RGB" and result.size == image.size
    before, after = np.asarray(image), np.asarray(result)
    hole = np.asarray(mask) > 0
    np.testing.assert_array_equal(after[~hole], before[~hole])
    assert (after[hole] != before[hole]).any()


def test_sixteen_bit_array_stays_sixteen_bit_and_exact(model):
    image = random_image(150, 140, dtype=np.uint16)
    hole = np.zeros((150, 140), dtype=np.uint16)
    hole[30:70, 40:90] = 65535
    result = inpaint(image, hole, model, blend="paste")
    assert result.dtype == np.uint16 and result.shape == image.shape
    known = hole == 0
    np.testing.assert_array_equal(result[known], image[known])
    expected = expected_hole_values(model, image, ~known)
    assert np.abs(result[~known].astype(int) - expected.astype(int)).max() <= 1


def test_hole_touching_every_border(model):
    image = random_image(140, 200)
    hole = np.zeros((140, 200), dtype=bool)
    hole[:10, :] = True  # top edge
    hole[:, -7:] = True  # right edge
    hole[-5:, :30] = True  # bottom-left corner
    result = inpaint(image, hole, model, blend="paste")
    np.testing.assert_array_equal(result[~hole], image[~hole])
    expected = expected_hole_values(model, image, hole)
    assert np.abs(result[hole].astype(int) - expected.astype(int)).max() <= 1


def test_grayscale_stays_grayscale(model):
    grey = random_image(100, 130, channels=1)[:, :, 0]
    hole = np.zeros(grey.shape, dtype=bool)
    hole[20:50, 30:80] = True
    result = inpaint(Image.fromarray(grey), Image.fromarray(hole), model, blend="paste")
    assert result.mode == "L" and result.size == (130, 100)
    out = np.asarray(result)
    np.testing.assert_array_equal(out[~hole], grey[~hole])
    # grey output is the BT.601 luma of the model's RGB output
    rgb = expected_hole_values(model, np.repeat(grey[:, :, None], 3, axis=2), hole).astype(float)
    luma = np.rint(rgb @ np.array([0.299, 0.587, 0.114]))
    assert np.abs(out[hole] - luma).max() <= 1

    array_result = inpaint(grey, hole, model)  # (H, W) arrays come back (H, W)
    assert array_result.shape == grey.shape


def test_rgba_alpha_returned_as_it_was(model):
    rgba = random_image(90, 110, channels=4)
    hole = np.zeros((90, 110), dtype=bool)
    hole[40:60, 50:90] = True
    result = inpaint(Image.fromarray(rgba, "RGBA"), hole, model)
    assert result.mode == "RGBA"
    out = np.asarray(result)
    np.testing.assert_array_equal(out[:, :, 3], rgba[:, :, 3])
    np.testing.assert_array_equal(out[~hole], rgba[~hole])
    assert (out[hole][:, :3] != rgba[hole][:, :3]).any()

    array_out = inpaint(rgba, hole, model)
    assert array_out.shape == (90, 110, 4)
    np.testing.assert_array_equal(array_out[:, :, 3], rgba[:, :, 3])


def test_palette_image_comes_back_rgb_with_known_colours(model):
    rgb = Image.fromarray(random_image(64, 64))
    palette = rgb.quantize(colors=16)
    hole = np.zeros((64, 64), dtype=bool)
    hole[10:20, 10:30] = True
    result = inpaint(palette, hole, model)
    assert result.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(result)[~hole], np.asarray(palette.convert("RGB"))[~hole])


def test_dilate_grows_the_hole(model):
    image = random_image(128, 128)
    hole = np.zeros((128, 128), dtype=bool)
    hole[60:68, 60:68] = True
    plain = inpaint(image, hole, model)
    grown = inpaint(image, hole, model, dilate=4)
    changed = (grown != image).any(axis=2)
    yy, xx = np.mgrid[:128, :128]
    # every changed pixel lies within 4 px of the original hole (Chebyshev bound of the disc)
    assert changed[(yy < 56) | (yy >= 72) | (xx < 56) | (xx >= 72)].sum() == 0
    assert changed.sum() > (plain != image).any(axis=2).sum()
    assert changed[57, 64] and changed[64, 70]  # 3 and 3 px outside the hole: inside the disc


def test_invert_mask(model):
    image = random_image(100, 100)
    keep = np.zeros((100, 100), dtype=bool)
    keep[:, :70] = True  # with invert_mask, True marks the pixels to keep
    result = inpaint(image, keep, model, invert_mask=True)
    np.testing.assert_array_equal(result[:, :70], image[:, :70])
    assert (result[:, 70:] != image[:, 70:]).any()


def test_mask_without_hole_returns_unchanged_copy(model):
    image = random_image(50, 60)
    result = inpaint(image, np.zeros((50, 60), dtype=np.uint8), model)
    np.testing.assert_array_equal(result, image)
    assert result is not image


def test_all_hole_mask_is_an_error(model):
    with pytest.raises(LbamError, match="whole image"):
        inpaint(random_image(40, 40), np.full((40, 40), 255, dtype=np.uint8), model)


def test_mask_size_mismatch_is_an_error_unless_resized(model):
    image = random_image(80, 120)
    mask = np.zeros((40, 60), dtype=np.uint8)
    mask[10:20, 10:20] = 255
    with pytest.raises(LbamError, match="60x40 but the image is 120x80"):
        inpaint(image, mask, model)
    result = inpaint(image, mask, model, resize_mask=True)
    hole = np.zeros((80, 120), dtype=bool)
    hole[20:40, 20:40] = True  # nearest-neighbour stretch by 2
    np.testing.assert_array_equal(result[~hole], image[~hole])
    assert (result[hole] != image[hole]).any()


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (1, 200), (129, 2), (128, 256)])
def test_tiny_and_exact_sizes(model, size):
    image = random_image(*size)
    hole = np.zeros(size, dtype=bool)
    hole[0, 0] = True
    if hole.size > 1:
        result = inpaint(image, hole, model)
        assert result.shape == image.shape
        np.testing.assert_array_equal(result[~hole], image[~hole])
    else:
        with pytest.raises(LbamError):
            inpaint(image, hole, model)


def test_pad_to_multiple_reflects_and_keeps_the_image():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    padded = pad_to_multiple(x, 4)
    assert padded.shape == (2, 3, 8, 8)
    torch.testing.assert_close(padded[..., :5, :7], x)
    torch.testing.assert_close(padded, F.pad(x, (0, 1, 0, 3), mode="reflect"))
    big = pad_to_multiple(x, 128)  # pad far larger than the image: several reflections
    assert big.shape == (2, 3, 128, 128)
    torch.testing.assert_close(big[..., :5, :7], x)
    assert pad_to_multiple(x[..., :1, :], 8).shape == (2, 3, 8, 8)  # one row: replicate
    assert pad_to_multiple(x, 1) is x


def test_resize_strategy_runs_small_and_pastes_at_full_resolution(model):
    image = random_image(300, 420)
    hole = np.zeros((300, 420), dtype=bool)
    hole[100:140, 200:260] = True
    recorder = Recorder(model)
    result = inpaint(image, hole, recorder, strategy="resize", max_size=128)
    assert recorder.shapes == [(128, 128)]  # 420 -> 128 wide, 300 -> 91 -> padded to 128
    assert result.shape == image.shape
    np.testing.assert_array_equal(result[~hole], image[~hole])
    assert (result[hole] != image[hole]).mean() > 0.9


def test_auto_strategy_is_fit_with_a_training_size_window_for_a_small_hole(model):
    recorder = Recorder(model)
    hole = np.zeros((200, 300), dtype=bool)
    hole[5:10, 5:10] = True
    inpaint(random_image(200, 300), hole, recorder)
    assert recorder.shapes == [(256, 256)]  # a 200 x 256 window (at least 256, clipped), padded


class Grey(Generator):
    """A stand-in generator of any input size that fills with mid-grey."""

    config = StubConfig()
    size_multiple = 1

    def forward(self, image, known_mask):
        return torch.full_like(image, 0.5)


@pytest.mark.parametrize(
    ("train_size", "expected"), [(256, [(171, 256), (256, 256)]), (128, [(85, 128), (128, 128)])]
)
def test_fit_keeps_small_holes_sharp_and_runs_large_ones_at_the_training_scale(train_size, expected):
    image = random_image(1000, 1500)
    hole = np.zeros((1000, 1500), dtype=bool)
    hole[100:120, 100:120] = True  # small: a window of train_size at full resolution
    hole[500:900, 800:1300] = True  # large: context = its size, downscaled to train_size
    recorder = Recorder(Grey(), train_size)  # takes any size, so the shapes are the windows' own
    result = inpaint(image, hole, recorder, strategy="fit")
    # the small hole: a train_size window at full resolution; the large one: its 1000 x 1500
    # window (clipped to the photo) downscaled so that the longer side is train_size
    assert sorted(recorder.shapes) == expected
    np.testing.assert_array_equal(result[~hole], image[~hole])  # known pixels bit-exact
    assert (result[hole] != image[hole]).mean() > 0.9


def test_default_model_name_and_cached_loading(monkeypatch, model, tmp_path):
    loads = []

    def fake_load(name, device="cpu"):
        loads.append((name, str(device)))
        return model

    monkeypatch.setattr("lbam.inference.pipeline.load_model", fake_load)
    pipeline._load_cached.cache_clear()
    image, hole = random_image(32, 32), np.eye(32, dtype=bool)
    inpaint(image, hole, device="cpu")
    inpaint(image, hole, device="cpu")
    assert loads == [("lbam-compact", "cpu")]  # default name, loaded once
    pipeline._load_cached.cache_clear()


def test_missing_model_file_is_a_clear_error():
    with pytest.raises(LbamError, match="no-such-model"):
        inpaint(random_image(32, 32), np.eye(32, dtype=bool), "no-such-model.safetensors", device="cpu")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(LbamError, match="CUDA is not available"):
            resolve_device("cuda")


def test_bad_options_are_errors(model):
    image, hole = random_image(32, 32), np.eye(32, dtype=bool)
    with pytest.raises(LbamError, match="strategy"):
        inpaint(image, hole, model, strategy="tiles")
    with pytest.raises(LbamError, match="dilate"):
        inpaint(image, hole, model, dilate=-1)
    with pytest.raises(LbamError, match="uint8 or uint16"):
        inpaint(image.astype(np.float32), hole, model)
    with pytest.raises(LbamError, match="must be a PIL image or a numpy array, got list"):
        inpaint(image.tolist(), hole, model)

"""The fast photo path gives today's outputs: within one 8-bit level of the original full-resolution
code, kept here as the reference (issue 13: gray lookup table, strip-wise fused finish)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from colorizer import colorize
from colorizer.colorize import GUIDED_EPS, GUIDED_RADIUS, _guided_coefficients, merge_color, prepare
from colorizer.contract import denormalize_ab, gray_plane, gray_to_l, merge_l_ab, rgb_to_l, rgb_to_lab
from colorizer.fileio import to_bit_depth

SAMPLES = Path(__file__).resolve().parent.parent / "assets" / "samples"
RENDER, MULTIPLE = 128, 64


# --------------------------------------------------------------------------- the old code path (reference)
def reference_upsample(ab: np.ndarray, l_full: np.ndarray, mode: str) -> np.ndarray:
    """ab (h, w, 2) -> (H, W, 2): the full-resolution guided / bilinear upsampling as it was."""
    h, w = l_full.shape
    if ab.shape[:2] == (h, w):
        return ab
    if mode == "bilinear":
        return cv2.resize(ab, (w, h), interpolation=cv2.INTER_LINEAR)
    small_h, small_w = ab.shape[:2]
    guide_full = l_full * np.float32(1 / 100)
    guide_small = cv2.resize(guide_full, (small_w, small_h), interpolation=cv2.INTER_AREA)
    coeffs = [_guided_coefficients(guide_small, np.ascontiguousarray(ab[..., c]), GUIDED_RADIUS, GUIDED_EPS)
              for c in range(2)]
    a_full = cv2.resize(np.dstack([coeffs[0][0], coeffs[1][0]]), (w, h), interpolation=cv2.INTER_LINEAR)
    b_full = cv2.resize(np.dstack([coeffs[0][1], coeffs[1][1]]), (w, h), interpolation=cv2.INTER_LINEAR)
    return a_full * guide_full[..., None] + b_full


def reference_finish(prepared: colorize.Prepared, ab_norm: np.ndarray, saturation: float, mode: str) -> np.ndarray:
    """float32 RGB in [0, 1], as the finish computed it before issue 13."""
    ab = denormalize_ab(prepared.padding.crop(ab_norm)).transpose(1, 2, 0)
    ab = reference_upsample(np.ascontiguousarray(ab), prepared.l_merge, mode)
    if saturation != 1.0:
        ab = ab * np.float32(saturation)
    return merge_l_ab(prepared.l_merge, ab)


def reference_l(rgb: np.ndarray) -> np.ndarray:
    return rgb_to_lab(rgb)[..., 0]


# --------------------------------------------------------------------------- images
def photo_like(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth gray picture with edges and grain, float in [0, 1]."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.random((max(2, h // 16), max(2, w // 16))).astype(np.float32), (w, h),
                     interpolation=cv2.INTER_CUBIC)
    img[h // 3 : h // 2, w // 4 :] += 0.3
    return np.clip(img + rng.normal(0, 0.02, (h, w)).astype(np.float32), 0, 1)


def gray_rgb(h: int, w: int, seed: int, dtype: type) -> np.ndarray:
    top = 255 if dtype == np.uint8 else 65535
    gray = (photo_like(h, w, seed) * top + 0.5).astype(dtype)
    return np.repeat(gray[..., None], 3, axis=2)


def sample_images() -> list[tuple[str, np.ndarray]]:
    images = []
    for path in sorted(SAMPLES.glob("*.jpg")):
        rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        images += [(path.stem, rgb), (path.stem + "-gray", np.repeat(gray[..., None], 3, axis=2))]
    return images


def synthetic_images() -> list[tuple[str, np.ndarray]]:
    color = (np.dstack([photo_like(301, 457, s) for s in (1, 2, 3)]) * 255 + 0.5).astype(np.uint8)
    return [
        ("gray8-large", gray_rgb(611, 917, 1, np.uint8)),
        ("gray8-odd", gray_rgb(257, 129, 2, np.uint8)),
        ("gray8-small", gray_rgb(45, 77, 3, np.uint8)),  # below the render size: no resizing
        ("gray16", gray_rgb(403, 301, 4, np.uint16)),
        ("color8", color),
        ("float", np.dstack([photo_like(200, 150, 5)] * 3)),
    ]


def model_output(prepared: colorize.Prepared, seed: int) -> np.ndarray:
    """A plausible prediction: smooth normalized ab at the padded render size."""
    _, h, w = prepared.model_input.shape
    rng = np.random.default_rng(seed)
    small = (rng.random((2, max(2, h // 8), max(2, w // 8))).astype(np.float32) - 0.5) * 0.8
    return np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_CUBIC) for c in small])


ALL_IMAGES = synthetic_images() + sample_images()


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize(("name", "rgb"), ALL_IMAGES, ids=[n for n, _ in ALL_IMAGES])
def test_outputs_within_one_level_of_the_old_path(name: str, rgb: np.ndarray) -> None:
    prepared = prepare(rgb, RENDER, MULTIPLE)
    np.testing.assert_array_equal(prepared.l_merge, reference_l(rgb))  # L: the same values
    bit_depth = 16 if rgb.dtype == np.uint16 else 8
    for seed, (saturation, mode) in enumerate([(1.0, "guided"), (1.3, "guided"), (0.7, "bilinear")]):
        ab = model_output(prepared, seed)
        reference = reference_finish(prepared, ab, saturation, mode)
        out = merge_color(prepared, ab, saturation, mode, np.uint16 if bit_depth == 16 else np.uint8)
        diff = np.abs(out.astype(np.int64) - to_bit_depth(reference, bit_depth).astype(np.int64))
        if bit_depth == 8:
            assert diff.max() <= 1, (name, saturation, mode, diff.max())
            assert np.mean(diff > 0) < 1e-3, (name, saturation, mode)  # float rounding at a few pixels only
        else:
            assert diff.max() <= 2, (name, saturation, mode, diff.max())  # of 65535
        np.testing.assert_allclose(merge_color(prepared, ab, saturation, mode), reference, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_lookup_gives_the_same_l_for_every_level(dtype: type) -> None:
    levels = np.arange(np.iinfo(dtype).max + 1, dtype=dtype)
    rng = np.random.default_rng(0)
    for order in (levels, rng.permutation(levels)):  # every level, at various offsets in a row
        rgb = np.repeat(order.reshape(-1, 256)[..., None], 3, axis=2)
        np.testing.assert_array_equal(rgb_to_l(rgb), reference_l(rgb))
    gray = rng.integers(0, np.iinfo(dtype).max + 1, (33, 47), dtype=dtype)
    np.testing.assert_array_equal(gray_to_l(gray), reference_l(np.repeat(gray[..., None], 3, axis=2)))


def test_gray_plane_only_for_integer_gray_images() -> None:
    gray = gray_rgb(20, 30, 0, np.uint8)
    assert gray_plane(gray) is not None
    tinted = gray.copy()
    tinted[15, 20, 2] += 1  # one pixel off, below the first row
    assert gray_plane(tinted) is None
    np.testing.assert_array_equal(rgb_to_l(tinted), reference_l(tinted))
    assert gray_plane(gray.astype(np.float32) / 255) is None
    assert gray_plane(gray[..., :2]) is None


def test_merge_color_refuses_a_wrong_output() -> None:
    prepared = prepare(gray_rgb(40, 60, 0, np.uint8), RENDER, MULTIPLE)
    ab = model_output(prepared, 0)
    with pytest.raises(ValueError, match="output must be"):
        colorize.merge_color_into(prepared, ab, np.empty((40, 61, 3), np.uint8))
    with pytest.raises(ValueError, match="output must be"):
        colorize.merge_color_into(prepared, ab, np.empty((40, 60, 3), np.int32))
    with pytest.raises(ValueError, match="output dtype"):
        merge_color(prepared, ab, dtype=np.int32)
    with pytest.raises(ValueError, match="unknown upsampling"):
        merge_color(prepared, ab, upsampling="nearest", dtype=np.uint8)


def test_strips_cover_tall_and_wide_photos(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many strips (and a last short one) give the same output as one strip."""
    rgb = gray_rgb(203, 97, 7, np.uint8)
    prepared = prepare(rgb, RENDER, MULTIPLE)
    ab = model_output(prepared, 3)
    whole = merge_color(prepared, ab, dtype=np.uint8)
    monkeypatch.setattr(colorize, "STRIP_PIXELS", 97 * 10)
    np.testing.assert_array_equal(prepare(rgb, RENDER, MULTIPLE).l_merge, prepared.l_merge)
    np.testing.assert_array_equal(merge_color(prepared, ab, dtype=np.uint8), whole)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_levels_prepare_as_their_rgb(dtype: type) -> None:
    """A decoded gray photo's one plane gives the L of its three equal channels."""
    rgb = gray_rgb(45, 77, 3, dtype)
    gray = prepare(rgb[..., 0], RENDER, MULTIPLE)
    np.testing.assert_array_equal(gray.l_merge, prepare(rgb, RENDER, MULTIPLE).l_merge)


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_half_up_quantizing_is_bit_identical_to_to_bit_depth(bit_depth: int) -> None:
    """Video frames are quantized in the merge (``half_up``): the same pixels as before, when the
    float frame was quantized afterwards (FFV1 outputs decode to identical pixels)."""
    for name, rgb in ALL_IMAGES[:4]:
        prepared = prepare(rgb, RENDER, MULTIPLE)
        for seed, saturation in enumerate([1.0, 1.6]):
            ab = model_output(prepared, seed) * np.float32(3.0)  # also out of gamut: clipped alike
            dtype = np.uint8 if bit_depth == 8 else np.uint16
            fused = merge_color(prepared, ab, saturation, dtype=dtype, half_up=True)
            np.testing.assert_array_equal(fused, to_bit_depth(merge_color(prepared, ab, saturation), bit_depth),
                                          err_msg=name)

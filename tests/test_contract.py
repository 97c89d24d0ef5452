import numpy as np
import pytest

from colorizer import contract
from colorizer.contract import ContractError, ModelContract


def test_rgb_lab_round_trip():
    rng = np.random.default_rng(0)
    rgb = rng.random((31, 17, 3), dtype=np.float32)
    back = contract.lab_to_rgb(contract.rgb_to_lab(rgb))
    assert np.abs(back - rgb).max() < 1 / 255  # OpenCV uses gamma tables: error stays under one 8-bit level


def test_uint8_and_uint16_inputs_agree():
    rng = np.random.default_rng(1)
    rgb8 = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    rgb16 = rgb8.astype(np.uint16) * 257
    assert np.allclose(contract.rgb_to_lab(rgb8), contract.rgb_to_lab(rgb16), atol=1e-3)


def test_normalization_bounds_and_inverse():
    rng = np.random.default_rng(2)
    lab = contract.rgb_to_lab(rng.random((64, 64, 3), dtype=np.float32))
    l_norm = contract.normalize_l(lab[..., 0])
    ab_norm = contract.normalize_ab(lab[..., 1:])
    assert l_norm.min() >= -1 and l_norm.max() <= 1
    assert np.abs(ab_norm).max() <= 1
    assert np.allclose(contract.denormalize_l(l_norm), lab[..., 0], atol=1e-4)
    assert np.allclose(contract.denormalize_ab(ab_norm), lab[..., 1:], atol=1e-4)
    # extremes of the sRGB gamut stay inside [-1, 1]
    corners = np.array([[[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]]], np.float32)
    assert np.abs(contract.normalize_ab(contract.rgb_to_lab(corners)[..., 1:])).max() <= 1


def test_gray_has_zero_chroma():
    gray = np.repeat(np.linspace(0, 1, 50, dtype=np.float32)[None, :, None], 3, axis=2)
    assert np.abs(contract.rgb_to_lab(gray)[..., 1:]).max() < 0.2  # Lab units; a visible tint needs ~2


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (64, 64), (65, 130), (3, 200)])
@pytest.mark.parametrize("mode", ["reflect", "edge"])
def test_pad_and_crop(shape, mode):
    plane = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    padded, pad = contract.pad_to_multiple(plane[None], 64, mode)
    assert padded.shape[-2] % 64 == 0 and padded.shape[-1] % 64 == 0
    assert np.array_equal(pad.crop(padded)[0], plane)


def test_contract_metadata_round_trip():
    c = ModelContract(size_multiple=64, render_size=256, model_name="m", model_version="3",
                      training_data="photos", checkpoint_sha256="ab" * 32, architecture={"depth": 6})
    meta = c.to_metadata()
    assert all(isinstance(v, str) for v in meta.values())
    assert ModelContract.from_metadata(meta) == c


def test_model_without_contract_is_refused():
    with pytest.raises(ContractError, match="no Colorizer contract"):
        ModelContract.from_metadata({"producer": "someone"}, source="x.onnx")


def test_unknown_contract_version_is_refused():
    meta = ModelContract(size_multiple=64, render_size=256).to_metadata()
    meta["colorizer.format_version"] = "99"
    with pytest.raises(ContractError, match="version '99'"):
        ModelContract.from_metadata(meta)


def test_wrong_normalization_is_refused():
    meta = ModelContract(size_multiple=64, render_size=256).to_metadata()
    meta["colorizer.ab_normalization"] = "ab/128"
    with pytest.raises(ContractError, match="ab_normalization"):
        ModelContract.from_metadata(meta)

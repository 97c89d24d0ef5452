"""The encoders behind write_image: OpenCV's JPEG is Pillow's file byte for byte; PNG and TIFF are lossless."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from colorizer.desktop.media import image_write
from colorizer.desktop.media.image_metadata import ImageMetadata
from colorizer.desktop.media.image_write import write_image


def photo(height: int = 61, width: int = 83, dtype: type = np.uint8) -> np.ndarray:
    rng = np.random.default_rng(3)
    small = rng.random((4, 5, 3)).astype(np.float32)
    smooth = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    noisy = np.clip(smooth + rng.normal(0, 0.03, smooth.shape).astype(np.float32), 0, 1)
    top = np.iinfo(dtype).max
    return (noisy * top + 0.5).astype(dtype)


# Bytes that look like JPEG markers inside the metadata must not confuse the splice.
FULL_METADATA = ImageMetadata(
    exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00\xff\xdb\xff\xda",
    icc_profile=bytes(range(256)) * 300,  # 77 KB: two APP2 segments
    dpi=(300.0, 299.6),
    xmp=b"<x:xmpmeta>\xff\xdb</x:xmpmeta>",
    text=(("Comment", "caf\xe9 \xff"),),
)


@pytest.mark.parametrize("quality", [95, 75, 100, 1])
@pytest.mark.parametrize("metadata", [ImageMetadata(), FULL_METADATA], ids=["bare", "metadata"])
def test_jpeg_is_byte_for_byte_what_pillow_writes(tmp_path: Path, quality: int, metadata: ImageMetadata) -> None:
    rgb = photo()
    expected = io.BytesIO()
    Image.fromarray(rgb).save(expected, format="JPEG", **image_write._jpeg_options(metadata, quality))
    output = write_image(tmp_path / "out.jpg", rgb, quality=quality, metadata=metadata)
    assert output.read_bytes() == expected.getvalue()


def test_png_with_alpha_keeps_every_pixel(tmp_path: Path) -> None:
    rgb, alpha = photo(dtype=np.uint16), photo(dtype=np.uint16)[..., 0]
    output = write_image(tmp_path / "out.png", rgb, alpha=alpha)
    decoded = cv2.imread(str(output), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(decoded[..., 2::-1], rgb)
    np.testing.assert_array_equal(decoded[..., 3], alpha)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tiff_deflate_is_lossless(tmp_path: Path, dtype: type) -> None:
    rgb = photo(dtype=dtype)
    output = write_image(tmp_path / "out.tif", rgb)
    with tifffile.TiffFile(output) as tif:
        page = tif.pages[0]
        assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        np.testing.assert_array_equal(page.asarray(), rgb)

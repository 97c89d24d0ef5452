"""Image file reading and writing: formats by content, orientation, metadata, bit depth, errors, atomicity."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, ImageOps, PngImagePlugin

from colorizer.desktop.media import image_read, image_write
from colorizer.desktop.media.errors import ImageReadError, ImageWriteError
from colorizer.desktop.media.formats import (
    detect_format,
    format_for_suffix,
    parse_format_option,
    suffix_for_format,
)
from colorizer.desktop.media.image_metadata import ImageMetadata
from colorizer.desktop.media.image_read import read_image
from colorizer.desktop.media.image_write import write_image
from colorizer.fileio import is_partial_file

EXIF_IFD = 0x8769
GPS_IFD = 0x8825
ORIENTATION = 0x0112
DESCRIPTION = 0x010E
DATETIME_ORIGINAL = 0x9003


# --------------------------------------------------------------------------- helpers
def colorful(height: int = 24, width: int = 32, seed: int = 0) -> np.ndarray:
    """Smooth colorful uint8 RGB (compresses predictably, survives JPEG roughly)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width, y / height, 1.0 - x / width], axis=2) * 200 + 20
    return np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8)


def noise16(height: int = 20, width: int = 28, channels: int = 3, seed: int = 1) -> np.ndarray:
    """uint16 values that are not multiples of 257 (8-bit truncation would show)."""
    shape = (height, width, channels) if channels > 1 else (height, width)
    return np.random.default_rng(seed).integers(0, 65536, shape, dtype=np.uint16)


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def photo_exif(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    if orientation is not None:
        exif[ORIENTATION] = orientation
    exif[DESCRIPTION] = "Grandma's garden, 1952 – été".encode()  # UTF-8 bytes, as cameras and exiftool write
    exif[EXIF_IFD] = {DATETIME_ORIGINAL: "1952:07:14 15:30:00"}
    return exif


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_pillow(path: Path, image: Image.Image, fmt: str, **options: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt, **options)
    return path


# --------------------------------------------------------------------------- formats
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP", "BMP"])
def test_formats_are_detected_by_content(tmp_path: Path, fmt: str) -> None:
    path = save_pillow(tmp_path / "no_extension", Image.fromarray(colorful()), fmt)
    assert detect_format(path) == fmt


def test_png_named_jpg_is_read_as_png(tmp_path: Path) -> None:
    pixels = colorful()
    path = save_pillow(tmp_path / "photo.jpg", Image.fromarray(pixels), "PNG")
    assert detect_format(path) == "PNG"
    decoded = read_image(path)
    assert decoded.format == "PNG"
    np.testing.assert_array_equal(decoded.rgb, pixels)


def test_text_file_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("BM these are not pixels, just notes about the photos\n" * 3)
    assert detect_format(path) is None
    with pytest.raises(ImageReadError, match="not an image") as info:
        read_image(path)
    assert "notes.jpg" in str(info.value)


def test_unsupported_format_is_named(tmp_path: Path) -> None:
    path = save_pillow(tmp_path / "anim.gif", Image.fromarray(colorful()), "GIF")
    assert detect_format(path) is None
    with pytest.raises(ImageReadError, match="unsupported format: GIF"):
        read_image(path)


def test_format_options_and_suffixes() -> None:
    assert parse_format_option("jpg") == "JPEG"
    assert parse_format_option(" JPEG ") == "JPEG"
    assert parse_format_option("tif") == "TIFF"
    assert parse_format_option("webp") == "WEBP"
    assert parse_format_option("Same") is None
    with pytest.raises(ValueError, match="jpeg"):
        parse_format_option("gif")
    assert suffix_for_format("JPEG") == ".jpg"
    assert suffix_for_format("tiff") == ".tif"
    assert suffix_for_format("JPEG", source="scan.JPEG") == ".JPEG"
    assert suffix_for_format("PNG", source="scan.jpg") == ".png"
    assert format_for_suffix("album/photo.JPG") == "JPEG"
    assert format_for_suffix(".tiff") == "TIFF"
    assert format_for_suffix(".hidden.png") == "PNG"
    assert format_for_suffix("readme.txt") is None


# --------------------------------------------------------------------------- orientation
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    pixels = colorful(12, 20)
    path = save_pillow(tmp_path / "o.png", Image.fromarray(pixels), "PNG", exif=photo_exif(orientation))
    with Image.open(path) as reference:
        expected = np.asarray(ImageOps.exif_transpose(reference).convert("RGB"))
    decoded = read_image(path)
    np.testing.assert_array_equal(decoded.rgb, expected)
    exif = Image.Exif()
    exif.load(decoded.metadata.exif)
    assert exif[ORIENTATION] == 1


@pytest.mark.parametrize(("orientation", "bright_corner"), [(6, "top_right"), (8, "bottom_left")])
def test_jpeg_orientation_pixel_layout(tmp_path: Path, orientation: int, bright_corner: str) -> None:
    stored = np.zeros((32, 48, 3), np.uint8)
    stored[:16, :16] = 255  # top-left quadrant of the stored pixels is white
    path = save_pillow(tmp_path / "rotated.jpg", Image.fromarray(stored), "JPEG", exif=photo_exif(orientation))
    decoded = read_image(path)
    assert decoded.rgb.shape == (48, 32, 3)  # displayed upright: portrait
    corners = {
        "top_left": decoded.rgb[:16, :16],
        "top_right": decoded.rgb[:16, -16:],
        "bottom_left": decoded.rgb[-16:, :16],
        "bottom_right": decoded.rgb[-16:, -16:],
    }
    for name, block in corners.items():
        assert (block.mean() > 200) == (name == bright_corner), name


def test_jpeg_exif_round_trip_resets_orientation_and_keeps_tags(tmp_path: Path) -> None:
    source = save_pillow(
        tmp_path / "in" / "scan.jpg", Image.fromarray(colorful(24, 40)), "JPEG", exif=photo_exif(6), quality=95
    )
    decoded = read_image(source)
    assert decoded.rgb.shape == (40, 24, 3)
    output = write_image(
        tmp_path / "out" / "scan.jpg", decoded.rgb.astype(np.float32) / 255.0, metadata=decoded.metadata
    )
    with Image.open(output) as written:
        assert written.size == (24, 40)
        exif = written.getexif()
        assert exif[ORIENTATION] == 1
        assert exif[DESCRIPTION].encode("latin-1").decode("utf-8") == "Grandma's garden, 1952 – été"
        assert exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] == "1952:07:14 15:30:00"
        assert written.info["exif"] == decoded.metadata.exif  # carried byte for byte
    assert read_image(output).rgb.shape == (40, 24, 3)  # not rotated a second time


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow says so about the damaged source
def test_damaged_exif_does_not_fail_reading_or_writing(tmp_path: Path) -> None:
    damaged = b"Exif\x00\x00II*\x00\xff\xff\x00\x00" + b"\x07" * 40  # IFD0 offset past the end
    source = save_pillow(tmp_path / "d.jpg", Image.fromarray(colorful()), "JPEG", exif=damaged)
    decoded = read_image(source)
    assert decoded.rgb.shape == (24, 32, 3)
    assert decoded.metadata.exif is None
    forged = ImageMetadata(exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x0e\x00\x02\xff\xff\xff\xff")
    for name in ("out.tif", "out.png", "out.jpg"):
        output = write_image(tmp_path / name, decoded.rgb, metadata=forged)
        assert read_image(output).rgb.shape == (24, 32, 3)


def test_xmp_orientation_is_reset(tmp_path: Path) -> None:
    xmp = b'<x:xmpmeta><rdf:Description tiff:Orientation="6" dc:title="Wedding"/></x:xmpmeta>'
    path = save_pillow(tmp_path / "x.jpg", Image.fromarray(colorful()), "JPEG", xmp=xmp, exif=photo_exif(6))
    decoded = read_image(path)
    assert b'tiff:Orientation="1"' in decoded.metadata.xmp
    assert b'dc:title="Wedding"' in decoded.metadata.xmp
    output = write_image(tmp_path / "x.png", decoded.rgb, metadata=decoded.metadata)
    assert read_image(output).metadata.xmp == decoded.metadata.xmp


# --------------------------------------------------------------------------- metadata
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP"])
def test_icc_profile_and_dpi_round_trip(tmp_path: Path, fmt: str) -> None:
    icc = srgb_icc()
    options: dict[str, object] = {"icc_profile": icc}
    if fmt != "WEBP":  # WebP has no resolution field
        options["dpi"] = (300, 300)
    source = save_pillow(tmp_path / f"in.{fmt.lower()}", Image.fromarray(colorful()), fmt, **options)
    decoded = read_image(source)
    assert decoded.metadata.icc_profile == icc
    output = write_image(tmp_path / f"out{suffix_for_format(fmt)}", decoded.rgb, metadata=decoded.metadata)
    again = read_image(output)
    assert again.format == fmt
    assert again.metadata.icc_profile == icc
    if fmt == "WEBP":
        assert again.metadata.dpi is None
    else:
        assert decoded.metadata.dpi == pytest.approx((300, 300), abs=0.01)
        assert again.metadata.dpi == pytest.approx((300, 300), abs=0.01)


def test_gray_icc_profile_is_not_carried_to_rgb_output(tmp_path: Path) -> None:
    gray_profile = bytearray(srgb_icc())
    gray_profile[16:20] = b"GRAY"
    gray = Image.fromarray(colorful()[..., 0])
    path = save_pillow(tmp_path / "gray.png", gray, "PNG", icc_profile=bytes(gray_profile))
    assert read_image(path).metadata.icc_profile is None


def test_png_text_chunks_round_trip(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "Picnic at the lake")
    info.add_itxt("Description", "Oma und Opa – 照片")
    path = save_pillow(tmp_path / "t.png", Image.fromarray(colorful()), "PNG", pnginfo=info)
    decoded = read_image(path)
    assert decoded.metadata.text_value("title") == "Picnic at the lake"
    output = write_image(tmp_path / "out.png", decoded.rgb, metadata=decoded.metadata)
    with Image.open(output) as written:
        written.load()
        assert written.text["Title"] == "Picnic at the lake"
        assert written.text["Description"] == "Oma und Opa – 照片"


def test_jpeg_exif_goes_into_tiff_sub_ifds(tmp_path: Path) -> None:
    exif = photo_exif(8)
    exif[GPS_IFD] = {1: "N", 2: (48.0, 51.0, 24.5)}
    source = save_pillow(tmp_path / "in.jpg", Image.fromarray(colorful()), "JPEG", exif=exif)
    decoded = read_image(source)
    output = write_image(tmp_path / "out.tif", decoded.rgb, metadata=decoded.metadata)
    with Image.open(output) as written:
        tags = written.getexif()
        assert tags[DESCRIPTION].encode("latin-1").decode("utf-8") == "Grandma's garden, 1952 – été"
        assert tags.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] == "1952:07:14 15:30:00"
        assert tags.get_ifd(GPS_IFD)[1] == "N"
        assert ORIENTATION not in tags or tags[ORIENTATION] == 1
    with tifffile.TiffFile(output) as tif:  # a second reader agrees
        assert tif.pages[0].tags["ExifTag"].value["DateTimeOriginal"] == "1952:07:14 15:30:00"
    np.testing.assert_array_equal(read_image(output).rgb, decoded.rgb)
    # and from the TIFF on to another format
    again = write_image(tmp_path / "again.jpg", read_image(output).rgb, metadata=read_image(output).metadata)
    with Image.open(again) as written:
        assert written.getexif().get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] == "1952:07:14 15:30:00"


# --------------------------------------------------------------------------- bit depth
def test_16_bit_png_keeps_16_bits(tmp_path: Path) -> None:
    pixels = noise16()
    source = tmp_path / "deep.png"
    assert cv2.imwrite(str(source), pixels[..., ::-1])
    decoded = read_image(source)
    assert decoded.bit_depth == 16
    assert decoded.rgb.dtype == np.uint16
    np.testing.assert_array_equal(decoded.rgb, pixels)
    output = write_image(tmp_path / "out.png", decoded.rgb, metadata=decoded.metadata)
    np.testing.assert_array_equal(cv2.imread(str(output), cv2.IMREAD_UNCHANGED)[..., ::-1], pixels)


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("compression", [None, "zlib"])
def test_tiff_keeps_bit_depth_and_orientation(tmp_path: Path, bits: int, compression: str | None) -> None:
    pixels = noise16() if bits == 16 else colorful(20, 28)
    source = tmp_path / "scan.tif"
    tiff_tags = [(ORIENTATION, "H", 1, 8, True)]
    tifffile.imwrite(source, pixels, photometric="rgb", compression=compression, extratags=tiff_tags)
    decoded = read_image(source)
    assert decoded.bit_depth == bits
    np.testing.assert_array_equal(decoded.rgb, np.rot90(pixels, 1))  # 8: rotate 90 degrees counterclockwise
    output = write_image(tmp_path / "out.tif", decoded.rgb, metadata=decoded.metadata)
    written = tifffile.imread(output)
    assert written.dtype == pixels.dtype
    np.testing.assert_array_equal(written, decoded.rgb)
    np.testing.assert_array_equal(read_image(output).rgb, decoded.rgb)  # Orientation 1 in the output


def test_float_output_written_at_requested_depth(tmp_path: Path) -> None:
    rgb = np.random.default_rng(2).random((10, 14, 3), dtype=np.float32)
    deep = write_image(tmp_path / "deep.png", rgb, bit_depth=16)
    assert read_image(deep).rgb.dtype == np.uint16
    np.testing.assert_allclose(read_image(deep).rgb / 65535.0, rgb, atol=1e-4)
    shallow = write_image(tmp_path / "shallow.jpg", rgb, bit_depth=16)  # JPEG holds 8 bits
    assert read_image(shallow).bit_depth == 8


def test_16_bit_gray_png(tmp_path: Path) -> None:
    gray = noise16(channels=1)
    source = save_pillow(tmp_path / "gray16.png", Image.fromarray(gray), "PNG")
    decoded = read_image(source)
    assert decoded.bit_depth == 16
    assert not decoded.is_color
    for channel in range(3):
        np.testing.assert_array_equal(decoded.rgb[..., channel], gray)


# --------------------------------------------------------------------------- modes and alpha
def test_rgba_png_alpha_is_kept_and_reattached(tmp_path: Path) -> None:
    rgba = np.dstack([colorful(), np.linspace(0, 255, 24 * 32).reshape(24, 32).astype(np.uint8)])
    source = save_pillow(tmp_path / "a.png", Image.fromarray(rgba), "PNG")
    decoded = read_image(source)
    np.testing.assert_array_equal(decoded.alpha, rgba[..., 3])
    for fmt in ("PNG", "TIFF"):
        output = write_image(tmp_path / f"out{suffix_for_format(fmt)}", decoded.rgb, alpha=decoded.alpha)
        with Image.open(output) as written:
            assert written.mode == "RGBA"
            np.testing.assert_array_equal(np.asarray(written), rgba)
    jpeg = write_image(tmp_path / "out.jpg", decoded.rgb, alpha=decoded.alpha)
    assert read_image(jpeg).alpha is None


def test_16_bit_alpha_is_kept(tmp_path: Path) -> None:
    rgba = noise16(channels=4)
    source = tmp_path / "deep_alpha.png"
    assert cv2.imwrite(str(source), rgba[..., [2, 1, 0, 3]])
    decoded = read_image(source)
    np.testing.assert_array_equal(decoded.alpha, rgba[..., 3])
    output = write_image(tmp_path / "out.png", decoded.rgb, alpha=decoded.alpha)
    np.testing.assert_array_equal(cv2.imread(str(output), cv2.IMREAD_UNCHANGED)[..., [2, 1, 0, 3]], rgba)


def test_palette_image_decodes_to_rgb(tmp_path: Path) -> None:
    palette = Image.fromarray(colorful()).quantize(colors=16)
    source = save_pillow(tmp_path / "p.png", palette, "PNG")
    decoded = read_image(source)
    assert decoded.mode == "P"
    assert decoded.is_color
    assert decoded.alpha is None
    np.testing.assert_array_equal(decoded.rgb, np.asarray(palette.convert("RGB")))


def test_palette_with_transparency_gets_alpha(tmp_path: Path) -> None:
    palette = Image.fromarray(colorful()).quantize(colors=8)
    palette.info["transparency"] = 0
    source = save_pillow(tmp_path / "pt.png", palette, "PNG", transparency=0)
    decoded = read_image(source)
    assert decoded.alpha is not None
    assert set(np.unique(decoded.alpha)) <= {0, 255}


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk_decodes_to_rgb(tmp_path: Path, fmt: str) -> None:
    rgb = colorful()
    cmyk = Image.fromarray(rgb).convert("CMYK")
    source = save_pillow(tmp_path / f"cmyk.{fmt.lower()}", cmyk, fmt)
    decoded = read_image(source)
    assert decoded.mode == "CMYK"
    assert decoded.rgb.shape == (24, 32, 3)
    assert decoded.rgb.dtype == np.uint8
    assert decoded.is_color
    assert np.abs(decoded.rgb.astype(int) - rgb).mean() < 8


@pytest.mark.parametrize(("mode", "fmt"), [("L", "JPEG"), ("LA", "PNG"), ("1", "BMP"), ("L", "TIFF")])
def test_grayscale_decodes_to_three_equal_channels(tmp_path: Path, mode: str, fmt: str) -> None:
    gray = Image.fromarray(colorful()).convert(mode)
    source = save_pillow(tmp_path / f"gray.{fmt.lower()}", gray, fmt)
    decoded = read_image(source)
    assert decoded.rgb.shape == (24, 32, 3)
    assert not decoded.is_color
    np.testing.assert_array_equal(decoded.rgb[..., 0], decoded.rgb[..., 1])
    np.testing.assert_array_equal(decoded.rgb[..., 0], decoded.rgb[..., 2])
    assert (decoded.alpha is not None) == (mode == "LA")


def test_gray_photo_stored_as_rgb_is_not_color(tmp_path: Path) -> None:
    gray = np.repeat(colorful()[..., :1], 3, axis=2)
    source = save_pillow(tmp_path / "gray_rgb.jpg", Image.fromarray(gray), "JPEG", quality=90)
    decoded = read_image(source)
    assert decoded.mode == "RGB"
    assert not decoded.is_color


# --------------------------------------------------------------------------- errors
def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty") as info:
        read_image(path)
    assert str(path) in str(info.value)
    assert info.value.path == path


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP", "BMP"])
def test_truncated_file_is_an_error(tmp_path: Path, fmt: str) -> None:
    whole = save_pillow(tmp_path / "whole", Image.fromarray(colorful(64, 64)), fmt)
    data = whole.read_bytes()
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated|corrupt") as info:
        read_image(path)
    assert path.name in str(info.value)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_truncated_16_bit_file_is_an_error(tmp_path: Path, fmt: str) -> None:
    whole = tmp_path / f"whole.{fmt.lower()}"
    if fmt == "PNG":
        cv2.imwrite(str(whole), noise16(64, 64))
    else:
        tifffile.imwrite(whole, noise16(64, 64), photometric="rgb")
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ImageReadError, match="truncated|corrupt"):
        read_image(path)


def test_truncated_jpeg_message_says_truncated(tmp_path: Path) -> None:
    whole = save_pillow(tmp_path / "whole.jpg", Image.fromarray(colorful(64, 64)), "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(whole.read_bytes()[:-200])
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(path)


def test_garbage_with_image_signature(tmp_path: Path) -> None:
    path = tmp_path / "garbage.jpg"
    path.write_bytes(b"\xff\xd8\xff" + np.random.default_rng(3).bytes(4000))
    with pytest.raises(ImageReadError, match="garbage.jpg"):
        read_image(path)


def test_random_bytes_are_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "random.png"
    path.write_bytes(np.random.default_rng(4).bytes(500))
    with pytest.raises(ImageReadError, match="not an image"):
        read_image(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="not found"):
        read_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageReadError, match="directory"):
        read_image(tmp_path)


def test_permission_error_is_reported(tmp_path: Path, monkeypatch) -> None:
    path = save_pillow(tmp_path / "secret.png", Image.fromarray(colorful()), "PNG")

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(image_read, "open", denied, raising=False)
    with pytest.raises(ImageReadError, match="permission denied") as info:
        read_image(path)
    assert "secret.png" in str(info.value)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_unreadable_file(tmp_path: Path) -> None:
    path = save_pillow(tmp_path / "secret.png", Image.fromarray(colorful()), "PNG")
    path.chmod(0)
    try:
        with pytest.raises(ImageReadError, match="permission denied"):
            read_image(path)
    finally:
        path.chmod(0o644)


def test_pixel_limit(tmp_path: Path) -> None:
    path = save_pillow(tmp_path / "big.png", Image.fromarray(colorful(40, 50)), "PNG")
    with pytest.raises(ImageReadError, match="max_pixels"):
        read_image(path, max_pixels=1000)
    assert read_image(path, max_pixels=2000).rgb.shape == (40, 50, 3)
    assert read_image(path, max_pixels=None).rgb.shape == (40, 50, 3)


def test_pillow_pixel_limit_does_not_override_max_pixels(tmp_path: Path, monkeypatch) -> None:
    pixels = colorful(20, 28)
    tiff = tmp_path / "large.tif"
    tifffile.imwrite(tiff, pixels, photometric="rgb", compression="zlib")
    webp = save_pillow(tmp_path / "large.webp", Image.fromarray(pixels), "WEBP", lossless=True)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # as if the images were huge
    np.testing.assert_array_equal(read_image(tiff).rgb, pixels)  # decoded without Pillow's limit
    with pytest.raises(ImageReadError, match="MAX_IMAGE_PIXELS"):  # WebP: Pillow checks when opening
        read_image(webp)


def test_error_survives_pickling() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(ImageReadError("a/b.jpg", "empty file (0 bytes)")))
    assert str(error) == "cannot read image 'a/b.jpg': empty file (0 bytes)"


def test_reading_leaves_input_unchanged(tmp_path: Path) -> None:
    path = save_pillow(tmp_path / "in.jpg", Image.fromarray(colorful()), "JPEG", exif=photo_exif(6))
    before = (digest(path), path.stat().st_mtime_ns, path.stat().st_size)
    read_image(path)
    assert (digest(path), path.stat().st_mtime_ns, path.stat().st_size) == before


# --------------------------------------------------------------------------- writing
def test_failed_encoding_leaves_no_output_and_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    previous = out_dir / "photo.png"
    previous.write_bytes(b"previous output")

    def broken_encoder(fh, *args: object) -> None:
        fh.write(b"\x89PNG half an image")
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(image_write, "_encode_png", broken_encoder)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_image(out_dir / "new.png", colorful())
    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_image(previous, colorful())
    assert sorted(p.name for p in out_dir.iterdir()) == ["photo.png"]
    assert previous.read_bytes() == b"previous output"


def test_successful_write_leaves_only_the_output(tmp_path: Path) -> None:
    output = write_image(tmp_path / "deep" / "folder" / "photo.webp", colorful(), quality=80)
    assert [p.name for p in output.parent.iterdir()] == ["photo.webp"]
    assert detect_format(output) == "WEBP"
    assert is_partial_file(output.with_name(".photo.partial-1a2b3c4d.webp"))
    assert not is_partial_file(output)


def test_encoder_is_chosen_by_format_not_suffix(tmp_path: Path) -> None:
    output = write_image(tmp_path / "photo.jpg", colorful(), format="png")
    assert detect_format(output) == "PNG"
    with pytest.raises(ValueError, match="format"):
        write_image(tmp_path / "photo.xyz", colorful())


def test_refuses_to_overwrite_the_source(tmp_path: Path) -> None:
    source = save_pillow(tmp_path / "in.png", Image.fromarray(colorful()), "PNG")
    before = digest(source)
    with pytest.raises(ImageWriteError, match="input"):
        write_image(tmp_path / "." / "in.png", colorful(), source=source)
    assert digest(source) == before
    assert [p.name for p in tmp_path.iterdir()] == ["in.png"]


def test_bmp_output_and_bad_arguments(tmp_path: Path) -> None:
    pixels = colorful()
    output = write_image(tmp_path / "p.bmp", pixels, alpha=np.full(pixels.shape[:2], 128, np.uint8))
    decoded = read_image(output)
    np.testing.assert_array_equal(decoded.rgb, pixels)
    assert decoded.alpha is None
    with pytest.raises(ValueError, match="shape"):
        write_image(tmp_path / "bad.png", pixels[..., 0])
    with pytest.raises(ValueError, match="alpha"):
        write_image(tmp_path / "bad.png", pixels, alpha=np.zeros((3, 3), np.uint8))
    assert not list(tmp_path.glob("bad*"))


def test_write_accepts_in_memory_metadata(tmp_path: Path) -> None:
    metadata = ImageMetadata(exif=photo_exif(1).tobytes(), dpi=(600.0, 600.0), text=(("Comment", "scan"),))
    output = write_image(tmp_path / "m.jpg", colorful(), metadata=metadata)
    with Image.open(output) as written:
        assert written.info["dpi"] == (600, 600)
        assert written.info["comment"] == b"scan"
        assert written.getexif().get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] == "1952:07:14 15:30:00"

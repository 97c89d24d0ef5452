"""Photos as real archives hold them, broken on purpose: encoder size limits, resolution a file never
declared, tRNS transparency, several Orientation tags, TIFF samples Pillow has no mode for."""

from __future__ import annotations

import io
import struct

import numpy as np
import piexif
import pytest
import tifffile
from faults import CLI, check_outputs, digests, read_report
from PIL import Image, ImageCms
from synthetic import gray, synthetic_photo

from colorizer.desktop.media.errors import ImageReadError, ImageWriteError
from colorizer.desktop.media.image_read import read_image
from colorizer.desktop.media.image_write import JpegPlanes, write_image
from colorizer.desktop.media.tiff_tags import EXIF_PREFIX, TAG_ORIENTATION


# --------------------------------------------------------------------------- encoder size limits
@pytest.mark.parametrize(
    ("fmt", "shape", "limit"),
    [
        ("JPEG", (1, 65501), 65500),
        ("JPEG", (65501, 2), 65500),
        ("WEBP", (1, 16384), 16383),
        ("WEBP", (16384, 3), 16383),
        ("JPEG-planes", (2, 65502), 65500),
    ],
)
def test_a_picture_too_large_for_its_format_is_a_write_error_naming_the_file(tmp_path, fmt, shape, limit):
    """libjpeg takes at most 65500 pixels a side and WebP 16383: OpenCV's JPEG encoder said only "could
    not encode" (a RuntimeError, "colorization failed" in the report), Pillow's WebP a bare ValueError."""
    height, width = shape
    if fmt == "JPEG-planes":
        chroma = np.full(((height + 1) // 2, (width + 1) // 2), 128, np.uint8)
        pixels, fmt = JpegPlanes(np.full(shape, 100, np.uint8), chroma, chroma.copy()), "JPEG"
    else:
        pixels = np.full((*shape, 3), 100, np.uint8)
    target = tmp_path / f"strip.{fmt.lower()}"
    with pytest.raises(ImageWriteError, match=rf"{width}x{height} .*at most {limit}") as caught:
        write_image(target, pixels, format=fmt)
    assert str(target) in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_the_largest_pictures_a_format_holds_are_still_written(tmp_path):
    write_image(tmp_path / "a.jpg", np.full((1, 65500, 3), 90, np.uint8))
    write_image(tmp_path / "b.webp", np.full((16383, 1, 3), 90, np.uint8))
    assert read_image(tmp_path / "a.jpg").width == 65500 and read_image(tmp_path / "b.webp").height == 16383


# --------------------------------------------------------------------------- resolution the file never declared
def test_a_tiff_without_resolution_tags_declares_no_dpi(tmp_path):
    """Pillow reports 1 dpi for a TIFF without XResolution: carried to the output, a 4000-pixel scan
    would print 4000 inches wide."""
    Image.fromarray(gray(1, 30, 40)).save(tmp_path / "scan.tif")
    image = read_image(tmp_path / "scan.tif")
    assert image.metadata.dpi is None
    write_image(tmp_path / "out.png", image.rgb, metadata=image.metadata)
    assert "dpi" not in Image.open(tmp_path / "out.png").info


def test_a_jpeg_without_declared_resolution_gets_no_invented_72_dpi(tmp_path):
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Scanner"}})  # EXIF, but no resolution in it
    Image.fromarray(gray(2, 30, 40)).save(tmp_path / "scan.jpg", exif=exif)
    assert read_image(tmp_path / "scan.jpg").metadata.dpi is None


def _exif_resolution(value: int, unit: int) -> bytes:
    """An EXIF block declaring ``value`` pixels per ``unit`` (2: inch, 3: centimetre), nothing else."""
    ifd = {piexif.ImageIFD.XResolution: (value, 1), piexif.ImageIFD.YResolution: (value, 1),
           piexif.ImageIFD.ResolutionUnit: unit}
    return piexif.dump({"0th": ifd})


@pytest.mark.parametrize(
    ("save", "expected"),
    [
        ({"format": "JPEG", "dpi": (600, 600)}, (600, 600)),
        ({"format": "JPEG", "exif": _exif_resolution(300, 2)}, (300, 300)),  # dots per inch
        ({"format": "JPEG", "exif": _exif_resolution(100, 3)}, (254, 254)),  # dots per centimetre
        ({"format": "TIFF", "dpi": (400, 300)}, (400, 300)),
    ],
)
def test_a_declared_resolution_is_still_read(tmp_path, save, expected):
    path = tmp_path / "scan.img"
    Image.fromarray(gray(3, 30, 40)).save(path, **save)
    assert read_image(path).metadata.dpi == pytest.approx(expected, abs=0.01)


def test_a_tiff_resolution_in_centimetres_is_converted(tmp_path):
    tifffile.imwrite(tmp_path / "scan.tif", gray(4, 30, 40), resolution=(100, 100), resolutionunit="CENTIMETER")
    assert read_image(tmp_path / "scan.tif").metadata.dpi == pytest.approx((254, 254))


# --------------------------------------------------------------------------- PNG tRNS
@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_png_transparent_color_becomes_alpha(tmp_path, mode):
    """A gray or RGB PNG with a tRNS chunk has transparent pixels; only palette PNGs kept them."""
    pixels = gray(5, 20, 30) if mode == "L" else synthetic_photo(5, 20, 30)
    key = 17 if mode == "L" else (1, 2, 3)
    pixels[3:6, 4:9] = key
    Image.fromarray(pixels, mode).save(tmp_path / "keyed.png", transparency=key)
    image = read_image(tmp_path / "keyed.png")
    expected = np.full((20, 30), 255, np.uint8)
    expected[np.all(pixels.reshape(20, 30, -1) == np.reshape(key, -1), axis=2)] = 0
    assert image.alpha is not None and np.array_equal(image.alpha, expected)
    assert np.array_equal(image.pixels, pixels)
    write_image(tmp_path / "out.png", image.rgb, alpha=image.alpha)
    assert np.array_equal(read_image(tmp_path / "out.png").alpha, expected)


# --------------------------------------------------------------------------- several Orientation tags
def _exif_with(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHI", *e[:3]) + e[3] for e in entries)
    return EXIF_PREFIX + b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00\x00\x00\x00"


def _orientations(exif: bytes) -> list[int]:
    tiff = exif[len(EXIF_PREFIX) :]
    (count,) = struct.unpack_from("<H", tiff, 8)
    entries = [struct.unpack_from("<HHIH", tiff, 10 + 12 * i) for i in range(count)]
    return [value for tag, _, _, value in entries if tag == TAG_ORIENTATION]


def test_every_orientation_tag_is_reset_and_the_first_one_applied(tmp_path):
    """Two Orientation entries (6, then 3): the pixels were turned by the first and only it was set to
    1, so the output still told viewers to turn the upright picture by 180 degrees."""
    exif = _exif_with(
        [(TAG_ORIENTATION, 3, 1, struct.pack("<HH", 6, 0)), (TAG_ORIENTATION, 3, 1, struct.pack("<HH", 3, 0))]
    )
    stored = gray(6, 20, 30)
    Image.fromarray(stored).save(tmp_path / "twice.png", exif=exif)  # PNG: lossless pixels
    image = read_image(tmp_path / "twice.png")
    assert np.array_equal(image.pixels, np.rot90(stored, -1))
    assert _orientations(image.metadata.exif) == [1, 1]
    write_image(tmp_path / "out.jpg", image.rgb, metadata=image.metadata)
    assert _orientations(Image.open(tmp_path / "out.jpg").info["exif"]) == [1, 1]


# --------------------------------------------------------------------------- TIFFs Pillow has no mode for
def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_a_float_rgb_tiff_is_read_with_its_metadata_and_orientation(tmp_path):
    """Pillow refused 32-bit float RGB ("corrupt TIFF data (SyntaxError: unknown pixel mode)")."""
    rgb = synthetic_photo(7, 20, 30).astype(np.float32) / 255
    tifffile.imwrite(
        tmp_path / "film.tif",
        rgb,
        photometric="rgb",
        iccprofile=_srgb_icc(),
        resolution=(300, 300),
        resolutionunit="INCH",
        extratags=[(TAG_ORIENTATION, 3, 1, 6, True), (315, 2, 0, "Grandma", True)],
    )
    image = read_image(tmp_path / "film.tif")
    expected = np.rot90(np.round(rgb * 65535).astype(np.uint16), -1)
    assert image.pixels.dtype == np.uint16 and np.abs(image.pixels.astype(int) - expected).max() <= 1
    assert image.is_color and image.alpha is None
    assert image.metadata.icc_profile == _srgb_icc() and image.metadata.dpi == pytest.approx((300, 300))
    assert b"Grandma" in image.metadata.exif


@pytest.mark.parametrize(
    "kind", ["float64", "float16", "gray16+alpha", "planar float rgb", "miniswhite float", "miniswhite 16"]
)
def test_tiff_samples_pillow_cannot_open_are_read(tmp_path, kind):
    g = gray(8, 20, 30)
    alpha = None
    if kind == "float64":
        tifffile.imwrite(tmp_path / "a.tif", g.astype(np.float64) / 255)
    elif kind == "float16":
        tifffile.imwrite(tmp_path / "a.tif", g.astype(np.float16) / 255)
    elif kind == "gray16+alpha":
        alpha = np.arange(600, dtype=np.uint16).reshape(20, 30) * 100
        tifffile.imwrite(
            tmp_path / "a.tif",
            np.dstack([g.astype(np.uint16) * 257, alpha]),
            photometric="minisblack",
            extrasamples=["unassalpha"],
        )
    elif kind == "planar float rgb":
        tifffile.imwrite(
            tmp_path / "a.tif", np.stack([g, g, g]).astype(np.float32) / 255, photometric="rgb", planarconfig="separate"
        )
    elif kind == "miniswhite float":  # 0 = white: decoded as stored, it came out as a negative
        tifffile.imwrite(tmp_path / "a.tif", 1 - g.astype(np.float32) / 255, photometric="miniswhite")
    else:
        tifffile.imwrite(tmp_path / "a.tif", 65535 - g.astype(np.uint16) * 257, photometric="miniswhite")
    image = read_image(tmp_path / "a.tif")
    assert image.pixels.dtype == np.uint16 and not image.is_color
    assert np.abs(image.rgb[..., 0].astype(int) - g.astype(int) * 257).max() <= 40  # float16: 11-bit mantissa
    assert (image.alpha is None) == (alpha is None)
    if alpha is not None:
        assert np.array_equal(image.alpha, alpha)


def test_a_truncated_float_tiff_is_an_error_and_an_unsupported_one_says_why(tmp_path):
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, synthetic_photo(9, 20, 30).astype(np.float32), photometric="rgb")
    (tmp_path / "cut.tif").write_bytes(buffer.getvalue()[:-500])
    with pytest.raises(ImageReadError, match="cut.tif"):
        read_image(tmp_path / "cut.tif")
    tifffile.imwrite(tmp_path / "lab.tif", np.zeros((4, 4, 3), np.float32), photometric="cielab")
    with pytest.raises(ImageReadError, match="unsupported"):
        read_image(tmp_path / "lab.tif")


# --------------------------------------------------------------------------- the real CLI
def test_the_cli_colorizes_odd_archive_photos_and_fails_only_what_it_cannot_write(model, tmp_path):
    import subprocess

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.fromarray(gray(10, 40, 60)).save(src / "good.jpg", quality=92)
    tifffile.imwrite(src / "film.tif", synthetic_photo(11, 40, 60).astype(np.float32) / 255, photometric="rgb")
    tifffile.imwrite(
        src / "scan la16.tif",
        np.dstack([gray(12, 40, 60).astype(np.uint16) * 257, np.full((40, 60), 65535, np.uint16)]),
        photometric="minisblack",
        extrasamples=["unassalpha"],
    )
    Image.fromarray(np.full((1, 65535), 120, np.uint8)).save(src / "strip.png")
    lying_exif = b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHII", 0x010F, 2, 500, 4000) + b"\x00" * 4
    Image.fromarray(gray(13, 40, 60)).save(src / "lying exif.jpg", exif=b"Exif\x00\x00" + lying_exif)
    before = digests(src)
    done = subprocess.run(
        [*CLI, str(src), "-o", str(out), "--model", str(model), "-q", "--format", "jpeg"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    report = check_outputs(out, out / "colorize-report.json")
    status = {entry["input"].rsplit("/", 1)[-1]: entry for entry in report["files"]}
    assert {name: entry["status"] for name, entry in status.items()} == {
        "good.jpg": "done",
        "film.tif": "done",
        "scan la16.tif": "done",
        "strip.png": "failed",
        "lying exif.jpg": "done",
    }
    reason = status["strip.png"]["reason"]
    assert "cannot write image" in reason and "strip.jpg" in reason and "at most 65500" in reason
    assert "Traceback" not in done.stderr and digests(src) == before
    assert "Warning" not in done.stderr, done.stderr  # Pillow's notices on a damaged EXIF name no file
    assert not (out / "strip.jpg").exists()
    assert read_report(out / "colorize-report.json")["summary"]["failed"] == 1


def test_several_pictures_in_one_file_are_refused_not_cut_to_the_first(tmp_path):
    """A multi-page TIFF or an animated PNG would lose every picture after the first: a clear error
    instead. A TIFF's thumbnail page (reduced resolution) is not a page of its own."""
    from PIL import Image

    from colorizer.desktop.media.errors import ImageReadError
    from colorizer.desktop.media.image_read import read_image

    page = np.random.default_rng(0).integers(0, 255, (24, 32), np.uint8)
    tifffile.imwrite(tmp_path / "pages.tif", np.stack([page, page[::-1]]), photometric="minisblack")
    with pytest.raises(ImageReadError, match=r"multi-page TIFF \(2 pages\)"):
        read_image(tmp_path / "pages.tif")

    with tifffile.TiffWriter(tmp_path / "thumb.tif") as tif:
        tif.write(page, photometric="minisblack")
        tif.write(page[::4, ::4], photometric="minisblack", subfiletype=1)  # a reduced-resolution copy
    decoded = read_image(tmp_path / "thumb.tif")
    assert np.array_equal(np.squeeze(decoded.pixels), page)

    frames = [Image.fromarray(page), Image.fromarray(page[::-1])]
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageReadError, match=r"animated PNG \(2 frames\)"):
        read_image(tmp_path / "anim.png")

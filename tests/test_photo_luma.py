"""Gray photos written as JPEG keep their luma: Y' is the scan's gray levels, only Cb/Cr are new
(stages.prepare_photo; media.yuv; media.image_write.JpegPlanes)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image
from synthetic import synthetic_photo
from synthetic_media import FakeBackend
from tiny_model import tiny_generator_file

from colorizer.desktop.backends import open_backend
from colorizer.desktop.media.image_read import read_image
from colorizer.desktop.media.image_write import JpegPlanes, write_image
from colorizer.desktop.pipeline import stages
from colorizer.desktop.pipeline.batch import BatchRunner
from colorizer.desktop.pipeline.settings import ImageSettings
from colorizer.desktop.pipeline.tasks import plan


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    from colorizer.exporter.export import export_model

    tmp = tmp_path_factory.mktemp("model")
    return open_backend(export_model(tiny_generator_file(tmp / "g.safetensors"), tmp, name="tiny", fp16=False).onnx,
                        "cpu")


def gray(seed: int, h: int, w: int) -> np.ndarray:
    return cv2.cvtColor(synthetic_photo(seed, h, w), cv2.COLOR_RGB2GRAY)


def route(image, backend, settings: ImageSettings):
    """The photo's output as the writer gets it: JpegPlanes (luma route) or 8-bit RGB (Lab route)."""
    prepared, luma = stages.prepare_photo(image, settings, 64, backend.contract.size_multiple)
    ab = backend.predict(prepared.model_input[None])[0]
    return stages.merge_photo_color(prepared, ab, luma, replace(settings, saturation=1.5), 8)


SAMPLES = Path(__file__).resolve().parent.parent / "assets" / "samples"


@pytest.mark.parametrize("source", [(50, 70), (41, 57), "astronaut.jpg", "rocket.jpg"])
def test_the_luma_is_the_scans_and_the_chroma_that_of_the_lab_route(tmp_path, source):
    """On synthetic photos (one of odd size) and on the gray samples."""
    backend = FakeBackend()  # strong, smooth color
    if isinstance(source, tuple):
        path = tmp_path / "scan.jpg"
        Image.fromarray(gray(3, *source)).save(path, quality=95)
    else:
        path = SAMPLES / source
    image = read_image(path)
    shape = image.pixels.shape
    assert image.pixels.ndim == 2
    planes = route(image, backend, ImageSettings())
    assert isinstance(planes, JpegPlanes)
    np.testing.assert_array_equal(planes.y, image.pixels)  # bit for bit
    rgb = route(image, backend, ImageSettings(luma_passthrough=False))
    assert isinstance(rgb, np.ndarray) and rgb.shape == (*shape, 3)
    # the Lab route's color, as JFIF Cb/Cr averaged over each chroma sample's pixels
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    padded = cv2.copyMakeBorder(ycrcb, 0, shape[0] % 2, 0, shape[1] % 2, cv2.BORDER_REPLICATE)
    chroma = cv2.resize(padded, (planes.cb.shape[1], planes.cb.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(chroma[..., 2] - planes.cb).mean() < 1.5 and np.abs(chroma[..., 1] - planes.cr).mean() < 1.5
    assert max(np.ptp(planes.cb), np.ptp(planes.cr)) > 20  # there is color to compare


def test_a_planes_jpeg_decodes_to_its_planes_and_keeps_the_metadata(tmp_path):
    import piexif

    from colorizer.desktop.media.image_metadata import ImageMetadata

    y = gray(5, 47, 63)
    yy, xx = np.mgrid[0:24, 0:32]
    cb, cr = (np.clip(128 + 40 * np.sin(xx / 5 + k) * np.cos(yy / 7), 0, 255).astype(np.uint8) for k in (0, 1))
    exif = piexif.dump({"0th": {piexif.ImageIFD.ImageDescription: b"Grandma, 1931"}})
    out = write_image(tmp_path / "o.jpg", JpegPlanes(y, cb, cr), quality=95,
                      metadata=ImageMetadata(exif=exif, dpi=(600.0, 600.0)))
    with Image.open(out) as im:
        assert im.size == (63, 47) and im.mode == "RGB"
        assert piexif.load(im.info["exif"])["0th"][piexif.ImageIFD.ImageDescription] == b"Grandma, 1931"
        assert tuple(round(v) for v in im.info["dpi"]) == (600, 600)
        im.draft("YCbCr", im.size)
        decoded = np.asarray(im)
    assert np.abs(decoded[..., 0].astype(int) - y).mean() < 1.0
    cb_full = cv2.resize(cb, (63, 47), interpolation=cv2.INTER_LINEAR).astype(int)
    assert np.abs(decoded[..., 1].astype(int) - cb_full).mean() < 2.0


def test_only_8_bit_gray_photos_written_as_jpeg_take_the_luma_route(backend, tmp_path):
    Image.fromarray(gray(1, 40, 60)).save(tmp_path / "gray.jpg")
    Image.fromarray(np.repeat(gray(2, 40, 60)[..., None], 3, 2)).save(tmp_path / "gray_rgb.png")
    Image.fromarray(synthetic_photo(3, 40, 60)).save(tmp_path / "color.jpg", quality=95)
    tifffile.imwrite(tmp_path / "scan16.tif", gray(4, 40, 60).astype(np.uint16) * 257)

    def takes_luma(name: str, **settings) -> bool:
        image = read_image(tmp_path / name)
        return stages.prepare_photo(image, ImageSettings(**settings), 64, 32)[1] is not None

    assert takes_luma("gray.jpg")
    assert takes_luma("gray_rgb.png", output_format="jpeg")  # three equal channels are gray too
    assert not takes_luma("gray_rgb.png")  # a PNG keeps the Lab route (lossless RGB)
    assert not takes_luma("gray.jpg", output_format="png")
    assert not takes_luma("gray.jpg", luma_passthrough=False)
    assert not takes_luma("color.jpg")
    assert not takes_luma("scan16.tif", output_format="jpeg")  # 16-bit levels are not 8-bit luma


def test_odd_sized_gray_jpegs_are_colorized_through_the_batch(backend, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i, shape in enumerate([(41, 57), (1, 33), (64, 1)]):
        ramp = np.linspace(0, 255, shape[0] * shape[1]).reshape(shape).astype(np.uint8)
        Image.fromarray(ramp).save(src / f"p{i}.jpg", quality=95)
    tasks, _ = plan([src], tmp_path / "out")
    results = BatchRunner(backend, ImageSettings(render_size=64)).run(tasks)
    assert [r.status for r in results] == ["done"] * 3
    for task in tasks:
        with Image.open(task.output) as out, Image.open(task.source) as source:
            assert out.size == source.size and out.mode == "RGB"


def test_planes_are_checked_and_written_as_jpeg_only(tmp_path):
    y = np.zeros((5, 7), np.uint8)
    with pytest.raises(ValueError, match="4:2:0"):
        JpegPlanes(y, np.zeros((2, 3), np.uint8), np.zeros((3, 4), np.uint8))
    planes = JpegPlanes(y, np.zeros((3, 4), np.uint8), np.zeros((3, 4), np.uint8))
    with pytest.raises(ValueError, match="JPEG only"):
        write_image(tmp_path / "o.png", planes)
    assert not list(tmp_path.iterdir())

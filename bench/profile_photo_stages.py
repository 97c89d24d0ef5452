"""Where the time of one photo goes: each stage of the pipeline and of the I/O bound, on one thread.

For each kind of photo (the synthetic gray photos of ``bench_photos.py``), the median time of each
stage over ``--repeat`` runs, on one thread (OpenCV and ONNX Runtime too), in this process:

* pipeline: decode (``read_image``), prepare (``stages.prepare_photo``: the luma route for a gray
  JPEG, the Lab route otherwise), inference (the shipped model, ONNX Runtime CPU, one photo),
  finish (``stages.merge_photo_color``: chroma planes or full-resolution RGB), encode (``write_image``,
  atomic and fsynced);
* I/O bound (``bench_photos.py``'s): decode, Lab round trip + quantization, encode.

The bound encodes a gray round trip (three equal channels); the pipeline encodes a colorized
photo. For lossless formats that content costs more to compress, which the last line shows: the
bound's encoder on the pipeline's colorized output.

    python bench/profile_photo_stages.py --sets jpeg:2 tiff16:2 jpeg:12
    python bench/profile_photo_stages.py --sets tiff16:2 --photos ../shared/data/bsds500/val
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_photos import SIZES, machine, photo_like  # noqa: E402

from colorizer.allocator import keep_freed_memory  # noqa: E402
from colorizer.desktop.backends import default_model_path, open_backend  # noqa: E402
from colorizer.desktop.media.image_read import read_image  # noqa: E402
from colorizer.desktop.media.image_write import write_image  # noqa: E402
from colorizer.desktop.pipeline import stages  # noqa: E402
from colorizer.desktop.pipeline.settings import ImageSettings  # noqa: E402


def timed(fn, repeat: int):
    result = fn()  # warm-up, and the value the next stage needs
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, result


def lab_round_trip(pixels: np.ndarray) -> np.ndarray:
    rgb = pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=2)
    scale, out_type, full = (1 / 65535, cv2.CV_16U, 65535.0) if rgb.dtype == np.uint16 else (1 / 255, cv2.CV_8U, 255.0)
    back = cv2.cvtColor(cv2.cvtColor(np.multiply(rgb, np.float32(scale), dtype=np.float32), cv2.COLOR_RGB2Lab),
                        cv2.COLOR_Lab2RGB)
    return cv2.multiply(back.reshape(back.shape[0], -1), full, dtype=out_type).reshape(back.shape)


def profile(kind: str, megapixels: int, repeat: int, backend, tmp: Path, photos: list[Path] | None = None
            ) -> list[tuple[str, float]]:
    width, height = SIZES[megapixels]
    source = tmp / f"{kind}{megapixels}.{'jpg' if kind == 'jpeg' else 'tif'}"
    pixels = photo_like(1, width, height, kind == "tiff16", photos, grain=0.0 if photos else 3.0)
    cv2.imwrite(str(source), pixels, [cv2.IMWRITE_JPEG_QUALITY, 92] if kind == "jpeg" else [])
    settings = ImageSettings()
    render, multiple = backend.contract.render_size, backend.contract.size_multiple
    rows = []
    ms, image = timed(lambda: read_image(source), repeat)
    rows.append(("decode", ms))
    ms, (prepared, luma) = timed(lambda: stages.prepare_photo(image, settings, render, multiple), repeat)
    rows.append((f"prepare ({'luma' if luma is not None else 'Lab'} route)", ms))
    ms, ab = timed(lambda: backend.predict(prepared.model_input[None])[0], repeat)
    rows.append((f"inference {prepared.render_shape[1]}x{prepared.render_shape[0]}", ms))
    depth = stages.output_bit_depth(image.format, image.bit_depth)
    ms, out = timed(lambda: stages.merge_photo_color(prepared, ab, luma, settings, depth), repeat)
    rows.append(("finish", ms))
    ms, _ = timed(lambda: write_image(tmp / f"out_{source.name}", out, format=image.format, bit_depth=depth,
                                      quality=95, metadata=image.metadata, source=source), repeat)
    rows.append(("encode (colorized)", ms))
    rows.append(("= pipeline", sum(t for _, t in rows)))
    bound = [rows[0]]
    ms, back = timed(lambda: lab_round_trip(image.pixels), repeat)
    bound.append(("bound: Lab round trip", ms))
    ms, _ = timed(lambda: write_image(tmp / f"bound_{source.name}", back, format=image.format, bit_depth=depth,
                                      quality=95, metadata=image.metadata, source=source), repeat)
    bound.append(("bound: encode (gray round trip)", ms))
    rows.append(("= bound (decode + round trip + encode)", sum(t for _, t in bound)))
    rows += bound[1:]
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", default=["jpeg:2", "tiff16:2", "jpeg:12"], metavar="KIND:MP")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--photos", nargs="+", type=Path, metavar="DIR_OR_LIST",
                   help="profile a photo made from these (as bench_photos.py --photos) instead of a grainy sample")
    args = p.parse_args()
    photos = None
    if args.photos:
        from colorizer.trainer.data import list_images  # imports torch: only for this option

        photos = sorted(list_images(args.photos))
    keep_freed_memory()  # the allocator settings colorize-batch runs with, for every measurement here
    cv2.setNumThreads(1)
    with open_backend(default_model_path(), "cpu", threads=1) as backend:
        print(f"machine: {machine()}; one thread; model {backend.contract.model_name} {backend.contract.model_version} "
              f"({backend.name}); median of {args.repeat}")
        with tempfile.TemporaryDirectory(prefix="colorizer-stages-") as tmp:
            for spec in args.sets:
                kind, mp = spec.split(":")
                print(f"\n{kind} {mp} MP{'':<30}ms")
                for name, ms in profile(kind, int(mp), args.repeat, backend, Path(tmp), photos):
                    print(f"  {name:<40}{ms:8.1f}")


if __name__ == "__main__":
    main()

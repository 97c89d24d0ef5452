"""Benchmark: photos per second of colorize-batch on this machine, against two references measured
in the same run.

* seeds' way: the PyTorch generator called image by image (decode, L at render size, one forward
  pass, ab upsampled bilinearly, encode), no overlap, no batching: how the first prototypes ran.
* pipeline: the BatchRunner with the ONNX Runtime backend (what colorize-batch does).
* I/O bound: the same BatchRunner with inference replaced by zeros: decode + resize + upsample +
  encode only; no backend can make the pipeline faster than this.

Data: photos upscaled from a folder of real photos to 1, 4 and 12 megapixels into a temporary
folder (deleted afterwards; nothing is written into the project).

    python bench/bench_photos.py --photos ../shared/data/bsds500/test --count 12
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from _common import NoInference, machine  # bench/ is on sys.path when run as a script

from colorizer.colorize import colorize
from colorizer.desktop.backends import default_model_path, open_backend
from colorizer.desktop.pipeline.batch import BatchRunner
from colorizer.desktop.pipeline.settings import ImageSettings
from colorizer.desktop.pipeline.tasks import plan

MEGAPIXELS = (1, 4, 12)


def make_photos(source: Path, dest: Path, count: int) -> list[tuple[Path, float]]:
    files = sorted(p for p in source.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:count]
    made = []
    for i, path in enumerate(files):
        mp = MEGAPIXELS[i % len(MEGAPIXELS)]
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        h, w = gray.shape
        scale = np.sqrt(mp * 1e6 / (h * w))
        big = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
        out = dest / f"{i:03d}_{mp}mp.jpg"
        cv2.imwrite(str(out), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
        made.append((out, big.shape[0] * big.shape[1] / 1e6))
    return made


def time_pipeline(backend, photos_dir: Path, out_dir: Path, settings: ImageSettings) -> float:
    tasks, _ = plan([photos_dir], out_dir, output_format="JPEG")
    t = time.perf_counter()
    results = BatchRunner(backend, settings).run(tasks)
    elapsed = time.perf_counter() - t
    assert all(r.status == "done" for r in results), [r.reason for r in results if r.status != "done"]
    return elapsed


def time_seed_way(checkpoint: Path, photos: list[Path], out_dir: Path, render_size: int) -> float:
    import torch

    from colorizer.exporter.onnx_export import load_eval_generator
    from colorizer.trainer.evaluate import torch_predictor

    loaded = load_eval_generator(checkpoint)
    predict = torch_predictor(loaded.net)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    with torch.inference_mode():
        for path in photos:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            rgb = colorize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), predict, render_size, loaded.config.size_multiple,
                           upsampling="bilinear")
            out = cv2.cvtColor((rgb * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)
            cv2.imwrite(str(out_dir / path.name), out, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", type=Path, required=True, help="folder of real photos to upscale")
    p.add_argument("--count", type=int, default=12)
    p.add_argument("--model", type=Path, default=None, help="ONNX model (default: shipped)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="generator .safetensors for the seeds' way (default: beside the shipped model)")
    p.add_argument("--json", type=Path, help="write the figures here too")
    args = p.parse_args()

    model = args.model or default_model_path()
    checkpoint = args.checkpoint or model.with_name("generator.safetensors")
    backend = open_backend(model, "cpu")
    settings = ImageSettings()
    render = backend.contract.render_size
    tmp = Path(tempfile.mkdtemp(prefix="colorizer-bench-"))
    try:
        (tmp / "in").mkdir()
        photos = make_photos(args.photos, tmp / "in", args.count)
        total_mp = sum(mp for _, mp in photos)
        rows = {}
        rows["seeds' way (torch, image by image)"] = time_seed_way(checkpoint, [p for p, _ in photos],
                                                                    tmp / "seed", render)
        rows[f"pipeline ({backend.name})"] = time_pipeline(backend, tmp / "in", tmp / "pipe", settings)
        rows["I/O bound (no inference)"] = time_pipeline(NoInference(backend.contract), tmp / "in", tmp / "io",
                                                         settings)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"machine: {machine()}")
    print(f"data: {len(photos)} JPEG photos ({', '.join(f'{m} MP' for m in MEGAPIXELS)} in turn, "
          f"{total_mp:.1f} MP in all) upscaled from {args.photos}; render size {render}; guided upsampling")
    print(f"{'method':<44}{'seconds':>9}{'photos/s':>10}{'MP/s':>8}")
    for name, sec in rows.items():
        print(f"{name:<44}{sec:>9.2f}{len(photos) / sec:>10.2f}{total_mp / sec:>8.2f}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "photos": len(photos), "megapixels": total_mp,
                                         "render_size": render, "seconds": rows}, indent=2))


if __name__ == "__main__":
    main()

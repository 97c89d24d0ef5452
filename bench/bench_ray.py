"""Benchmark: photos per second of the local BatchRunner against the Ray runner on this machine
(Ray's overhead on one machine), measured in the same run with the same model and settings.

    python bench/bench_ray.py --photos ../shared/data/bsds500/test --count 24
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import cv2
from _common import machine  # bench/ is on sys.path when run as a script

from colorizer.desktop.backends import default_model_path, open_backend
from colorizer.desktop.pipeline.batch import BatchRunner
from colorizer.desktop.pipeline.ray_runner import RayOptions, run_on_ray
from colorizer.desktop.pipeline.settings import ImageSettings
from colorizer.desktop.pipeline.tasks import plan


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", type=Path, required=True, help="folder of real photos (converted to gray)")
    p.add_argument("--count", type=int, default=24)
    p.add_argument("--model", type=Path, default=None)
    args = p.parse_args()
    model = args.model or default_model_path()
    tmp = Path(tempfile.mkdtemp(prefix="colorizer-bench-ray-"))
    try:
        (tmp / "in").mkdir()
        files = sorted(args.photos.rglob("*.jpg"))[: args.count]
        for i, path in enumerate(files):
            cv2.imwrite(str(tmp / "in" / f"{i:03d}.jpg"), cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
        settings = ImageSettings()
        rows = {}
        tasks, _ = plan([tmp / "in"], tmp / "local")
        with open_backend(model, "cpu") as backend:
            t = time.perf_counter()
            BatchRunner(backend, settings).run(tasks)
            rows[f"local BatchRunner ({backend.name})"] = time.perf_counter() - t
        tasks, _ = plan([tmp / "in"], tmp / "ray")
        t = time.perf_counter()
        results = run_on_ray(tasks, model, settings, RayOptions(backend="cpu"))
        rows["Ray Data, local instance, cold start included"] = time.perf_counter() - t
        assert all(r.status == "done" for r in results)
        same = all((tmp / "ray" / t.output.name).read_bytes() == t.output.read_bytes()
                   for t in plan([tmp / "in"], tmp / "local")[0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"machine: {machine()}")
    print(f"data: {len(files)} grayscale JPEGs from {args.photos}; outputs identical: {same}")
    for name, sec in rows.items():
        print(f"{name:<50}{sec:>8.2f} s{len(files) / sec:>8.2f} photos/s")


if __name__ == "__main__":
    main()

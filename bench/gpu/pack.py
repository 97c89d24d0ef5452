"""Pack what a GPU training run needs into runs/gpu/ (ignored by git), to travel with the code.

The GPU machine has python3 with torch + CUDA and OpenCV but nothing else of ours, no network, and
takes at most 64 MiB of carried files. This writes:

* ``runs/gpu/data/``: the training photos (imagenette-224/train, bsds500/train, the UTKFace
  training split of bench/make_splits.py) resized to SIZE px on the short side as JPEG — about
  40 MB at the defaults; never committed (the photos' terms keep them out of the repository);
* ``runs/gpu/wheels/``: the pure-Python / abi3 wheels the trainer needs beyond torch and OpenCV
  (safetensors, tqdm).

Then, where a GPU machine is lent (see bench/gpu/train.sh):

    python bench/make_splits.py && python bench/gpu/pack.py
    run: bash bench/gpu/train.sh      (carry: runs/gpu)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import cv2

from colorizer.trainer.data import list_images, read_rgb

REPO = Path(__file__).resolve().parents[2]
WHEELS = ("safetensors", "tqdm")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = REPO.parent / "shared" / "data"
    ap.add_argument("--sources", nargs="+", type=Path, default=[
        data / "imagenette-224" / "train", data / "bsds500" / "train", REPO / "runs" / "splits" / "utkface_train.txt"])
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "gpu")
    ap.add_argument("--size", type=int, default=144, help="short side of the packed photos")
    ap.add_argument("--quality", type=int, default=85)
    ap.add_argument("--budget-mb", type=float, default=48, help="stop adding photos past this size")
    args = ap.parse_args()
    out = args.out / "data"
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    files = list_images(args.sources)
    for i, path in enumerate(files):
        rgb = read_rgb(path)
        if rgb is None:
            continue
        h, w = rgb.shape[:2]
        scale = args.size / min(h, w)
        if scale < 1:
            rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, args.quality])
        if not ok:
            continue
        (out / f"{i:05d}.jpg").write_bytes(buf.tobytes())
        total += buf.size
        if total > args.budget_mb * 1e6:
            print(f"budget reached after {i + 1} of {len(files)} photos")
            break
    wheels = args.out / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--platform", "manylinux2014_x86_64", "-d", str(wheels), *WHEELS], check=True)
    print(f"{out}: {total / 1e6:.1f} MB of photos; wheels: {', '.join(p.name for p in wheels.glob('*.whl'))}")


if __name__ == "__main__":
    main()

"""Write the v2 model's data splits as file lists (never copies of the photos) under runs/splits/.

UTKFace has no official split: its faces are assigned by a hash of the file name, the same on every
machine — 200 held out for the final evaluation (``utkface_test``), 100 for choosing the model
(``utkface_val``), the rest for training. Training and choosing never see ``*_test`` or
``bsds500/test`` or ``imagenette-224/val``.

``imagenette_seen_val`` lists 500 photos of ``imagenette-224/train`` (by the same hash): object
photos for choosing the default colorfulness, which the other validation photos (scenes, faces)
lack. The models were trained on them, so they serve for colorfulness only, never for ΔE: on
BSDS500, v2 gives seen (train) and unseen (val) photos the same colorfulness, 0.70 and 0.72.

    python bench/make_splits.py [--data ../shared/data] [--out runs/splits]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path


def bucket(name: str) -> int:
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path("runs/splits"))
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--val", type=int, default=100)
    ap.add_argument("--seen-val", type=int, default=500)
    args = ap.parse_args()
    faces = sorted((args.data / "utkface-200").glob("*.jpg"), key=lambda p: bucket(p.name))
    splits = {"utkface_test": faces[: args.test], "utkface_val": faces[args.test : args.test + args.val],
              "utkface_train": faces[args.test + args.val :]}
    objects = sorted((args.data / "imagenette-224" / "train").rglob("*.JPEG"), key=lambda p: bucket(p.name))
    splits["imagenette_seen_val"] = objects[: args.seen_val]
    args.out.mkdir(parents=True, exist_ok=True)
    for name, files in splits.items():
        (args.out / f"{name}.txt").write_text("".join(f"{p.resolve()}\n" for p in sorted(files)))
        print(f"{name}: {len(files)} files -> {args.out / name}.txt")


if __name__ == "__main__":
    main()

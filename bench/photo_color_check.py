"""How close colorized photos come to the true colors: the JPEG luma route against the Lab route.

Color photos (e.g. a validation folder) are made black-and-white and saved as gray JPEGs (quality
95), the way a scan of a black-and-white print is: from their luma (Y' = BT.601 of R'G'B', what
JPEG stores) or, with ``--gray lab``, from their Lab L (what the photo evaluation uses). The folder
is colorized twice by the batch runner, writing JPEGs at quality 95: with the luma route (the
default for gray JPEGs: the gray levels are the output's Y', the color goes into Cb/Cr at their
4:2:0 resolution) and with the Lab route (L kept, the color merged and converted to RGB at full
resolution, then encoded). Each output is compared with its color photo: ΔE2000 (lower is better)
and colorfulness relative to the photo's; the gray JPEGs themselves too. Nothing is written into
the project.

    python bench/photo_color_check.py ../shared/data/bsds500/val --limit 100
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from video_color_check import color_photos, lab_gray, print_scores, scores  # noqa: E402

from colorizer.desktop.backends import default_model_path, open_backend  # noqa: E402
from colorizer.desktop.core import TaskKind  # noqa: E402
from colorizer.desktop.pipeline.batch import BatchRunner  # noqa: E402
from colorizer.desktop.pipeline.settings import ImageSettings  # noqa: E402
from colorizer.desktop.pipeline.tasks import Task  # noqa: E402

QUALITY = 95


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photos", type=Path, help="folder of color photos")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--gray", choices=("luma", "lab"), default="luma", help="how the gray photos are made")
    p.add_argument("--model", type=Path, default=None)
    args = p.parse_args()
    with open_backend(args.model or default_model_path(), "cpu") as backend:
        tmp = Path(tempfile.mkdtemp(prefix="colorizer-photo-check-"))
        try:
            photos, tasks = [], {"luma route": [], "Lab route": []}
            (tmp / "gray").mkdir()
            for rgb in color_photos(args.photos):
                if len(photos) >= args.limit:
                    break
                gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if args.gray == "luma" else lab_gray(rgb)
                source = tmp / "gray" / f"{len(photos):04d}.jpg"
                cv2.imwrite(str(source), gray, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
                photos.append(rgb)
                for name, outputs in tasks.items():
                    outputs.append(Task(source, tmp / name.split()[0] / source.name, TaskKind.IMAGE))
            rows = {"gray JPEG": scores(photos, [cv2.cvtColor(cv2.imread(str(t.source)), cv2.COLOR_BGR2RGB)
                                                 for t in tasks["luma route"]])}
            for name, luma in (("luma route", True), ("Lab route", False)):
                settings = ImageSettings(quality=QUALITY, luma_passthrough=luma)
                failed = [r for r in BatchRunner(backend, settings).run(tasks[name]) if r.status != "done"]
                if failed:
                    raise SystemExit(f"{name}: {failed[0].reason}")
                rows[name] = scores(photos, [cv2.cvtColor(cv2.imread(str(t.output)), cv2.COLOR_BGR2RGB)
                                             for t in tasks[name]])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print_scores(f"{len(photos)} photos from {args.photos}, gray made from {args.gray}, model "
                 f"{backend.contract.model_name} {backend.contract.model_version}, JPEG quality {QUALITY} in and out",
                 rows)


if __name__ == "__main__":
    main()

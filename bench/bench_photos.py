"""Benchmark: is `colorize-batch` as fast as reading and writing the photos? (issue 13)

For each data set, on the same files and in one run, it prints:

* pipeline: `colorize-batch IN -o OUT -q` run as a subprocess (the shipped model unless --model,
  backend ``auto`` unless --backend): photos/s once running (all photos over the time from the
  first decode to the last output, from the report's per-photo seconds and the outputs'
  modification times: start-up excluded, the pipeline's filling and draining included; a rate
  taken between later outputs would flatter it, as the readers run ahead within the in-flight
  budget) and including start-up (all photos over the wall time of the process), time from the
  start of the
  process to its first output, and the peak resident memory of the process (``ru_maxrss`` of a
  wrapper's only child), and its CPU time per photo (start-up included: robust to other load);
* I/O bound: the same files decoded with the project's decoder (``read_image``), converted to
  float32 Lab and back (OpenCV), quantized to the output's bit depth and encoded with the
  project's encoder (``write_image``: same format, quality and metadata, atomic and fsynced), on
  as many threads as the machine has usable cores (what colorize-batch uses), with the allocator
  settings colorize-batch uses (``colorizer.allocator``: freed memory kept for the next photo, which
  spares the bound's own arrays their page faults too). No pipeline of
  this project can be faster than decoding and encoding; the Lab round trip is the least color
  work a colorizer does at full resolution;
* the ratios pipeline / bound (running and with start-up), in each of ``--rounds`` rounds (default
  3: the bound and then the pipeline once per round, so that the drifting speed of a shared machine
  moves both sides of a ratio), and their medians over the rounds;
* with ``--baseline REF``: the same pipeline figures for the code of git revision REF (e.g. the
  commit before an optimization), run on the same files in the same run (its package folders are
  exported with ``git archive`` into the temporary folder and put first on ``PYTHONPATH``).

Data: gray photo-like images synthesized from ``assets/samples`` (cropped, grayed, resized with
a fine grain added), or with ``--photos`` from those photos (cropped, grayed, resized, no grain),
into a temporary folder that is deleted afterwards; nothing is written into the project.
Default sets: 24 JPEGs of 2 MP, 8 JPEGs of 12 MP, 8 gray 16-bit TIFFs of 2 MP.

    python bench/bench_photos.py
    python bench/bench_photos.py --sets jpeg:2:24 tiff16:12:4 --model my.onnx --json out.json
    python bench/bench_photos.py --baseline HEAD~3
    python bench/bench_photos.py --sets tiff16:2:32 --photos ../shared/data/bsds500/val   # real photos
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from _common import machine  # bench/ is on sys.path when run as a script

from colorizer.allocator import keep_freed_memory
from colorizer.desktop.media.image_read import read_image
from colorizer.desktop.media.image_write import write_image

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "assets" / "samples"
PACKAGE_FOLDERS = {"colorizer": "", "desktop": "desktop", "exporter": "exporter", "trainer": "trainer"}
DEFAULT_SETS = ("jpeg:2:24", "jpeg:12:8", "tiff16:2:8")
SIZES = {2: (1632, 1224), 12: (4000, 3000)}  # megapixels -> (width, height), 4:3
JPEG_QUALITY = 92  # of the inputs; outputs use colorize-batch's default (95)

# Runs one command as its only child; prints when it started and the child's peak RSS (kB).
_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.time()
rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
end = time.time()
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc, "start": start, "end": end, "maxrss_kb": usage.ru_maxrss,
                  "cpu_s": usage.ru_utime + usage.ru_stime}))
"""


@dataclass(frozen=True)
class DataSet:
    kind: str  # jpeg | tiff16
    megapixels: int
    count: int

    @classmethod
    def parse(cls, text: str) -> DataSet:
        kind, mp, count = text.split(":")
        if kind not in ("jpeg", "tiff16") or int(mp) not in SIZES:
            raise argparse.ArgumentTypeError(f"{text!r}: use KIND:MP:COUNT, KIND jpeg|tiff16, MP one of {list(SIZES)}")
        return cls(kind, int(mp), int(count))

    @property
    def label(self) -> str:
        return f"{self.count} x {self.megapixels} MP {'JPEG' if self.kind == 'jpeg' else '16-bit TIFF'}"


def photo_like(index: int, width: int, height: int, sixteen_bit: bool, photos: list[Path] | None = None,
               grain: float = 3.0) -> np.ndarray:
    """A gray photo from a sample (or from ``photos``; a different crop and flip per index) with a
    fine film grain (``grain``: its standard deviation in 8-bit levels; 0: none)."""
    files = photos or sorted(SAMPLES.glob("*.jpg"))
    gray = cv2.imread(str(files[index % len(files)]), cv2.IMREAD_GRAYSCALE)
    h, w = gray.shape
    crop = gray[(index * 7) % (h // 8):, (index * 13) % (w // 8):]
    if index % 2:
        crop = crop[:, ::-1]
    big = cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    if grain:
        big += np.random.default_rng(index).normal(0.0, grain, big.shape).astype(np.float32)
    if sixteen_bit:
        return np.clip(big * 257.0, 0, 65535).astype(np.uint16)
    return np.clip(big, 0, 255).astype(np.uint8)


def make_set(data: DataSet, folder: Path, photos: list[Path] | None = None) -> list[Path]:
    """The set's gray photos in ``folder``: from the samples with grain, or from ``photos`` as they are."""
    folder.mkdir(parents=True)
    width, height = SIZES[data.megapixels]
    paths = []
    for i in range(data.count):
        pixels = photo_like(i, width, height, data.kind == "tiff16", photos, grain=0.0 if photos else 3.0)
        path = folder / (f"{i:03d}.jpg" if data.kind == "jpeg" else f"{i:03d}.tif")
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if data.kind == "jpeg" else []
        if not cv2.imwrite(str(path), pixels, params):
            raise RuntimeError(f"could not write {path}")
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- the I/O bound
def _round_trip(path: Path, out_dir: Path) -> None:
    image = read_image(path)
    scale = 1 / 65535 if image.rgb.dtype == np.uint16 else 1 / 255
    rgb = np.multiply(image.rgb, np.float32(scale), dtype=np.float32)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    back = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    out_type, full = (cv2.CV_16U, 65535.0) if image.bit_depth == 16 else (cv2.CV_8U, 255.0)
    quantized = cv2.multiply(back.reshape(back.shape[0], -1), full, dtype=out_type).reshape(back.shape)
    write_image(out_dir / path.name, quantized, format=image.format, bit_depth=image.bit_depth, quality=95,
                metadata=image.metadata, source=path)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def io_bound(paths: list[Path], out_dir: Path, threads: int) -> tuple[float, float]:
    """Seconds (wall, CPU) to decode, Lab round-trip and encode every photo on ``threads`` threads."""
    out_dir.mkdir(parents=True)
    _round_trip(paths[0], out_dir)  # warm up (imports, encoder set-up); not counted
    start, cpu = time.perf_counter(), _cpu_seconds()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda p: _round_trip(p, out_dir), paths))
    return time.perf_counter() - start, _cpu_seconds() - cpu


# --------------------------------------------------------------------------- the pipeline
@dataclass(frozen=True)
class PipelineRun:
    wall_s: float
    first_output_s: float
    running_photos_s: float  # from the first decode to the last output
    startup_photos_s: float
    peak_rss_mb: float
    cpu_ms_per_photo: float  # CPU time of the whole process (start-up included) per photo


def colorize_batch_command() -> list[str]:
    script = shutil.which("colorize-batch")
    return [script] if script else [sys.executable, "-P", "-m", "colorizer.desktop.cli"]


def run_pipeline(in_dir: Path, out_dir: Path, count: int, extra: list[str], python_path: Path | None = None
                 ) -> PipelineRun:
    """colorize-batch as a subprocess; output times from the outputs' modification times, decoding
    starts from the report.

    ``python_path``: a folder holding another version of the ``colorizer`` package (see
    :func:`export_revision`), run instead of the installed one."""
    env = dict(os.environ)
    if python_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(python_path), env.get("PYTHONPATH")]))
        cli = [sys.executable, "-P", "-m", "colorizer.desktop.cli"]  # -P: not the working folder's colorizer/
    else:
        cli = colorize_batch_command()
    command = [sys.executable, "-c", _WRAPPER, *cli, str(in_dir), "-o", str(out_dir), "-q", *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env, cwd=in_dir.parent)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"colorize-batch failed: {done.stderr[-2000:]}")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    if info["rc"] != 0:
        raise RuntimeError(f"colorize-batch exited with {info['rc']}: {done.stderr[-2000:]}")
    files = json.loads((out_dir / "colorize-report.json").read_text())["files"]
    if len(files) != count or any(f["status"] != "done" for f in files):
        raise RuntimeError(f"expected {count} photos done: {[(f['input'], f['status']) for f in files]}")
    ends = [Path(f["output"]).stat().st_mtime for f in files]  # written, then renamed
    first_decode = min(end - f["seconds"] for end, f in zip(ends, files, strict=True))  # its decoding began
    wall = info["end"] - info["start"]
    return PipelineRun(wall, min(ends) - info["start"], count / (max(ends) - first_decode), count / wall,
                       info["maxrss_kb"] / 1024, info["cpu_s"] * 1000 / count)


def export_revision(revision: str, dest: Path) -> Path:
    """The package at git ``revision`` as an importable ``dest/colorizer`` (the shipped model and
    samples are today's); returns ``dest``, for ``PYTHONPATH``."""
    tree = dest / "tree"
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, *PACKAGE_FOLDERS],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    package = dest / "colorizer"
    package.mkdir()
    for entry in (tree / "colorizer").iterdir():
        (package / entry.name).symlink_to(entry)
    for name, folder in PACKAGE_FOLDERS.items():
        if folder:
            (package / name).symlink_to(tree / folder)
    (package / "assets").symlink_to(REPO / "assets")
    return dest


# --------------------------------------------------------------------------- report
def measure(data: DataSet, tmp: Path, threads: int, extra: list[str], baseline: Path | None, rounds: int,
            photos: list[Path] | None = None) -> list[dict]:
    """One row per round: the bound, then the pipeline (and the baseline), on the same files."""
    paths = make_set(data, tmp / "in", photos)
    rows = []
    for number in range(rounds):
        bound_s, bound_cpu_s = io_bound(paths, tmp / f"bound{number}", threads)
        shutil.rmtree(tmp / f"bound{number}")
        bound = data.count / bound_s
        row = {"data": data.label, "bound_photos_s": bound,
               "bound_cpu_ms_per_photo": bound_cpu_s * 1000 / data.count}
        runs = {"": None} | ({"before_": baseline} if baseline is not None else {})
        for prefix, python_path in runs.items():
            out = tmp / f"out{prefix}{number}"
            run = run_pipeline(tmp / "in", out, data.count, extra, python_path)
            shutil.rmtree(out)
            row |= {prefix + k: v for k, v in asdict(run).items()}
            for rate in ("running", "startup"):
                row[f"{prefix}ratio_{rate}"] = row[f"{prefix}{rate}_photos_s"] / bound
        rows.append(row)
    return rows


def print_medians(per_set: list[list[dict]], prefix: str = "") -> None:
    """Per set: the median over the rounds of each ratio, and the ranges of the rest."""
    for rows in per_set:
        running = [r[f"{prefix}ratio_running"] for r in rows]
        startup = [r[f"{prefix}ratio_startup"] for r in rows]
        first = [r[f"{prefix}first_output_s"] for r in rows]
        rss = [r[f"{prefix}peak_rss_mb"] for r in rows]
        print(f"{rows[0]['data']:<24} ratio running {statistics.median(running):.2f} "
              f"({' '.join(f'{x:.2f}' for x in running)}), with start-up {statistics.median(startup):.2f} "
              f"({' '.join(f'{x:.2f}' for x in startup)}); first output {min(first):.2f}-{max(first):.2f} s; "
              f"peak RSS {min(rss):.0f}-{max(rss):.0f} MB")


def print_table(rows: list[dict], prefix: str = "") -> None:
    print(f"{'data':<24}{'bound/s':>9}{'running/s':>11}{'ratio':>7}{'w/start/s':>11}"
          f"{'ratio':>7}{'first out':>11}{'peak RSS':>10}{'wall':>8}{'CPU ms/photo':>14}")
    for r in rows:
        f = {k[len(prefix):]: v for k, v in r.items() if k.startswith(prefix)} | {"data": r["data"]}
        print(f"{f['data']:<24}{r['bound_photos_s']:>9.2f}{f['running_photos_s']:>11.2f}{f['ratio_running']:>7.2f}"
              f"{f['startup_photos_s']:>11.2f}{f['ratio_startup']:>7.2f}{f['first_output_s']:>10.2f}s"
              f"{f['peak_rss_mb']:>8.0f}MB{f['wall_s']:>7.1f}s{f['cpu_ms_per_photo']:>7.0f} (bound"
              f"{r['bound_cpu_ms_per_photo']:>4.0f})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", type=DataSet.parse, default=[DataSet.parse(s) for s in DEFAULT_SETS],
                   metavar="KIND:MP:COUNT", help=f"data sets (default: {' '.join(DEFAULT_SETS)})")
    p.add_argument("--model", type=Path, help="ONNX model (default: the shipped one)")
    p.add_argument("--backend", default=None, help="colorize-batch --backend (default: its own, auto)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                   help="threads of the I/O bound (default: usable cores)")
    p.add_argument("--baseline", metavar="REV", help="also run colorize-batch as it was at this git revision")
    p.add_argument("--photos", nargs="+", type=Path, metavar="DIR_OR_LIST",
                   help="make the sets from these photos (grayed, resized, no grain added) instead of the samples")
    p.add_argument("--rounds", type=int, default=3,
                   help="the bound and the pipeline once each per round, on the same files; medians reported")
    p.add_argument("--json", type=Path, help="write the figures here too")
    args = p.parse_args()
    keep_freed_memory()  # the allocator settings colorize-batch runs with, for every measurement here
    extra = (["--model", str(args.model)] if args.model else []) + (["--backend", args.backend] if args.backend else [])
    photos = None
    if args.photos:  # the trainer's file lists (it imports torch: only here, for this option)
        from colorizer.trainer.data import list_images, spread

        photos = spread(list_images(args.photos), 64)
    print(f"machine: {machine()}")
    print(f"photos: {len(photos)} from {', '.join(map(str, args.photos))}, no grain added" if photos
          else "photos: the samples, with film grain")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"model: {args.model or 'shipped'}; backend: {args.backend or 'auto'}; I/O bound on {args.threads} threads")
    per_set = []
    tmp = Path(tempfile.mkdtemp(prefix="colorizer-bench-"))
    try:
        baseline = export_revision(args.baseline, tmp / "baseline") if args.baseline else None
        for i, data in enumerate(args.sets):
            per_set.append(measure(data, tmp / f"set{i}", args.threads, extra, baseline, args.rounds, photos))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for number in range(args.rounds):
        print(f"\nround {number + 1}, colorize-batch (this tree):")
        print_table([rows[number] for rows in per_set])
        if args.baseline:
            print(f"round {number + 1}, colorize-batch at {args.baseline} (same files):")
            print_table([rows[number] for rows in per_set], "before_")
    print(f"\nmedians of {args.rounds} rounds (this tree):")
    print_medians(per_set)
    if args.baseline:
        print(f"medians of {args.rounds} rounds (at {args.baseline}):")
        print_medians(per_set, "before_")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "model": str(args.model or "shipped"),
                                         "baseline": args.baseline, "rounds": per_set},
                                        indent=2))


if __name__ == "__main__":
    main()

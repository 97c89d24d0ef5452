"""Check that two revisions of the code colorize byte for byte alike (a refactoring changes no output).

Makes small synthetic inputs in a temporary folder -- photos (an 8-bit gray JPEG, a color JPEG, an
RGB PNG, a gray PNG with alpha, 16-bit gray TIFF and RGB PNG, an EXIF-rotated JPEG, odd sizes, one
over a strip of the merge), a folder of numbered PNG frames, and films (H.264, which takes the luma
route, and lossless FFV1 written as FFV1) -- runs ``colorize-batch`` from each revision on them with
the same model (the working tree's shipped model unless ``--model``) on the CPU, and compares every
output: photos and frames by their bytes, films by their decoded frames (bytes of each plane, and
the timestamps), since a container may carry times. With ``--hints`` some inputs get sidecar hints
(a photo's points, a film's and the frame folder's key frames), so the hint path is compared too.

    python bench/byte_identical.py                      # 317aa10 against the working tree
    python bench/byte_identical.py --hints
    python bench/byte_identical.py --old HEAD~3 --new HEAD

A revision is a git commit (its code is read with ``git archive``, the checkout is not touched) or
``WORKTREE`` (the files as they are now). Prints one row per output and exits 1 on any difference
(2 when a run fails).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from _common import write_clip  # bench/ is on sys.path when run as a script
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
WORKTREE = "WORKTREE"
PARTS = {"colorizer": "colorizer", "desktop": "colorizer/desktop", "trainer": "colorizer/trainer",
         "exporter": "colorizer/exporter", "assets": "colorizer/assets"}
"""Source folder -> where it lives in the installed package (pyproject's package-dir)."""
FILM_SUFFIXES = (".mp4", ".mkv", ".mov")
RUN_FILES = ("colorize-report.json", ".colorize-journal.jsonl", ".colorize-run.lock")  # the run's, not outputs
RUNS = {  # name: (input folder, colorize-batch options)
    "photos": ("photos", []),
    "frames": ("frames/reel", ["--frames"]),
    "film": ("films/h264", []),
    "film-lossless": ("films/ffv1", ["--lossless"]),
}


# --------------------------------------------------------------------------- the code of a revision
def stage(revision: str, folder: Path) -> Path:
    """A folder to put on PYTHONPATH whose ``colorizer`` package is ``revision``'s code."""
    package = folder / "colorizer"
    if revision == WORKTREE:  # links to the files as they are
        package.mkdir(parents=True)
        for child in (REPO / "colorizer").iterdir():
            if child.name != "__pycache__":
                (package / child.name).symlink_to(child)
        for source, target in PARTS.items():
            if source != "colorizer":
                (folder / target).symlink_to(REPO / source)
        return folder
    data = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", revision, *PARTS,
                           ":(exclude)assets/models"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            top, _, rest = member.name.partition("/")
            member.name = f"{PARTS[top]}/{rest}" if rest else PARTS[top]
            tar.extract(member, folder, filter="data")
    return folder


def colorize(pythonpath: Path, inputs: Path, output: Path, options: list[str], model: Path,
             threads: int) -> subprocess.CompletedProcess:
    code = ("import sys, colorizer.desktop.cli as cli; "
            f"assert cli.__file__.startswith({str(pythonpath)!r}), cli.__file__; sys.exit(cli.main())")
    command = [sys.executable, "-c", code, str(inputs), "-o", str(output), "--model", str(model),
               "--backend", "cpu", "--threads", str(threads), "-q", *options]
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(command, cwd=pythonpath, env=env, capture_output=True, text=True)


# --------------------------------------------------------------------------- inputs
def scene(h: int, w: int, seed: int, channels: int = 1) -> np.ndarray:
    """A smooth picture with edges and grain, float in [0, 1], (h, w) or (h, w, channels)."""
    rng = np.random.default_rng(seed)
    planes = []
    for _ in range(channels):
        small = rng.random((max(2, h // 24), max(2, w // 24))).astype(np.float32)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        img[h // 3 : h // 2, w // 4 :] += 0.35
        planes.append(np.clip(img + rng.normal(0, 0.02, (h, w)).astype(np.float32), 0, 1))
    return planes[0] if channels == 1 else np.dstack(planes)


def to8(x: np.ndarray) -> np.ndarray:
    return (x * 255 + 0.5).astype(np.uint8)


def to16(x: np.ndarray) -> np.ndarray:
    return (x * 65535 + 0.5).astype(np.uint16)


def make_photos(folder: Path) -> None:
    folder.mkdir(parents=True)
    Image.fromarray(to8(scene(517, 333, 1))).save(folder / "gray8.jpg", quality=92)  # the luma route
    Image.fromarray(to8(scene(901, 1203, 2))).save(folder / "large-gray.jpg", quality=90)  # > one strip
    sepia = scene(300, 401, 3)[..., None] * np.array([1.0, 0.86, 0.68])
    Image.fromarray(to8(sepia)).save(folder / "sepia.jpg", quality=92)  # a color JPEG: the Lab route
    Image.fromarray(to8(scene(257, 129, 4, 3))).save(folder / "rgb.png")
    gray_alpha = np.dstack([to8(scene(99, 141, 5)), to8(scene(99, 141, 6))])
    Image.fromarray(gray_alpha, "LA").save(folder / "gray-alpha.png")
    Image.fromarray(to16(scene(203, 311, 7))).save(folder / "gray16.tif")
    cv2.imwrite(str(folder / "rgb16.png"), to16(scene(121, 97, 8, 3)))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to show upright
    Image.fromarray(to8(scene(180, 250, 9))).save(folder / "rotated.jpg", quality=92, exif=exif)


def make_frames(folder: Path) -> None:
    film = folder / "reel"
    film.mkdir(parents=True)
    for i in range(6):
        frame = scene(201, 267, 20)  # over the render size: the color is upsampled
        frame[10:40, 5 + 12 * i : 35 + 12 * i] = 0.1  # something moving
        Image.fromarray(np.repeat(to8(frame)[..., None], 3, axis=2)).save(film / f"frame_{i:04d}.png")


def film_frames(h: int, w: int, n: int, seed: int) -> list[np.ndarray]:
    frames = []
    for i in range(n):
        frame = scene(h, w, seed if i < n // 2 else seed + 1)  # a cut half way
        frame[8:24, 4 + 4 * i : 20 + 4 * i] = 0.15
        frames.append(to8(frame))
    return frames


def make_films(folder: Path) -> None:
    write_clip(folder / "h264" / "reel.mp4", film_frames(216, 288, 12, 30))
    write_clip(folder / "ffv1" / "reel.mkv", film_frames(201, 267, 10, 40), codec="ffv1", pix_fmt="gray")


def point(x: float, y: float, color: str, size: int | None = None) -> dict:
    return {"x": x, "y": y, "color": color} | ({"size": size} if size else {})


def write_sidecar(path: Path, data: dict) -> None:
    Path(f"{path}.hints.json").write_text(json.dumps({"format": "colorizer-hints", "version": 1, **data}))


def make_hints(inputs: Path) -> None:
    photos = inputs / "photos"
    write_sidecar(photos / "gray8.jpg", {"points": [point(60, 80, "#b03a2e"), point(250.5, 400, "#3a6ea5", 9)]})
    write_sidecar(photos / "large-gray.jpg", {"points": [point(900, 300, "#2e8b57", 15)]})
    write_sidecar(photos / "rgb.png", {"points": [point(20, 200, "#d4a017")]})
    write_sidecar(photos / "rotated.jpg", {"points": [point(150, 30, "#6b3fa0", 5)]})  # upright pixels
    key_frames = [{"frame": 1, "points": [point(50, 40, "#b03a2e", 5)]},
                  {"frame": 7, "points": [point(20, 60, "#3a6ea5")]}]
    write_sidecar(inputs / "films" / "h264" / "reel.mp4", {"frames": key_frames})
    write_sidecar(inputs / "films" / "ffv1" / "reel.mkv", {"frames": key_frames[:1]})
    write_sidecar(inputs / "frames" / "reel", {"frames": [{"frame": 2, "points": [point(170, 150, "#2e8b57", 7)]}]})


# --------------------------------------------------------------------------- comparing
def decoded(path: Path) -> tuple[list[tuple], bytes]:
    """A film's video frames as (stream, pts, time base, format, size) rows and their planes' bytes."""
    rows, data = [], io.BytesIO()
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            rows.append((frame.pts, Fraction(frame.time_base), frame.format.name, frame.width, frame.height))
            for plane in frame.planes:
                data.write(bytes(plane))
    return rows, data.getvalue()


def same_output(old: Path, new: Path) -> tuple[bool, str]:
    if old.suffix.lower() not in FILM_SUFFIXES:
        a, b = old.read_bytes(), new.read_bytes()
        return a == b, f"{len(a)} bytes" if a == b else f"{len(a)} vs {len(b)} bytes"
    (rows_a, data_a), (rows_b, data_b) = decoded(old), decoded(new)
    if rows_a != rows_b:
        return False, f"frames differ: {len(rows_a)} vs {len(rows_b)} frames, or their times/formats"
    return data_a == data_b, f"{len(rows_a)} frames decoded, {len(data_a)} bytes" + ("" if data_a == data_b else
                                                                                      " DIFFER")


def outputs(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*") if p.is_file() and p.name not in RUN_FILES}


def statuses(folder: Path) -> dict[str, tuple]:
    """Each input's status, output and hints digest in the run's report (times left out)."""
    report = json.loads((folder / "colorize-report.json").read_text())
    return {Path(f["input"]).name: (f["status"], Path(f["output"] or "").name, (f.get("hints") or {}).get("digest"))
            for f in report["files"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old", default="317aa10", help="git revision (default: 317aa10, before issue 24's refactors)")
    p.add_argument("--new", default=WORKTREE, help=f"git revision or {WORKTREE} (default: the working tree)")
    p.add_argument("--hints", action="store_true", help="give some photos, the films and the frame folder hints")
    p.add_argument("--model", type=Path, default=REPO / "assets" / "models" / "colorizer.onnx",
                   help="the model both revisions run (default: the working tree's shipped model)")
    p.add_argument("--threads", type=int, default=1, help="CPU inference threads of each run")
    p.add_argument("--keep", type=Path, help="make inputs and outputs in this folder and keep them")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="colorizer-byte-identical-") as tmp:
        work = args.keep or Path(tmp)
        inputs = work / "inputs"
        make_photos(inputs / "photos")
        make_frames(inputs / "frames")
        make_films(inputs / "films")
        if args.hints:
            make_hints(inputs)
        trees = {side: stage(rev, work / f"code-{side}") for side, rev in (("old", args.old), ("new", args.new))}
        rows, problems, hinted = [], 0, {}
        for name, (folder, options) in RUNS.items():
            results = {}
            for side, tree in trees.items():
                out = work / f"out-{side}" / name
                done = colorize(tree, inputs / folder, out, options, args.model.resolve(), args.threads)
                if done.returncode != 0:
                    print(f"{name}: colorize-batch of {getattr(args, side)} exited {done.returncode}\n{done.stderr}",
                          file=sys.stderr)
                    return 2
                results[side] = out
            old, new = results["old"], results["new"]
            hinted[name] = sum(digest is not None for _, _, digest in statuses(new).values())
            if statuses(old) != statuses(new):
                rows.append((name, "colorize-report.json", False, f"{statuses(old)} vs {statuses(new)}"))
            for rel in sorted(outputs(old) | outputs(new)):
                if not (old / rel).is_file() or not (new / rel).is_file():
                    rows.append((name, str(rel), False, "only in " + ("old" if (old / rel).is_file() else "new")))
                    continue
                rows.append((name, str(rel), *same_output(old / rel, new / rel)))
    width = max(len(f"{r[0]}/{r[1]}") for r in rows)
    print(f"{args.old} against {args.new}" + (", with hints" if args.hints else "") + f"; model {args.model}")
    for name, rel, same, detail in rows:
        problems += not same
        print(f"  {name + '/' + rel:<{width}}  {'identical' if same else 'DIFFERENT'}  {detail}")
    print(f"{len(rows) - problems} of {len(rows)} outputs identical" + (f", {problems} DIFFERENT" if problems else "")
          + "; inputs colorized with hints: " + ", ".join(f"{name} {n}" for name, n in hinted.items()))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""Helpers for the fault-injection tests: synthetic inputs, runs of colorize-batch in a subprocess,
and the checks every fault test makes (every output valid or absent, the report true, inputs unchanged)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from synthetic import synthetic_photo

from colorizer.desktop.media.image_read import read_image
from colorizer.fileio import is_partial_file

CLI = [sys.executable, "-m", "colorizer.desktop.cli"]


def make_photos(folder: Path, count: int, height: int = 240, width: int = 320, fmt: str = "jpg") -> list[Path]:
    """Gray photos with noise (so they do not compress to nothing)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        rgb = synthetic_photo(i, height, width)
        noise = np.random.default_rng(i).integers(0, 50, (height, width), dtype=np.uint8)
        gray = np.clip(rgb.mean(axis=2) + noise, 0, 255).astype(np.uint8)
        path = folder / f"p{i:02d}.{fmt}"
        Image.fromarray(gray).save(path, **({"quality": 92} if fmt == "jpg" else {}))
        paths.append(path)
    return paths


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def is_valid_image(path: Path) -> bool:
    try:
        read_image(path)
        return True
    except Exception:
        return False


def partial_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if is_partial_file(p)] if folder.exists() else []


def read_report(path: Path) -> dict:
    return json.loads(path.read_text())


def check_outputs(out: Path, report_path: Path | None = None, leftovers_allowed: bool = False) -> dict:
    """Every photo under ``out`` decodes completely, no temporary file is left (unless allowed), and
    the report (when given) matches the disk: done/skipped outputs exist and are valid, failed and
    cancelled ones are absent or valid. Returns the report."""
    photos = [p for p in out.rglob("*") if p.suffix in (".jpg", ".png") and not p.name.startswith(".")]
    broken = [p for p in photos if not is_valid_image(p)]
    assert not broken, f"damaged outputs under their final names: {broken}"
    if not leftovers_allowed:
        assert not partial_files(out), f"temporary files left behind: {partial_files(out)}"
    if report_path is None:
        return {}
    report = read_report(report_path)
    for entry in report["files"]:
        output = Path(entry["output"]) if entry["output"] else None
        if entry["status"] in ("done", "skipped"):
            assert output is not None and output.is_file() and is_valid_image(output), entry
        elif output is not None and output.exists():
            assert is_valid_image(output), entry
    assert report["summary"]["total"] == len(report["files"])
    return report


def start(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, **kwargs)


def wait_for_outputs(out: Path, count: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Wait until ``count`` outputs are in ``out`` (or the process ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and sum(1 for p in out.glob("p*.*") if not is_partial_file(p)) >= count:
            return
        time.sleep(0.02)

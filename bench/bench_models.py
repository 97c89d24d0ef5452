"""Two exported models on the same photos: what one costs against the other, without hints.

Made for v4 (v3 + hint inputs): without hints it computes v3's colors through a larger graph (the
guidance planes enter every decoder stage), and this measures what that costs. Each round runs
``colorize-batch`` (in this process, ``--no-hints``, ONNX Runtime on the CPU) over the same folder
of photos with each model in turn, into a fresh output folder; printed: seconds per round and
model, the median ratio of the rounds, and the model call alone (batches of 4 at the photos'
render size, zero guidance for a model with hint inputs). Nothing is written into the project.

    python bench/bench_models.py PHOTOS --models OLD.onnx NEW.onnx [--rounds 3]
    git show fa5f79b:assets/models/colorizer.onnx > /tmp/v3.onnx   # v3, the last L-only default
    python bench/bench_models.py gray_scans/ --models /tmp/v3.onnx assets/models/colorizer.onnx
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

from colorizer.desktop.cli import main as colorize_batch  # noqa: E402


def model_call_ms(model: Path, shape: tuple[int, int], repeat: int = 10) -> float:
    """Milliseconds per batch of 4 at ``shape`` (the model alone)."""
    from colorizer.desktop.backends import open_backend

    with open_backend(model, "cpu") as backend:
        x = np.random.default_rng(0).uniform(-1, 1, (4, 1, *shape)).astype(np.float32)
        extra = {"hints": np.zeros((4, 3, *shape), np.float32)} if backend.contract.takes_hints else {}
        backend.predict(x, **extra)
        started = time.perf_counter()
        for _ in range(repeat):
            backend.predict(x, **extra)
        return (time.perf_counter() - started) / repeat * 1000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photos", type=Path, help="a folder of photos (gray scans or color photos)")
    p.add_argument("--models", type=Path, nargs=2, required=True, metavar=("BASELINE", "MODEL"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--shape", type=int, nargs=2, default=(192, 288), metavar=("H", "W"),
                   help="render shape of the model-alone figure")
    args = p.parse_args()
    count = sum(1 for f in args.photos.iterdir() if f.is_file())
    print(f"machine: {machine()}\nphotos: {args.photos} ({count} files); models: "
          + ", ".join(str(m) for m in args.models))
    seconds: dict[Path, list[float]] = {m: [] for m in args.models}
    calls: dict[Path, list[float]] = {m: [] for m in args.models}
    with tempfile.TemporaryDirectory(prefix="colorizer-bench-models-") as tmp:
        for r in range(args.rounds):
            for model in args.models:
                out = Path(tmp) / "out"
                shutil.rmtree(out, ignore_errors=True)
                started = time.perf_counter()
                code = colorize_batch([str(args.photos), "-o", str(out), "--model", str(model), "--backend", "cpu",
                                       "--no-hints", "-q"])
                seconds[model].append(time.perf_counter() - started)
                if code != 0:
                    raise SystemExit(f"colorize-batch failed (exit {code}) with {model}")
                calls[model].append(model_call_ms(model, tuple(args.shape)))
            print(f"round {r + 1}: " + ", ".join(f"{m.name} {seconds[m][-1]:.2f} s (model alone {calls[m][-1]:.1f} ms)"
                                                 for m in args.models), flush=True)
    base, new = args.models
    ratios = [b / n for b, n in zip(seconds[base], seconds[new], strict=True)]
    call_ratios = [b / n for b, n in zip(calls[base], calls[new], strict=True)]
    print(f"{new.name} runs at {statistics.median(ratios):.2f}x the photos/s of {base.name} (rounds "
          f"{', '.join(f'{x:.2f}' for x in ratios)}); the model alone at {statistics.median(call_ratios):.2f}x "
          f"(batches of 4 at {args.shape[0]}x{args.shape[1]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The CPU path never imports torch (seconds and hundreds of MB at start-up), even where it is installed; a
quiet photo run imports neither PyAV nor tqdm, nor the TensorRT backend without an NVIDIA driver."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from faults import make_photos

from colorizer.gpu import nvidia_driver_present

# Runs colorize-batch in this process, then lists the heavy modules it imported.
PROBE = """
import json, sys
from colorizer.desktop.cli import main
rc = main(sys.argv[1:])
heavy = {"torch", "torchvision", "ray", "PySide6", "tensorrt", "tensorrt_rtx", "av", "tqdm"}
heavy = sorted({m.split(".")[0] for m in sys.modules} & heavy)
heavy += [m for m in ("colorizer.desktop.backends.tensorrt", "colorizer.desktop.backends.tensorrt_engine")
          if m in sys.modules]
print(json.dumps({"rc": rc, "heavy": heavy}))
"""


def run_probe(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_cpu_backend_imports_no_torch(tmp_path: Path) -> None:
    make_photos(tmp_path / "in", 2, 96, 128)
    result = run_probe([str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q", "--backend", "cpu"])
    assert result == {"rc": 0, "heavy": []}
    assert len(list((tmp_path / "out").glob("*.jpg"))) == 2


@pytest.mark.skipif(nvidia_driver_present(), reason="an NVIDIA driver is here: auto may look for a GPU with torch")
def test_auto_backend_without_a_gpu_imports_no_torch(tmp_path: Path) -> None:
    make_photos(tmp_path / "in", 1, 96, 128)
    result = run_probe([str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q"])
    assert result == {"rc": 0, "heavy": []}

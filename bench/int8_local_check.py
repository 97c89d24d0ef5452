"""Where the INT8 twin's colors leave the FP32 model's: local failures the averages hide.

Each photo (spread over the given folders or .txt lists) is prepared as the runtime prepares it
and run through the FP32 model and its INT8 twin (``NAME.int8.onnx`` beside it); per photo, the
share of its pixels (at render size) whose ab differ by more than ``--threshold`` Lab units. It
prints the mean distance, the mean share, how many photos pass 5 % and 20 %, and the worst
photos with their ΔE2000 to the truth under each model; ``--grid`` saves the worst as
truth | FP32 | INT8 rows.

    python bench/int8_local_check.py assets/models/colorizer.onnx ../shared/data/bsds500/val \\
        runs/splits/utkface_val.txt runs/splits/imagenette_seen_val.txt --count 300 --grid worst.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from colorizer.colorize import merge_color, prepare  # noqa: E402
from colorizer.contract import INPUT_NAME  # noqa: E402
from colorizer.desktop.backends import ModelFiles, read_contract  # noqa: E402
from colorizer.trainer.data import list_images, read_rgb, spread  # noqa: E402
from colorizer.trainer.metrics import delta_e2000  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="the FP32 ONNX (its INT8 twin beside it)")
    p.add_argument("photos", type=Path, nargs="+", help="folders or .txt lists of color photos")
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--threshold", type=float, default=10.0, help="Lab units of ab distance")
    p.add_argument("--worst", type=int, default=4)
    p.add_argument("--grid", type=Path, help="save the worst photos here (truth | FP32 | INT8)")
    args = p.parse_args()
    import onnxruntime as ort

    files = ModelFiles.from_path(args.model)
    if files.int8_onnx is None or not files.int8_onnx.is_file():
        raise SystemExit(f"{args.model}: no INT8 twin beside it (colorizer-export --int8-calibration)")
    contract = read_contract(files.onnx)
    sessions = [ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                for path in (files.onnx, files.int8_onnx)]
    rows = []
    for path in spread(list_images(args.photos), args.count):
        rgb = read_rgb(path)
        if rgb is None:
            continue
        prepared = prepare(rgb, contract.render_size, contract.size_multiple)
        fp32, int8 = (s.run(None, {INPUT_NAME: prepared.model_input[None]})[0][0] for s in sessions)
        distance = np.sqrt(((int8 - fp32) ** 2).sum(0)) * 110  # ab is normalized by 110
        rows.append((float((distance > args.threshold).mean()), float(distance.mean()), path, rgb, prepared,
                     fp32, int8))
    shares = np.array([r[0] for r in rows])
    print(f"{files.int8_onnx} against {files.onnx.name}, {len(rows)} photos, render size {contract.render_size}")
    print(f"mean ab distance {np.mean([r[1] for r in rows]):.2f} Lab units; pixels > {args.threshold:g}: "
          f"mean {shares.mean() * 100:.2f} %, photos over 5 %: {(shares > 0.05).sum()}, over 20 %: "
          f"{(shares > 0.2).sum()}")
    grid = []
    for share, _, path, rgb, prepared, fp32, int8 in sorted(rows, key=lambda r: -r[0])[: args.worst]:
        outs = [(merge_color(prepared, ab) * 255 + 0.5).astype(np.uint8) for ab in (fp32, int8)]
        print(f"  {share * 100:5.1f} %  {path}: ΔE2000 to the truth FP32 {delta_e2000(rgb, outs[0]):.2f}, "
              f"INT8 {delta_e2000(rgb, outs[1]):.2f}")
        height = 160
        grid.append(np.hstack([cv2.resize(x, (round(x.shape[1] * height / x.shape[0]), height)) for x in [rgb, *outs]]))
    if args.grid and grid:
        width = max(r.shape[1] for r in grid)
        image = np.vstack([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in grid])
        cv2.imwrite(str(args.grid), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()

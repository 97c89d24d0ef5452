"""ΔE2000–colorfulness frontier of one or more models: each photo is predicted once per render size
and scored at several saturations, through the runtime's full-resolution path (as colorizer-eval).

Choose a model's operating point (render size, default saturation) on a *validation* split with this,
then report the chosen point once on the test splits.

    python bench/frontier.py MODEL [MODEL ...] --photos DIR_OR_LIST [...] \
        --render-sizes 128 160 192 --saturations 1.0 1.2 1.4 [--limit 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm

from colorizer.colorize import merge_color, prepare
from colorizer.exporter.evaluate_cli import load_predictor
from colorizer.trainer.data import list_images, read_rgb, spread
from colorizer.trainer.evaluate import gray_baseline, to_uint8
from colorizer.trainer.metrics import mean_scores, score


def frontier(model: Path, files: list[Path], render_sizes: list[int], saturations: list[float],
             device: str = "cpu") -> list[dict]:
    predict, default_size, multiple, label = load_predictor(model, device)
    scores: dict[tuple[int, float], list] = {(r, s): [] for r in render_sizes or [default_size] for s in saturations}
    gray = []
    for path in tqdm(files, desc=model.name, unit="img", leave=False):
        rgb = read_rgb(path)
        if rgb is None:
            continue
        gray.append(score(rgb, gray_baseline(rgb)))
        for size in render_sizes or [default_size]:
            prepared = prepare(rgb, size, multiple)
            ab = predict(prepared.model_input[None])[0]
            for sat in saturations:
                scores[(size, sat)].append(score(rgb, to_uint8(merge_color(prepared, ab, sat))))
    gray_mean = mean_scores(gray)
    rows = []
    for (size, sat), values in scores.items():
        m = mean_scores(values)
        rows.append({"model": str(model), "backend": label, "render_size": size, "saturation": sat,
                     "images": len(values), "delta_e": m["delta_e"], "gray_delta_e": gray_mean["delta_e"],
                     "delta_e_vs_gray": m["delta_e"] / gray_mean["delta_e"], "psnr": m["psnr"],
                     "colorfulness_ratio": m["colorfulness_ratio"]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path, help="generator .safetensors / checkpoints or .onnx")
    ap.add_argument("--photos", nargs="+", type=Path, required=True, help="folders, files or .txt lists")
    ap.add_argument("--render-sizes", nargs="*", type=int, default=[], help="default: each model's own")
    ap.add_argument("--saturations", nargs="+", type=float, default=[1.0])
    ap.add_argument("--limit", type=int, default=0, help="at most N photos, evenly spread (0: all)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    files = list_images(args.photos)
    files = spread(files, args.limit) if args.limit else files
    print(f"{len(files)} photos from {', '.join(map(str, args.photos))}")
    print(f"{'model':<40}{'render':>7}{'sat':>6}{'dE':>8}{'gray dE':>9}{'dE/gray':>9}{'PSNR':>7}{'colorf.':>9}")
    rows = []
    for model in args.models:
        for r in frontier(model, files, args.render_sizes, args.saturations, args.device):
            rows.append(r)
            print(f"{model.name[-40:]:<40}{r['render_size']:>7}{r['saturation']:>6.2f}{r['delta_e']:>8.3f}"
                  f"{r['gray_delta_e']:>9.3f}{r['delta_e_vs_gray']:>9.3f}{r['psnr']:>7.2f}"
                  f"{r['colorfulness_ratio']:>9.3f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"photos": [str(p) for p in args.photos], "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()

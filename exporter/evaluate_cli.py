"""`colorizer-eval`: metrics of a model on a folder of color photos, next to the gray baseline."""

# Here, in the exporter, because it needs both sides: a checkpoint is loaded with the trainer's code, an exported
# model runs through the runtime's backends (colorizer.desktop), and only the exporter may import both
# (tests/test_layering.py).

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from colorizer.fileio import atomic_write
from colorizer.trainer.data import list_images, spread
from colorizer.trainer.metrics import METRIC_NAMES

EPILOG = """
The photos are reduced to their luminance and colorized the way colorize-batch does it (render
size, padding, ab upsampled to full resolution and merged with the original L). Every metric is
printed for the model and for the gray baseline (the same L with no color), so each figure can be
read: PSNR/SSIM (higher is better), CIEDE2000 dE (lower is better), colorfulness (Hasler-Susstrunk;
the ground truth's is shown too) and |d colorfulness| against the ground truth (lower is better).

With --hints N, each photo gets N simulated color hints (3x3 px ground-truth patches at random
positions seeded by --hints-seed, colored with the patch's mean), given to a hint model and spread
over the prediction exactly as colorize-batch does with a photo's hints sidecar; the same seed
gives the same points (and the first 3 of 10 are the 3 of --hints 3). The dE at the hint pixels is printed too.

examples:
  colorizer-eval runs/first/generator.safetensors ~/held_out_photos
  colorizer-eval assets/models/colorizer.onnx ~/held_out_photos --json eval.json --limit 200
  colorizer-eval assets/models/colorizer.onnx ~/held_out_photos --hints 3 --hints-seed 0
"""


GRAY_COLORFULNESS = 1.0
"""Hasler-Susstrunk colorfulness below which a ground-truth photo has no color to measure against
(a gray photo scores 0: R = G = B once decoded)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="colorizer-eval", description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="generator checkpoint (.safetensors) or exported model (.onnx)")
    p.add_argument("photos", nargs="+", type=Path, help="folders or files of color photos (ground truth)")
    p.add_argument("--render-size", type=int, default=None, help="long side the model runs at "
                   "(default: the render size recorded in the model)")
    p.add_argument("--upsampling", choices=("guided", "bilinear"), default="guided",
                   help="how predicted color is brought to full resolution")
    p.add_argument("--saturation", type=float, default=1.0, help="scale the predicted chroma, as colorize-batch does")
    p.add_argument("--limit", type=int, default=0, help="evaluate at most N photos, evenly spread (0: all)")
    p.add_argument("--json", type=Path, help="also write the figures (and per-image rows) to this file")
    p.add_argument("--device", default="cpu",
                   help="torch device for checkpoints (cpu, cuda); an .onnx model: cpu = the CPU backend, else auto")
    p.add_argument("--cpu-int8", action="store_true",
                   help="run an ONNX model's INT8 twin on the CPU where it has one (as colorize-batch --cpu-int8)")
    p.add_argument("--hints", type=int, default=0, metavar="N",
                   help="simulated ground-truth color hints per photo (0: none)")
    p.add_argument("--hints-seed", type=int, default=0, metavar="S", help="seed of the hints' positions")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def load_predictor(model: Path, device: str, cpu_int8: bool = False):
    """(predict, render_size, size_multiple, label) for a checkpoint or an ONNX model."""
    if model.suffix == ".onnx":
        from colorizer.desktop.backends import open_backend

        backend = open_backend(model, "cpu" if device == "cpu" else "auto", cpu_int8=cpu_int8)
        c = backend.contract
        # the backend itself: a model with hint inputs gets the hints (colorizer.colorize.predict_prepared)
        return backend, c.render_size, c.size_multiple, f"{model.name} on {backend.name}"
    import torch

    from colorizer.exporter.onnx_export import load_eval_generator

    loaded = load_eval_generator(model)
    from colorizer.trainer.evaluate import torch_predictor

    net = loaded.net.to(torch.device(device))
    return (torch_predictor(net, device), loaded.file.render_size, loaded.config.size_multiple,
            f"{model.name} (step {loaded.file.step}) on torch-{device}")


def format_table(result: dict) -> str:
    model, gray = result["model"], result["gray"]
    lines = [f"{'metric':<24}{'model':>12}{'gray':>12}"]
    for key in (*METRIC_NAMES, "colorfulness_ratio"):
        lines.append(f"{key:<24}{model[key]:>12.4f}{gray[key]:>12.4f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from colorizer.trainer.evaluate import evaluate_predictor

    try:
        if args.json is not None and args.json.is_dir():
            raise ValueError(f"--json {args.json} is a folder; give a file name")
        files = list_images(args.photos)
        if args.limit:
            files = spread(files, args.limit)
        if args.hints < 0:
            raise ValueError(f"--hints must be >= 0, got {args.hints}")
        predict, render_size, multiple, label = load_predictor(args.model, args.device, args.cpu_int8)
        render_size = args.render_size or render_size
        with predict if hasattr(predict, "__exit__") else contextlib.nullcontext():  # a backend closes at the end
            result = evaluate_predictor(predict, files, render_size, multiple, args.upsampling, not args.quiet,
                                        args.saturation, hints=args.hints, hints_seed=args.hints_seed)
        if all(row["colorfulness_gt"] < GRAY_COLORFULNESS for row in result["per_image"]):
            raise ValueError(f"none of the {len(result['per_image'])} photos in {', '.join(map(str, args.photos))} "
                             "has color: colorizer-eval measures a model against the colors of color photos")
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"colorizer-eval: error: {exc}", file=sys.stderr)
        return 2
    result["settings"] = {"model": str(args.model), "backend": label, "render_size": render_size,
                          "upsampling": args.upsampling, "saturation": args.saturation,
                          "hints": args.hints, "hints_seed": args.hints_seed,
                          "photos": [str(p) for p in args.photos]}
    print(f"{label}, render size {render_size}, {args.upsampling} upsampling, saturation {args.saturation}, "
          f"{result['model']['images']} photos from {', '.join(map(str, args.photos))}")
    print(format_table(result))
    if result["unreadable"]:
        count = len(result["unreadable"])
        print(f"colorizer-eval: {count} photo{'s' if count > 1 else ''} could not be read and "
              f"{'are' if count > 1 else 'is'} left out of the figures: {', '.join(result['unreadable'][:5])}"
              f"{' ...' if count > 5 else ''}" + (f" (all in --json {args.json})" if args.json and count > 5 else ""),
              file=sys.stderr)
    if args.hints:
        ratio = result["model"]["delta_e"] / result["gray"]["delta_e"] if result["gray"]["delta_e"] else float("nan")
        print(f"hints: {args.hints} per photo (seed {args.hints_seed}); dE {ratio:.3f}x gray; "
              f"dE at the hint pixels {result['hints']['hint_delta_e']:.2f}")
    if args.json:
        try:
            atomic_write(args.json, (json.dumps(result, indent=2) + "\n").encode())
        except OSError as exc:
            print(f"colorizer-eval: error: cannot write {args.json}: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Choose among hint-model checkpoints on validation photos (in process; not the shipped figures).

For each model (an exported .onnx, or a generator/checkpoint with --chroma-gain) and hint count,
colorizes color photos reduced to L with simulated 3x3 px ground-truth hints
(:func:`colorizer.trainer.evaluate.evaluate_predictor`, the runtime's colorize()), and prints ΔE2000
as a multiple of gray, colorfulness / truth and ΔE2000 at the hint pixels. ``--no-touch-up``: a model
with hint inputs without the spread after it (to measure what the touch-up adds).

    python bench/hint_model_val.py ../shared/data/bsds500/val --models assets/models/colorizer.onnx \
        runs/v4/checkpoints/step_0000600.safetensors --limit 50
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colorizer.trainer.data import list_images, spread  # noqa: E402
from colorizer.trainer.evaluate import evaluate_predictor  # noqa: E402


def predictor(model: Path, gain: float, render_size: int):
    if model.suffix == ".onnx":
        from colorizer.desktop.backends import open_backend

        backend = open_backend(model, "cpu")
        return backend, render_size or backend.contract.render_size, backend.contract.size_multiple
    import torch

    from colorizer.exporter.onnx_export import load_eval_generator
    from colorizer.trainer.evaluate import torch_predictor

    torch.set_num_threads(1)
    loaded = load_eval_generator(model, gain)
    return torch_predictor(loaded.net), render_size or 192, loaded.config.size_multiple


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photos", nargs="+", type=Path)
    p.add_argument("--models", nargs="+", type=Path, required=True)
    p.add_argument("--chroma-gain", type=float, default=1.3, help="for generators (an ONNX has its own)")
    p.add_argument("--render-size", type=int, default=192)
    p.add_argument("--counts", default="0,1,3,10")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-touch-up", action="store_true")
    args = p.parse_args()
    files = spread(list_images(args.photos), args.limit)
    if args.no_touch_up:
        import colorizer.colorize as colorize_module
        from colorizer.colorize import hint_contract

        real = colorize_module.spread_hints
        state = {"hint_model": False}

        def maybe_spread(ab, lum, hints, params=None, scale=1.0):
            return ab if state["hint_model"] else real(ab, lum, hints, params, scale)

        colorize_module.spread_hints = maybe_spread
    for model in args.models:
        predict, render_size, multiple = predictor(model, args.chroma_gain, args.render_size)
        if args.no_touch_up:
            state["hint_model"] = hint_contract(predict) is not None
        with predict if hasattr(predict, "__exit__") else contextlib.nullcontext():  # a backend closes at the end
            for count in (int(c) for c in args.counts.split(",")):
                r = evaluate_predictor(predict, files, render_size, multiple, progress=False, hints=count,
                                       hints_seed=args.seed)
                m, g = r["model"], r["gray"]
                at = f"{r['hints']['hint_delta_e']:.2f}" if count else "-"
                ratio = m["delta_e"] / g["delta_e"]
                print(f"{model.name:<40} hints {count:>2}: dE {m['delta_e']:.2f} = {ratio:.3f}x gray, "
                      f"colorfulness {m['colorfulness_ratio']:.3f}, dE at hints {at}", flush=True)


if __name__ == "__main__":
    main()

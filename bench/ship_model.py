"""Make the shipped default model in assets/models/ from a trainer checkpoint (maintainers' tool).

1. generator.safetensors: the generator's weights in float16 (half the size; the exporter upcasts),
   with the config and training summary the exporter needs;
2. colorizer-export on that file: colorizer.onnx, colorizer.fp16.onnx, colorizer.int8.onnx (calibrated
   on training photos: ``--int8-calibration``), colorizer.parity.json.

    D=../shared/data
    python bench/ship_model.py runs/default/checkpoints/step_0004000.safetensors --render-size 192 \
        --chroma-gain 1.2 --int8-calibration $D/imagenette-224/train $D/bsds500/train runs/splits/utkface_train.txt
"""

from __future__ import annotations

import argparse
from pathlib import Path

from colorizer.exporter.cli import main as export_main
from colorizer.trainer.checkpoint import load_generator, save_generator_as

MODELS = Path(__file__).resolve().parents[1] / "assets" / "models"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--render-size", type=int, required=True, help="default render size, chosen by evaluation")
    p.add_argument("--chroma-gain", type=float, default=1.0,
                   help="default colorfulness baked into the model, chosen on validation (bench/frontier.py)")
    p.add_argument("--version", default="1")
    p.add_argument("--int8-calibration", type=Path, nargs="+", default=(), metavar="PHOTOS",
                   help="training photos to calibrate the INT8 twin on (none: no INT8 twin)")
    p.add_argument("--hint-guided-share", type=float, default=1.0,
                   help="a model with hint inputs: the share of its guided prediction (colorizer-export)")
    p.add_argument("--out", type=Path, default=MODELS)
    args = p.parse_args()
    gen = load_generator(args.checkpoint)
    args.out.mkdir(parents=True, exist_ok=True)
    shipped = args.out / "generator.safetensors"
    save_generator_as(shipped, gen, half=True)
    return export_main([str(shipped), "-o", str(args.out), "--name", "colorizer", "--version", args.version,
                        "--render-size", str(args.render_size), "--chroma-gain", str(args.chroma_gain),
                        "--hint-guided-share", str(args.hint_guided_share),
                        *(["--int8-calibration", *map(str, args.int8_calibration)] if args.int8_calibration else [])])


if __name__ == "__main__":
    raise SystemExit(main())

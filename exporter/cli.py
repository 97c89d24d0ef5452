"""`colorizer-export`: trainer checkpoint -> ONNX + FP16 ONNX (parity-checked) -> TensorRT engine."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

EPILOG = """
Writes OUT/NAME.onnx (FP32, one self-contained file, dynamic batch/height/width, the color
contract in its metadata), OUT/NAME.fp16.onnx (FP16 inside, float32 inputs and outputs) and
OUT/NAME.parity.json (ONNX Runtime against PyTorch at several shapes). The export stops with the
figures if a model differs from PyTorch beyond the tolerance (FP32 1e-4, FP16 1e-2 on ab/110).

--engine also builds a TensorRT engine for this machine's GPU into the engine cache (or
--engine-dir), with a sidecar JSON saying what it was built for. That needs the `tensorrt` (or
`tensorrt_rtx`) Python module; without it the command says so and the ONNX files stay usable:
colorize-batch builds the engine itself on first GPU use.

exit codes: 0 done, 1 parity check failed, 2 bad checkpoint or arguments, 3 ONNX written but no
TensorRT engine (the message says why).

examples:
  colorizer-export runs/mine/generator.safetensors -o models/ --name mine --version 2
  colorizer-export runs/mine/checkpoints/last.safetensors -o models/ --engine
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="colorizer-export", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="Export a Colorizer generator to ONNX, FP16 ONNX and TensorRT.")
    p.add_argument("checkpoint", type=Path, help="generator.safetensors or a training checkpoint")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--name", default="colorizer", help="model name (file stem and metadata)")
    p.add_argument("--version", default="1", help="model version written into the metadata")
    p.add_argument("--chroma-gain", type=float, default=1.0,
                   help="multiply the predicted color by this inside the exported model: the model's default "
                   "colorfulness, chosen on validation data (recorded in the metadata; users' --saturation "
                   "applies on top)")
    p.add_argument("--render-size", type=int, help="default render size recorded for the runtime "
                   "(default: the training size)")
    p.add_argument("--no-fp16", action="store_true", help="skip the FP16 ONNX")
    p.add_argument("--int8-calibration", type=Path, nargs="+", default=(), metavar="PHOTOS",
                   help="also write NAME.int8.onnx, the INT8 twin CPUs run (about 1.6x as fast), calibrated "
                   "on these color photos (folders or .txt lists; training photos, never evaluation ones)")
    p.add_argument("--hint-guided-share", type=float, default=1.0, metavar="SHARE",
                   help="a model with hint inputs: with hints, the runtime takes SHARE of its prediction with "
                   "the hints and the rest of its prediction without them, before the spread (recorded in the "
                   "metadata; chosen on validation data; default 1: the prediction with the hints alone)")
    p.add_argument("--opset", type=int, help="ONNX opset (default 17)")
    e = p.add_argument_group("TensorRT")
    e.add_argument("--engine", action="store_true", help="also build a TensorRT engine for this GPU")
    e.add_argument("--precision", choices=("fp16", "fp32"), default="fp16")
    e.add_argument("--max-batch", type=int, default=8, help="largest batch the engine accepts")
    e.add_argument("--max-render-size", type=int, default=1024, help="largest H or W the engine accepts")
    e.add_argument("--workspace-mb", type=int, default=2048, help="builder workspace limit")
    e.add_argument("--engine-dir", type=Path, help="where engines go (default: the user cache folder)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from colorizer.exporter.export import export_model
    from colorizer.exporter.parity import ParityError

    try:
        result = export_model(args.checkpoint, args.out, name=args.name, version=args.version,
                              fp16=not args.no_fp16, render_size=args.render_size, opset=args.opset,
                              chroma_gain=args.chroma_gain, int8_photos=args.int8_calibration,
                              guided_share=args.hint_guided_share)
    except ParityError as exc:
        print(f"colorizer-export: parity check failed: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:  # OSError: a full disk, no permission (the message names the file)
        print(f"colorizer-export: error: {exc}", file=sys.stderr)
        return 2
    print(f"ONNX:      {result.onnx}  (parity max |diff| {result.parity.max_abs:.2e})")
    if result.fp16_onnx:
        print(f"FP16 ONNX: {result.fp16_onnx}  (parity max |diff| {result.fp16_parity.max_abs:.2e}, "
              f"mean {result.fp16_parity.mean_abs:.2e})")
    if result.int8_onnx:
        print(f"INT8 ONNX: {result.int8_onnx}  (mean |diff| {result.int8_parity.mean_abs:.2e} on real photos)")
    print(f"report:    {result.report}")
    if args.engine:
        return build_engine_for(result, args)
    return 0


def build_engine_for(result, args: argparse.Namespace) -> int:
    from colorizer.desktop.backends.tensorrt_engine import (
        BuildCancelled,
        EngineBuildError,
        TensorRTUnavailable,
        engine_for_model,
    )

    try:
        engine = engine_for_model(result.onnx, result.fp16_onnx, result.contract, precision=args.precision,
                                  max_batch=args.max_batch, max_render_size=args.max_render_size,
                                  workspace_bytes=args.workspace_mb << 20, cache_dir=args.engine_dir,
                                  progress=_ProgressPrinter())
        if sys.stderr.isatty():
            print(file=sys.stderr)
    except (TensorRTUnavailable, EngineBuildError, BuildCancelled, FileNotFoundError, ValueError) as exc:
        print(f"colorizer-export: no TensorRT engine: {exc}", file=sys.stderr)
        return 3
    print(f"engine:    {engine}")
    return 0


class _ProgressPrinter:
    """Engine build progress on stderr: one updating line on a terminal, phase names otherwise."""

    def __init__(self) -> None:
        self.last_phase = ""

    def __call__(self, phase: str, step: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\r\x1b[K  {phase}: {step}/{total}", end="", file=sys.stderr, flush=True)
        elif phase != self.last_phase:
            print(f"  {phase}", file=sys.stderr)
        self.last_phase = phase


if __name__ == "__main__":
    sys.exit(main())

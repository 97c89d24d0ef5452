"""The export pipeline as one call: checkpoint -> ONNX -> parity -> FP16 ONNX -> parity -> report."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from colorizer.contract import ModelContract
from colorizer.exporter.onnx_export import build_contract, convert_fp16, export_onnx, load_eval_generator
from colorizer.exporter.parity import ParityReport, check_parity
from colorizer.fileio import atomic_write

log = logging.getLogger(__name__)

INT8_PHOTOS = 64
"""Photos read for the INT8 twin: half calibrate it, half check it (:func:`.int8.quantize_int8`)."""


@dataclass(frozen=True)
class ExportResult:
    contract: ModelContract
    onnx: Path
    parity: ParityReport
    fp16_onnx: Path | None = None
    fp16_parity: ParityReport | None = None
    int8_onnx: Path | None = None
    int8_parity: ParityReport | None = None
    report: Path | None = None
    extra: dict = field(default_factory=dict)


def export_model(checkpoint: Path, out_dir: Path, *, name: str = "colorizer", version: str = "1",
                 fp16: bool = True, render_size: int | None = None, opset: int | None = None,
                 chroma_gain: float = 1.0, int8_photos: Sequence[Path] = (), guided_share: float = 1.0
                 ) -> ExportResult:
    """Export ``checkpoint`` into ``out_dir`` as NAME.onnx (and NAME.fp16.onnx; NAME.int8.onnx
    calibrated on ``int8_photos`` when given, for CPUs), parity-checked. A model with hint inputs
    records ``guided_share`` (:class:`colorizer.contract.HintInputs`).

    Raises ParityError (and leaves the failing model in place for inspection, with no report) when
    an exported model does not match PyTorch.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"the output folder {out_dir} is a file; choose another -o")
    if render_size is not None and render_size < 1:
        raise ValueError(f"--render-size must be a positive number of pixels, got {render_size}")
    loaded = load_eval_generator(Path(checkpoint), chroma_gain)
    contract = build_contract(loaded, name, version, render_size, guided_share)
    calibration = None
    if int8_photos:  # read before anything is written: unusable photos must not leave half an export
        from colorizer.exporter.int8 import calibration_inputs

        calibration = calibration_inputs(int8_photos, contract, INT8_PHOTOS)
    kwargs = {"opset": opset} if opset else {}
    _remove_previous_export(out_dir, name)
    onnx_path = export_onnx(loaded, contract, out_dir / f"{name}.onnx", **kwargs)
    parity = check_parity(loaded.net, str(onnx_path), contract.size_multiple, "fp32")
    log.info("FP32 parity: max |diff| %.2e, mean %.2e", parity.max_abs, parity.mean_abs)
    fp16_path = fp16_parity = None
    if fp16:
        fp16_path = convert_fp16(onnx_path, out_dir / f"{name}.fp16.onnx")
        fp16_parity = check_parity(loaded.net, str(fp16_path), contract.size_multiple, "fp16")
        log.info("FP16 parity: max |diff| %.2e, mean %.2e", fp16_parity.max_abs, fp16_parity.mean_abs)
    int8_path = int8_parity = None
    if int8_photos:
        from colorizer.exporter.int8 import quantize_int8

        int8_path = out_dir / f"{name}.int8.onnx"
        if contract.takes_hints:
            int8_parity = _int8_without_hints(loaded, contract, out_dir, name, int8_path, int8_photos, opset,
                                              calibration)
        else:
            int8_parity = quantize_int8(onnx_path, int8_path, contract, int8_photos, inputs=calibration)
    report_path = out_dir / f"{name}.parity.json"
    report = {
        "checkpoint": Path(checkpoint).name,
        "checkpoint_sha256": contract.checkpoint_sha256,
        "contract": contract.to_metadata(),
        "fp32": parity.to_dict(),
        "fp16": fp16_parity.to_dict() if fp16_parity else None,
        "int8": int8_parity.to_dict() if int8_parity else None,
    }
    atomic_write(report_path, (json.dumps(report, indent=2) + "\n").encode())
    return ExportResult(contract, onnx_path, parity, fp16_path, fp16_parity, int8_path, int8_parity, report_path)


def _remove_previous_export(out_dir: Path, name: str) -> None:
    """Remove the twins and report of an earlier export of NAME into ``out_dir`` before its NAME.onnx is
    replaced: the runtime takes whatever NAME.fp16.onnx (GPUs) and NAME.int8.onnx (CPUs) lie beside
    NAME.onnx, so an old twin left next to a new model (an export with --no-fp16, or without
    --int8-calibration, or one that failed half-way) would run the old model on another device."""
    for suffix in (".fp16.onnx", ".int8.onnx", ".parity.json"):
        stale = out_dir / f"{name}{suffix}"
        if stale.is_file():
            log.info("removing %s of an earlier export", stale)
            stale.unlink()


def _int8_without_hints(loaded, contract: ModelContract, out_dir: Path, name: str, int8_path: Path,
                        photos: Sequence[Path], opset: int | None, inputs=None) -> ParityReport:
    """The INT8 twin of a model with hint inputs takes L only: it is the model with no hint (zero
    guidance), exported and quantized as a model without hint inputs; the runtime then spreads a
    photo's hints over its colors, as for every model without hint inputs (quantizing the guidance
    path is not supported)."""
    import dataclasses
    import tempfile

    from colorizer.exporter.int8 import quantize_int8
    from colorizer.exporter.onnx_export import LoadedGenerator, WithoutHints

    plain = LoadedGenerator(WithoutHints(loaded.net).eval(), loaded.file, loaded.config)
    plain_contract = dataclasses.replace(contract, hint_inputs=None, format_version=1)
    log.info("INT8 twin: the model without its hint inputs (no hint); hints are spread over its colors")
    with tempfile.TemporaryDirectory(prefix=f"{name}-int8-", dir=out_dir) as tmp:
        kwargs = {"opset": opset} if opset else {}
        fp32_plain = export_onnx(plain, plain_contract, Path(tmp) / f"{name}.plain.onnx", **kwargs)
        return quantize_int8(fp32_plain, int8_path, plain_contract, photos, inputs=inputs)

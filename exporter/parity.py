"""Prove an exported model computes what PyTorch computes: ONNX Runtime (CPU) against the
generator on fixed inputs at several batch sizes and shapes.

Tolerances are on normalized ab (ab/110). FP32 must match to 1e-4. FP16 is allowed 1e-2: that is
1.1 Lab units at worst, while one 8-bit RGB step is about 0.5-1 Lab units of a/b, and the mean
error measured on real models is far smaller (see the parity report written beside the model).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from colorizer.contract import INPUT_NAME
from colorizer.errors import ColorizerError

FP32_TOLERANCE = 1e-4
FP16_TOLERANCE = 1e-2


class ParityError(ColorizerError, RuntimeError):
    """An exported model disagrees with PyTorch beyond the tolerance."""


@dataclass(frozen=True)
class ShapeResult:
    shape: tuple[int, int, int, int]
    max_abs: float
    mean_abs: float

    @classmethod
    def of(cls, batch: np.ndarray, got: np.ndarray, expected: np.ndarray) -> ShapeResult:
        diff = np.abs(got.astype(np.float32) - expected)
        return cls(tuple(batch.shape), float(diff.max()), float(diff.mean()))


@dataclass(frozen=True)
class ParityReport:
    model: str
    precision: str
    tolerance: float
    max_abs: float
    mean_abs: float
    shapes: tuple[ShapeResult, ...]
    criterion: str = "max"  # max: every value within the tolerance; mean: the mean difference (INT8)

    @property
    def passed(self) -> bool:
        return (self.mean_abs if self.criterion == "mean" else self.max_abs) <= self.tolerance

    def to_dict(self) -> dict:
        return asdict(self) | {"passed": self.passed}


def parity_inputs(size_multiple: int, seed: int = 0) -> list[np.ndarray]:
    """Fixed inputs: smooth gradients plus noise, at several batch sizes and aspect ratios."""
    m = size_multiple
    rng = np.random.default_rng(seed)
    out = []
    for n, h, w in ((1, m, m), (2, 2 * m, 3 * m), (3, 4 * m, 2 * m), (1, 5 * m, 4 * m)):
        y, x = np.mgrid[0:h, 0:w]
        base = np.sin(x / w * 6.0) * np.cos(y / h * 4.0)
        batch = np.stack([base * rng.uniform(0.3, 0.9) + rng.normal(0, 0.1, (h, w)) for _ in range(n)])
        out.append(np.clip(batch, -1, 1).astype(np.float32)[:, None])
    return out


def check_parity(net: torch.nn.Module, onnx_path: str, size_multiple: int, precision: str = "fp32",
                 tolerance: float | None = None) -> ParityReport:
    """Compare ``onnx_path`` on the CPU execution provider with ``net``; raise ParityError on failure."""
    import onnxruntime as ort

    tolerance = tolerance if tolerance is not None else (FP16_TOLERANCE if precision == "fp16" else FP32_TOLERANCE)
    from colorizer.exporter.onnx_export import model_inputs

    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    results = []
    for seed, batch in enumerate(parity_inputs(size_multiple)):
        inputs = model_inputs(net, torch.from_numpy(batch), seed)  # (L,) or (L, hint guidance)
        if len(inputs) != len(names) or names[0] != INPUT_NAME:
            raise ParityError(f"{onnx_path}: inputs {names}, the generator takes {len(inputs)}")
        with torch.inference_mode():
            expected = net(*inputs).numpy()
        (got,) = session.run(None, {name: x.numpy() for name, x in zip(names, inputs, strict=True)})
        if got.shape != expected.shape:
            raise ParityError(f"{onnx_path}: output shape {got.shape} for input {batch.shape}, "
                              f"PyTorch gives {expected.shape}")
        results.append(ShapeResult.of(batch, got, expected))
    return judge(str(onnx_path), precision, tolerance, results, "PyTorch")


def judge(model: str, precision: str, tolerance: float, results: list[ShapeResult], reference: str,
          criterion: str = "max") -> ParityReport:
    """The report of ``results``; raises ParityError when the ``criterion`` (max or mean) is over ``tolerance``."""
    report = ParityReport(model=model, precision=precision, tolerance=tolerance,
                          max_abs=max(r.max_abs for r in results),
                          mean_abs=float(np.mean([r.mean_abs for r in results])), shapes=tuple(results),
                          criterion=criterion)
    if not report.passed:
        worst = max(results, key=lambda r: getattr(r, f"{criterion}_abs"))
        raise ParityError(f"{model} ({precision}) differs from {reference} by up to {report.max_abs:.3g}, "
                          f"{report.mean_abs:.3g} on average (tolerance {tolerance:g} on the {criterion}; worst at "
                          f"input shape {worst.shape}); the export is not trustworthy")
    return report

"""Colorization quality metrics on uint8 RGB images, always read next to the gray baseline.

* PSNR (dB, RGB) and SSIM (RGB): closeness to the ground truth; high for gray output too.
* CIEDE2000 ΔE (mean over pixels): perceptual color difference; lower is better.
* Hasler–Süsstrunk colorfulness, and |Δcolorfulness| against the ground truth: a gray image
  scores 0, so a model that plays safe with brownish output shows up here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from colorizer.contract import rgb_to_lab

# scikit-image is imported where a metric is computed, not with the trainer: a training run without
# validation (e.g. on a GPU machine that carries only what it needs) does not need it.

METRIC_NAMES = ("psnr", "ssim", "delta_e", "colorfulness", "colorfulness_gt", "colorfulness_abs_diff")


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colorfulness of a uint8 RGB image (0 for gray)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg = r - g
    yb = 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def delta_e2000(rgb_a: np.ndarray, rgb_b: np.ndarray) -> float:
    from skimage.color import deltaE_ciede2000

    return float(deltaE_ciede2000(rgb_to_lab(rgb_a), rgb_to_lab(rgb_b)).mean())


def psnr(rgb_true: np.ndarray, rgb_test: np.ndarray) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    if np.array_equal(rgb_true, rgb_test):
        return float("inf")
    return float(peak_signal_noise_ratio(rgb_true, rgb_test, data_range=255))


def ssim(rgb_true: np.ndarray, rgb_test: np.ndarray) -> float:
    """SSIM with scikit-image's 7x7 window, or the largest odd window a photo smaller than that holds
    (an icon, a 5 px strip); NaN below 3 px, where it is undefined (:func:`mean_scores` leaves it out)."""
    from skimage.metrics import structural_similarity

    side = min(rgb_true.shape[:2])
    if side < 3:
        return float("nan")
    window = min(7, side if side % 2 else side - 1)
    return float(structural_similarity(rgb_true, rgb_test, channel_axis=2, data_range=255, win_size=window))


@dataclass(frozen=True)
class ImageScores:
    psnr: float
    ssim: float
    delta_e: float
    colorfulness: float
    colorfulness_gt: float
    colorfulness_abs_diff: float


def score(rgb_true: np.ndarray, rgb_test: np.ndarray) -> ImageScores:
    """All metrics of one uint8 RGB output against its uint8 RGB ground truth."""
    if rgb_true.shape != rgb_test.shape:
        raise ValueError(f"shape mismatch: ground truth {rgb_true.shape}, output {rgb_test.shape}")
    c_test, c_true = colorfulness(rgb_test), colorfulness(rgb_true)
    return ImageScores(
        psnr=psnr(rgb_true, rgb_test),
        ssim=ssim(rgb_true, rgb_test),
        delta_e=delta_e2000(rgb_true, rgb_test),
        colorfulness=c_test,
        colorfulness_gt=c_true,
        colorfulness_abs_diff=abs(c_test - c_true),
    )


def mean_scores(scores: Iterable[ImageScores]) -> dict[str, float]:
    rows = [asdict(s) for s in scores]
    if not rows:
        return {}
    # a metric no photo defines: PSNR of identical images only (inf); SSIM of photos under 3 px only (NaN)
    out = {k: float(np.mean([r[k] for r in rows if np.isfinite(r[k])]
                            or [np.inf if k == "psnr" else np.nan])) for k in METRIC_NAMES}
    out["colorfulness_ratio"] = out["colorfulness"] / out["colorfulness_gt"] if out["colorfulness_gt"] else 0.0
    out["images"] = len(rows)
    return out

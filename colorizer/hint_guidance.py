"""The dense guidance map a hint-conditioned model takes as input (one function for trainer and runtime).

A model with hint inputs (contract ``hints``, :class:`colorizer.contract.HintInputs`) is given,
beside L, three planes at render size computed from the hints placed on the render grid
(:class:`colorizer.hint_spread.RenderHints`) with the runtime's own edge-aware spread weights
(:func:`colorizer.hint_spread.hint_weights`, the weights the training-free spread uses):

* planes 0, 1: the hinted chroma spread over the photo, ``sum_i w_i ab_i / sum_i w_i``, as ab/110
  (0 where no hint reaches: the weights underflow);
* plane 2: the confidence ``1 - exp(-sum_i w_i)`` (1 at a hint, 0 far from every hint);
* each hint's own patch holds its chroma and confidence 1.

No hint at all gives three zero planes: the model then colors on its own. The trainer builds the
same planes from simulated hints (:func:`colorizer.trainer.data.guidance_for`), so training and inference see the
same input.
"""

from __future__ import annotations

import numpy as np

from colorizer.contract import AB_SCALE
from colorizer.hint_spread import DEFAULT_PARAMS, RenderHints, SpreadParams, hint_weights

GUIDANCE_CHANNELS = 3


def guidance_map(lum: np.ndarray, hints: RenderHints | None, params: SpreadParams | None = None,
                 ab_scale: float = 1.0) -> np.ndarray:
    """(3, h, w) float32 guidance for the render-size L ``lum`` (h, w) in [0, 100] and ``hints``
    placed on that grid (None or empty: zeros). The hints' chroma is divided by ``ab_scale``."""
    h, w = lum.shape
    out = np.zeros((GUIDANCE_CHANNELS, h, w), np.float32)
    if hints is None or len(hints) == 0:
        return out
    if tuple(hints.shape) != (h, w):
        raise ValueError(f"hints placed on {hints.shape}, L {lum.shape}: they must agree")
    params = params or hints.params or DEFAULT_PARAMS
    weights = getattr(hints, "weights", None)
    if weights is None or params != hints.params:
        weights = hint_weights(np.asarray(lum, np.float32), hints, params)
    total = weights.sum(axis=0)
    target = hints.ab.astype(np.float32) / np.float32(AB_SCALE * ab_scale)  # (n, 2)
    safe = np.maximum(total, np.float32(1e-12))
    for c in range(2):
        out[c] = np.tensordot(target[:, c], weights, axes=1) / safe
    out[2] = 1.0 - np.exp(-total)
    for i, (y0, y1, x0, x1) in enumerate(zip(hints.y0, hints.y1, hints.x0, hints.x1, strict=True)):
        out[:2, y0:y1, x0:x1] = target[i][:, None, None]
        out[2, y0:y1, x0:x1] = 1.0
    return out

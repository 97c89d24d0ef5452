"""Full-resolution colorization around any ab predictor (PyTorch, ONNX Runtime, TensorRT).

The model runs at a *render size* (long side); its ab prediction is upsampled to the original
size and merged with the original full-resolution L, so luminance detail is never lost. The work
is split in two halves so a runtime can batch the model call between them:

    prepared = prepare(rgb, render_size, size_multiple)   # decode side
    ab = predict(prepared.model_input[None])[0]           # batched inference
    rgb_out = finish(prepared, ab)                        # encode side (float32 RGB)
    rgb8 = finish_to(prepared, ab, bit_depth=8)           # or straight to 8- or 16-bit RGB

The finish works a strip of rows at a time: the color is fitted at render size, resized down the
height there (cheap), then each strip is resized across the width, merged with its rows of L,
converted to RGB and quantized into the output, so the full-resolution temporaries are a few
float32 strips whatever the size of the photo.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from colorizer.contract import ModelContract, Padding, denormalize_ab, normalize_l, pad_to_multiple, rgb_to_l
from colorizer.hint_guidance import guidance_map
from colorizer.hint_spread import RenderHints, SpreadParams, place_hints, spread_hints
from colorizer.hints import PhotoHints

Predictor = Callable[[np.ndarray], np.ndarray]
"""(N, 1, H, W) normalized L -> (N, 2, H, W) normalized ab. A predictor (or backend) whose model
has hint inputs says so with ``contract.takes_hints`` (or ``takes_hints``) and also takes
``hints=`` (N, 3, H, W) guidance (:func:`model_guidance`); :func:`predict_prepared` calls either."""

UPSAMPLING_MODES = ("guided", "bilinear")
STRIP_PIXELS = 1 << 19
"""Pixels per strip of the finish (0.5 MP: about 20 MB of float32 temporaries)."""
GUIDED_RADIUS, GUIDED_EPS = 2, 1e-3


@dataclass(frozen=True)
class Prepared:
    """One image made ready for the model, and what is needed to finish it."""

    l_full: np.ndarray  # (H, W) float32 L in [0, 100] merged with the color: full resolution (or a video's chroma's)
    model_input: np.ndarray  # (1, h, w) float32 normalized L at render size, padded
    padding: Padding
    l_small: np.ndarray | None = None  # (h, w) float32 L at render size, unpadded (None: made from l_full)
    hints: RenderHints | None = None  # the user's color hints on the render grid, spread over the predicted ab

    def with_hints(self, hints: PhotoHints | None, full_hw: tuple[int, int]) -> Prepared:
        """This photo (of ``full_hw``, upright) with ``hints`` placed on its render grid (HintsError
        when a point lies outside it); itself when there are none."""
        if hints is None or not hints.points:
            return self
        return replace(self, hints=place_hints(hints, full_hw, self.render_hw))

    @property
    def render_hw(self) -> tuple[int, int]:
        """The unpadded render size (h, w)."""
        (h, w), pad = self.render_shape, self.padding
        return h - pad.top - pad.bottom, w - pad.left - pad.right

    @property
    def render_shape(self) -> tuple[int, int]:
        return self.model_input.shape[-2], self.model_input.shape[-1]


def render_hw(height: int, width: int, render_size: int) -> tuple[int, int]:
    """Size at which the model sees an image: long side = render_size, aspect kept, never upscaled."""
    scale = min(1.0, render_size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def prepare_l(l_full: np.ndarray, render_size: int, size_multiple: int, pad_mode: str = "reflect",
              merge_l: np.ndarray | None = None) -> Prepared:
    """L (H, W) in [0, 100] -> a Prepared: the model sees it at render size; the color is merged with
    ``merge_l`` (default ``l_full`` itself; e.g. L at a 4:2:0 video's chroma resolution)."""
    h, w = l_full.shape
    rh, rw = render_hw(h, w, render_size)
    l_small = l_full if (rh, rw) == (h, w) else cv2.resize(l_full, (rw, rh), interpolation=cv2.INTER_AREA)
    padded, padding = pad_to_multiple(normalize_l(l_small), size_multiple, pad_mode)
    return Prepared(l_full=l_full if merge_l is None else merge_l,
                    model_input=padded[None].astype(np.float32, copy=False), padding=padding, l_small=l_small)


def prepare(rgb: np.ndarray, render_size: int, size_multiple: int, pad_mode: str = "reflect") -> Prepared:
    """RGB (H, W, 3) uint8/uint16/float -> a Prepared; color photos are reduced to their L."""
    return prepare_l(rgb_to_l(rgb), render_size, size_multiple, pad_mode)


def guided_coefficients(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """He et al.'s guided filter as a local linear model: src ~= a * guide + b in each window."""
    ksize = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, ksize, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide), box(src)
    var_i = box(guide * guide) - mean_i * mean_i
    a = (box(guide * src) - mean_i * mean_p) / (var_i + eps)
    b = mean_p - a * mean_i
    return box(a), box(b)


def _check_upsampling(mode: str) -> None:
    if mode not in UPSAMPLING_MODES:
        raise ValueError(f"unknown upsampling {mode!r}; choose from {', '.join(UPSAMPLING_MODES)}")


def color_planes(prepared: Prepared, ab_norm: np.ndarray, saturation: float = 1.0, upsampling: str = "guided"
                 ) -> np.ndarray:
    """The color of ``prepared`` as (k, H, w) float32 planes at full height and render width.

    k = 4 (``guided``, fast guided upsampling after He & Sun 2015): the linear model ab ~= A * L + B
    is fitted at render size against the downscaled L, and P[0:2] * L + P[2:4] (A and B with the
    saturation folded in, L the full-resolution L in [0, 100]) gives ab, so chroma edges follow the
    real luminance edges. k = 2 (``bilinear``, or no resizing): ab = P. Resizing each plane across
    the width (bilinear, as :func:`cv2.resize` down the height here) gives ab at full resolution.
    """
    _check_upsampling(upsampling)
    l_full = prepared.l_full
    height, width = l_full.shape
    ab = denormalize_ab(prepared.padding.crop(ab_norm))  # (2, h, w)
    small_h, small_w = ab.shape[-2:]
    sat = np.float32(saturation)
    l_small = prepared.l_small
    if (l_small is None or l_small.shape != (small_h, small_w)) and (
            prepared.hints is not None or (upsampling != "bilinear" and (small_h, small_w) != (height, width))):
        l_small = cv2.resize(l_full, (small_w, small_h), interpolation=cv2.INTER_AREA)
    if prepared.hints is not None:  # at render size, before the finish (hinted colors come out as given)
        # any model: what is left of each hint's residual spreads (the whole residual for a model without
        # hint inputs; a touch-up for one that was given the hints: predict_prepared)
        ab = spread_hints(ab, l_small, prepared.hints, scale=saturation)
    if upsampling == "bilinear" or (small_h, small_w) == (height, width):
        planes = [ab[0] * sat, ab[1] * sat]
    else:
        guide_small = l_small * np.float32(1 / 100)
        coeffs = [guided_coefficients(guide_small, np.ascontiguousarray(ab[c]), GUIDED_RADIUS, GUIDED_EPS)
                  for c in range(2)]
        planes = [coeffs[0][0] * (sat / 100), coeffs[1][0] * (sat / 100), coeffs[0][1] * sat, coeffs[1][1] * sat]
    stacked = cv2.resize(np.dstack(planes), (small_w, height), interpolation=cv2.INTER_LINEAR)  # down the height
    return np.ascontiguousarray(stacked.reshape(height, small_w, len(planes)).transpose(2, 0, 1))


def _quantize(rgb: np.ndarray, out: np.ndarray) -> None:
    """float RGB in [0, 1] -> ``out`` (uint8 / uint16), rounded to nearest; ``rgb`` is scratch."""
    if out.dtype == np.uint8:
        cv2.convertScaleAbs(rgb, dst=out, alpha=255.0)  # Lab -> RGB gives [0, 1]: no absolute value is taken
    else:
        np.multiply(rgb, np.float32(65535.0), out=rgb)
        rgb += np.float32(0.5)
        np.copyto(out, rgb, casting="unsafe")


def _quantize_half_up(rgb: np.ndarray, out: np.ndarray) -> None:
    """float RGB -> ``out`` (uint8 / uint16) exactly as ``fileio.to_bit_depth`` rounds (clipped to
    [0, 1], ``x * scale + 0.5`` in float32, floored): bit-identical to quantizing :func:`finish`'s
    float output afterwards, a strip at a time; ``rgb`` is scratch."""
    cv2.patchNaNs(rgb, 0.0)
    np.clip(rgb, 0.0, 1.0, out=rgb)
    np.multiply(rgb, np.float32(255.0 if out.dtype == np.uint8 else 65535.0), out=rgb)
    np.add(rgb, np.float32(0.5), out=rgb)
    np.copyto(out, rgb, casting="unsafe")


def _lab_strips(prepared: Prepared, ab_norm: np.ndarray, saturation: float, upsampling: str
                ) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, float32 Lab of a strip of rows at full resolution); the strip's array is reused:
    use it before asking for the next."""
    l_full = prepared.l_full
    height, width = l_full.shape
    planes = color_planes(prepared, ab_norm, saturation, upsampling)
    k, small_w = planes.shape[0], planes.shape[2]
    rows = max(1, min(height, STRIP_PIXELS // max(1, width)))
    # scratch for one strip, made once: fresh arrays per strip would cost their page faults each time
    across = np.empty(k * rows * width, np.float32)
    lab = np.empty((rows, width, 3), np.float32)
    for y0 in range(0, height, rows):
        n = min(rows, height - y0)
        # the k planes' rows stacked into one image: a resize across the width only (rows do not mix)
        strip = across[: k * n * width].reshape(k * n, width)
        cv2.resize(np.ascontiguousarray(planes[:, y0 : y0 + n]).reshape(k * n, small_w), (width, k * n), dst=strip,
                   interpolation=cv2.INTER_LINEAR)
        strip = strip.reshape(k, n, width)
        l_rows = np.ascontiguousarray(l_full[y0 : y0 + n])
        if k == 4:
            cv2.accumulateProduct(strip[0], l_rows, strip[2])  # a = A_a * L + B_a, in place
            cv2.accumulateProduct(strip[1], l_rows, strip[3])
        cv2.merge([l_rows, strip[k - 2], strip[k - 1]], dst=lab[:n])
        yield y0, lab[:n]


def finish_rows(prepared: Prepared, ab_norm: np.ndarray, saturation: float = 1.0, upsampling: str = "guided"
                ) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`finish` a strip of rows at a time: (first row, float32 RGB in [0, 1] of the strip).
    The strip's array is reused: use it before asking for the next."""
    rgb = None
    for y0, lab in _lab_strips(prepared, ab_norm, saturation, upsampling):
        if rgb is None:
            rgb = np.empty_like(lab)
        yield y0, cv2.cvtColor(lab, cv2.COLOR_Lab2RGB, dst=rgb[: len(lab)])


def finish_into(prepared: Prepared, ab_norm: np.ndarray, out: np.ndarray, saturation: float = 1.0,
                upsampling: str = "guided", half_up: bool = False) -> np.ndarray:
    """Model output (2, h, w) normalized ab for ``prepared`` -> RGB written into ``out`` ((H, W, 3)
    uint8, uint16 or float32 in [0, 1]) a strip of rows at a time; returns ``out``. Integer outputs
    are rounded to nearest (OpenCV's, half to even), or with ``half_up`` bit-identically to
    ``fileio.to_bit_depth`` of the float output (a few more passes over each strip)."""
    height, width = prepared.l_full.shape
    if out.shape != (height, width, 3) or out.dtype not in (np.uint8, np.uint16, np.float32) \
            or not out.flags.c_contiguous:
        raise ValueError(f"output must be a C-contiguous ({height}, {width}, 3) uint8, uint16 or float32 array, "
                         f"got {out.shape} {out.dtype}")
    if out.dtype == np.float32:  # Lab -> RGB gives [0, 1]
        for y0, lab in _lab_strips(prepared, ab_norm, saturation, upsampling):
            cv2.cvtColor(lab, cv2.COLOR_Lab2RGB, dst=out[y0 : y0 + len(lab)])
        return out
    quantize = _quantize_half_up if half_up else _quantize
    for y0, rgb in finish_rows(prepared, ab_norm, saturation, upsampling):
        quantize(rgb, out[y0 : y0 + len(rgb)])
    return out


def finish_to(prepared: Prepared, ab_norm: np.ndarray, saturation: float = 1.0, upsampling: str = "guided",
              bit_depth: int = 8, half_up: bool = False) -> np.ndarray:
    """Model output (2, h, w) normalized ab for ``prepared`` -> RGB (H, W, 3) uint8 (``bit_depth`` 8)
    or uint16 (16), rounded to nearest (``half_up``: see :func:`finish_into`), in bounded memory."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, got {bit_depth}")
    out = np.empty((*prepared.l_full.shape, 3), np.uint8 if bit_depth == 8 else np.uint16)
    return finish_into(prepared, ab_norm, out, saturation, upsampling, half_up)


def finish(prepared: Prepared, ab_norm: np.ndarray, saturation: float = 1.0, upsampling: str = "guided") -> np.ndarray:
    """Model output (2, h, w) normalized ab for ``prepared`` -> float32 RGB (H, W, 3) in [0, 1]."""
    out = np.empty((*prepared.l_full.shape, 3), np.float32)
    return finish_into(prepared, ab_norm, out, saturation, upsampling)


# ---------------------------------------------------------------------------- models with hint inputs
def hint_contract(predictor: object) -> ModelContract | None:
    """The contract of ``predictor`` (a backend, or a predictor with a ``contract``) when its model has
    hint inputs; None for every other model and plain function."""
    contract = getattr(predictor, "contract", None)
    return contract if isinstance(contract, ModelContract) and contract.takes_hints else None


def model_guidance(prepared: Prepared, contract: ModelContract) -> np.ndarray:
    """(3, H, W) float32 hint guidance (:func:`colorizer.hint_guidance.guidance_map`) of ``prepared``'s
    hints for a model with hint inputs, padded like its model input (zeros: no hint), computed with
    the spread settings the model was trained with (recorded in its contract)."""
    h, w = prepared.render_hw
    hints = prepared.hints
    if hints is None or len(hints) == 0:
        planes = np.zeros((3, h, w), np.float32)
    else:
        recorded = dict(contract.hint_inputs.spread) if contract.hint_inputs else {}
        params = SpreadParams(**recorded) if recorded else hints.params
        l_small = prepared.l_small
        if l_small is None or l_small.shape != (h, w):
            l_small = cv2.resize(prepared.l_full, (w, h), interpolation=cv2.INTER_AREA)
        planes = guidance_map(np.asarray(l_small, np.float32), hints, params)
    pad = prepared.padding
    if pad.top or pad.bottom or pad.left or pad.right:
        planes = np.pad(planes, ((0, 0), (pad.top, pad.bottom), (pad.left, pad.right)), mode="edge")
    return planes


def predict_prepared(predictor, prepared: Sequence[Prepared]) -> np.ndarray:
    """The model's ab (N, 2, h, w) for photos of one render shape: THE place where hints meet the model.
    A model with hint inputs (its contract says so) gets each photo's guidance (zeros for a photo
    without hints) — its prediction then follows the hints, and the finish's spread
    (:func:`color_planes`) only touches up what is left at the hint points; any other model gets L
    alone and the finish spreads the hints over its colors (the training-free route). ``predictor``:
    a backend (``.predict``) or a function of L."""
    x = np.stack([p.model_input for p in prepared])
    predict = getattr(predictor, "predict", predictor)
    contract = hint_contract(predictor)
    if contract is None:
        return predict(x)
    return predict(x, hints=np.stack([model_guidance(p, contract) for p in prepared]))


def colorize(
    rgb: np.ndarray,
    predict: Predictor,
    render_size: int,
    size_multiple: int,
    saturation: float = 1.0,
    upsampling: str = "guided",
    hints: PhotoHints | None = None,
) -> np.ndarray:
    """Colorize one image with ``predict`` (a function of L or a backend: :func:`predict_prepared`; and
    the user's color ``hints``, in its pixels); returns float32 RGB in [0, 1] at full resolution."""
    prepared = prepare(rgb, render_size, size_multiple).with_hints(hints, rgb.shape[:2])
    ab = predict_prepared(predict, [prepared])[0]
    return finish(prepared, ab, saturation, upsampling)

"""Full-resolution colorization around any ab predictor (PyTorch, ONNX Runtime, TensorRT).

The model runs at a *render size* (long side); its ab prediction is upsampled to the original
size and merged with the original full-resolution L, so luminance detail is never lost. The work
is split in two halves so a runtime can batch the model call between them:

    prepared = prepare(pixels, render_size, size_multiple)  # decode side: L, and L at render size
    ab = predict_prepared(predictor, [prepared])[0]         # batched inference (hints too)
    rgb = merge_color(prepared, ab, dtype=np.uint8)         # encode side: RGB, float32 / uint8 / uint16

Both halves work a strip of rows at a time (:data:`STRIP_PIXELS`), so whatever the size of the
photo the full-resolution arrays are the decoded pixels, L (float32) and the output:

* :func:`prepare` computes L from the decoded pixels (:func:`pixels_to_l`: RGB of any depth strip
  by strip, a gray photo's gray levels looked up), then reduces it to render size for the model
  (:func:`prepare_l`, which also takes L made elsewhere, e.g. from a video's luma plane).
* :func:`merge_color` fits the predicted color at render size (guided by L, :func:`color_planes`;
  the user's hints are spread there), resizes it down the height there (cheap), then each strip
  is resized across the width, merged with its rows of L, converted to RGB and written into the
  output in its dtype. :func:`merge_color_into` writes into an array the caller gives;
  :func:`merge_color_strips` hands out each strip's float32 RGB instead (a video's luma route
  turns them into its chroma planes).

The L the color is merged with (:attr:`Prepared.l_merge`) is the photo's full-resolution L, or L at
a 4:2:0 video's chroma resolution when only its chroma planes are computed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from colorizer.contract import (
    ModelContract,
    Padding,
    denormalize_ab,
    gray_to_l,
    normalize_l,
    pad_to_multiple,
    rgb_to_l,
)
from colorizer.hint_guidance import guidance_map
from colorizer.hint_spread import RenderHints, SpreadParams, place_hints, spread_hints
from colorizer.hints import PhotoHints

Predictor = Callable[[np.ndarray], np.ndarray]
"""(N, 1, H, W) normalized L -> (N, 2, H, W) normalized ab. A predictor (or backend) whose model
has hint inputs says so with ``contract.takes_hints`` (or ``takes_hints``) and also takes
``hints=`` (N, 3, H, W) guidance (:func:`model_guidance`); :func:`predict_prepared` calls either."""

UPSAMPLING_MODES = ("guided", "bilinear")
OUTPUT_DTYPES = (np.float32, np.uint8, np.uint16)
STRIP_PIXELS = 1 << 19
"""Pixels per strip of L and of the merge (0.5 MP: about 20 MB of float32 temporaries)."""
GUIDED_RADIUS, GUIDED_EPS = 2, 1e-3


@dataclass(frozen=True)
class Prepared:
    """One image made ready for the model, and what is needed to merge its color."""

    l_merge: np.ndarray
    """(H, W) float32 L in [0, 100] the color is merged with: the photo's full resolution, or a 4:2:0
    video's chroma resolution (its luma route computes the chroma planes only)."""
    model_input: np.ndarray  # (1, h, w) float32 normalized L at render size, padded
    padding: Padding
    l_small: np.ndarray | None = None  # (h, w) float32 L at render size, unpadded (None: made from l_merge)
    hints: RenderHints | None = None  # the user's color hints on the render grid, spread over the predicted ab

    def with_hints(self, hints: PhotoHints | None, full_hw: tuple[int, int]) -> Prepared:
        """This photo (of ``full_hw``, upright) with ``hints`` placed on its render grid (HintsError
        when a point lies outside it); itself when there are none."""
        if hints is None or not hints.points:
            return self
        return replace(self, hints=place_hints(hints, full_hw, self.render_hw))

    def l_render(self, hw: tuple[int, int]) -> np.ndarray:
        """L at the render size ``hw`` (h, w): ``l_small`` when it is that size, else ``l_merge`` area-averaged."""
        if self.l_small is not None and self.l_small.shape == hw:
            return self.l_small
        return cv2.resize(self.l_merge, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)

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


def _strip_rows(height: int, width: int) -> int:
    """Rows per strip of an image ``width`` pixels wide (at least one, at most ``height``)."""
    return max(1, min(height, STRIP_PIXELS // max(1, width)))


def pixels_to_l(pixels: np.ndarray) -> np.ndarray:
    """L in [0, 100] (H, W), a new float32 array, of decoded pixels: (H, W, 3) RGB (uint8, uint16 or
    float in [0, 1]; :func:`colorizer.contract.rgb_to_l` a strip of rows at a time, so the float32
    RGB and Lab planes of the whole image never exist), or (H, W) uint8 / uint16 gray levels
    (:func:`colorizer.contract.gray_to_l`, looked up)."""
    if pixels.ndim == 2:
        return gray_to_l(pixels)
    height, width = pixels.shape[:2]
    rows = _strip_rows(height, width)
    out = np.empty((height, width), np.float32)
    for y0 in range(0, height, rows):
        out[y0 : y0 + rows] = rgb_to_l(pixels[y0 : y0 + rows])
    return out


def prepare_l(l_full: np.ndarray, render_size: int, size_multiple: int, pad_mode: str = "reflect",
              l_merge: np.ndarray | None = None) -> Prepared:
    """Full-resolution L (H, W) in [0, 100] -> a Prepared: the model sees it at render size; the color
    is merged with ``l_merge`` (default ``l_full`` itself; e.g. L at a 4:2:0 video's chroma resolution)."""
    h, w = l_full.shape
    rh, rw = render_hw(h, w, render_size)
    l_small = l_full if (rh, rw) == (h, w) else cv2.resize(l_full, (rw, rh), interpolation=cv2.INTER_AREA)
    padded, padding = pad_to_multiple(normalize_l(l_small), size_multiple, pad_mode)
    return Prepared(l_merge=l_full if l_merge is None else l_merge,
                    model_input=padded[None].astype(np.float32, copy=False), padding=padding, l_small=l_small)


def prepare(pixels: np.ndarray, render_size: int, size_multiple: int, pad_mode: str = "reflect") -> Prepared:
    """Decoded pixels -> a Prepared, in bounded memory: (H, W, 3) RGB (uint8, uint16 or float in [0, 1];
    a color photo is reduced to its L) or (H, W) uint8 / uint16 gray levels (:func:`pixels_to_l`)."""
    return prepare_l(pixels_to_l(pixels), render_size, size_multiple, pad_mode)


def _guided_coefficients(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
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
    """The color of ``prepared`` as (k, H, w) float32 planes at the height of the L it is merged with
    (:attr:`Prepared.l_merge`, (H, W)) and at render width; its hints are spread over it first.

    k = 4 (``guided``, fast guided upsampling after He & Sun 2015): the linear model ab ~= A * L + B
    is fitted at render size against the downscaled L, and P[0:2] * L + P[2:4] (A and B with the
    saturation folded in, L the merged L in [0, 100]) gives ab, so chroma edges follow the real
    luminance edges. k = 2 (``bilinear``, or no resizing): ab = P. Resizing each plane across the
    width (bilinear, as :func:`cv2.resize` down the height here) gives ab at the merge resolution.
    """
    _check_upsampling(upsampling)
    l_merge = prepared.l_merge
    height, width = l_merge.shape
    ab = denormalize_ab(prepared.padding.crop(ab_norm))  # (2, h, w)
    small_h, small_w = ab.shape[-2:]
    sat = np.float32(saturation)
    guided = upsampling != "bilinear" and (small_h, small_w) != (height, width)
    l_small = prepared.l_render((small_h, small_w)) if prepared.hints is not None or guided else None
    if prepared.hints is not None:  # at render size, before the merge (hinted colors come out as given)
        # any model: what is left of each hint's residual spreads (the whole residual for a model without
        # hint inputs; a touch-up for one that was given the hints: predict_prepared)
        ab = spread_hints(ab, l_small, prepared.hints, scale=saturation)
    if not guided:
        planes = [ab[0] * sat, ab[1] * sat]
    else:
        guide_small = l_small * np.float32(1 / 100)
        coeffs = [_guided_coefficients(guide_small, np.ascontiguousarray(ab[c]), GUIDED_RADIUS, GUIDED_EPS)
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
    [0, 1], ``x * scale + 0.5`` in float32, floored): bit-identical to quantizing the float32 output
    of :func:`merge_color` afterwards, a strip at a time; ``rgb`` is scratch."""
    cv2.patchNaNs(rgb, 0.0)
    np.clip(rgb, 0.0, 1.0, out=rgb)
    np.multiply(rgb, np.float32(255.0 if out.dtype == np.uint8 else 65535.0), out=rgb)
    np.add(rgb, np.float32(0.5), out=rgb)
    np.copyto(out, rgb, casting="unsafe")


def _merged_lab_strips(prepared: Prepared, ab_norm: np.ndarray, saturation: float, upsampling: str
                       ) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, float32 Lab of a strip of rows of :attr:`Prepared.l_merge` merged with the color of
    :func:`color_planes`); the strip's array is reused: use it before asking for the next."""
    l_merge = prepared.l_merge
    height, width = l_merge.shape
    planes = color_planes(prepared, ab_norm, saturation, upsampling)
    k, small_w = planes.shape[0], planes.shape[2]
    rows = _strip_rows(height, width)
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
        l_rows = np.ascontiguousarray(l_merge[y0 : y0 + n])
        if k == 4:
            cv2.accumulateProduct(strip[0], l_rows, strip[2])  # a = A_a * L + B_a, in place
            cv2.accumulateProduct(strip[1], l_rows, strip[3])
        cv2.merge([l_rows, strip[k - 2], strip[k - 1]], dst=lab[:n])
        yield y0, lab[:n]


def merge_color_strips(prepared: Prepared, ab_norm: np.ndarray, saturation: float = 1.0, upsampling: str = "guided"
                       ) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`merge_color` a strip of rows at a time: (first row, float32 RGB in [0, 1] of the strip).
    The strip's array is reused: use it before asking for the next."""
    rgb = None
    for y0, lab in _merged_lab_strips(prepared, ab_norm, saturation, upsampling):
        if rgb is None:
            rgb = np.empty_like(lab)
        yield y0, cv2.cvtColor(lab, cv2.COLOR_Lab2RGB, dst=rgb[: len(lab)])


def merge_color_into(prepared: Prepared, ab_norm: np.ndarray, out: np.ndarray, saturation: float = 1.0,
                     upsampling: str = "guided", half_up: bool = False) -> np.ndarray:
    """:func:`merge_color` written into ``out`` (a C-contiguous (H, W, 3) array of an
    :data:`OUTPUT_DTYPES` dtype, (H, W) that of :attr:`Prepared.l_merge`); returns ``out``."""
    height, width = prepared.l_merge.shape
    if out.shape != (height, width, 3) or out.dtype not in OUTPUT_DTYPES or not out.flags.c_contiguous:
        raise ValueError(f"output must be a C-contiguous ({height}, {width}, 3) uint8, uint16 or float32 array, "
                         f"got {out.shape} {out.dtype}")
    if out.dtype == np.float32:  # Lab -> RGB gives [0, 1]
        for y0, lab in _merged_lab_strips(prepared, ab_norm, saturation, upsampling):
            cv2.cvtColor(lab, cv2.COLOR_Lab2RGB, dst=out[y0 : y0 + len(lab)])
        return out
    quantize = _quantize_half_up if half_up else _quantize
    for y0, rgb in merge_color_strips(prepared, ab_norm, saturation, upsampling):
        quantize(rgb, out[y0 : y0 + len(rgb)])
    return out


def merge_color(prepared: Prepared, ab_norm: np.ndarray, saturation: float = 1.0, upsampling: str = "guided",
                dtype: type | np.dtype = np.float32, half_up: bool = False) -> np.ndarray:
    """The model's output (2, h, w) normalized ab for ``prepared`` -> RGB (H, W, 3) of ``dtype``, a
    strip of rows at a time (bounded memory): the color upsampled (``upsampling``, guided by L, with
    the hints spread and ``saturation`` applied: :func:`color_planes`), merged with
    :attr:`Prepared.l_merge` and converted to RGB. ``float32``: in [0, 1]; ``uint8`` / ``uint16``:
    rounded to nearest (OpenCV's, half to even), or with ``half_up`` bit-identically to
    ``fileio.to_bit_depth`` of the float32 output (a few more passes over each strip)."""
    if np.dtype(dtype) not in OUTPUT_DTYPES:
        raise ValueError(f"output dtype must be float32, uint8 or uint16, got {np.dtype(dtype)}")
    out = np.empty((*prepared.l_merge.shape, 3), dtype)
    return merge_color_into(prepared, ab_norm, out, saturation, upsampling, half_up)


# ---------------------------------------------------------------------------- models with hint inputs
def hint_contract(predictor: object) -> ModelContract | None:
    """The contract of ``predictor`` (a backend, or a predictor with a ``contract``) when its model has
    hint inputs; None for every other model and plain function."""
    contract = getattr(predictor, "contract", None)
    return contract if isinstance(contract, ModelContract) and contract.takes_hints else None


def model_guidance(prepared: Prepared, contract: ModelContract) -> np.ndarray:
    """(3, H, W) float32 hint guidance (:func:`colorizer.hint_guidance.guidance_map`) of ``prepared``'s
    hints for a model with hint inputs, padded like its model input (zeros: no hint), computed with
    the spread settings the model was trained with (recorded in its contract); a film frame's hints
    come with their weights computed on the decode thread on a coarser distance grid
    (:class:`colorizer.desktop.pipeline.hint_tracking.FilmSpread`), and those are used when the grid
    is all that differs."""
    h, w = prepared.render_hw
    hints = prepared.hints
    if hints is None or len(hints) == 0:
        planes = np.zeros((3, h, w), np.float32)
    else:
        recorded = dict(contract.hint_inputs.spread) if contract.hint_inputs else {}
        params = SpreadParams(**recorded) if recorded else hints.params
        if hints.weights is not None and replace(params, grid=hints.params.grid) == hints.params:
            params = hints.params  # a film frame's weights, computed ahead on its coarser distance grid: reused
        planes = guidance_map(np.asarray(prepared.l_render((h, w)), np.float32), hints, params)
    pad = prepared.padding
    if pad.top or pad.bottom or pad.left or pad.right:
        planes = np.pad(planes, ((0, 0), (pad.top, pad.bottom), (pad.left, pad.right)), mode="edge")
    return planes


def predict_prepared(predictor, prepared: Sequence[Prepared], unguided: np.ndarray | None = None) -> np.ndarray:
    """The model's ab (N, 2, h, w) for photos of one render shape: THE place where hints meet the model.
    A model with hint inputs (its contract says so) gets each photo's guidance (zeros for a photo
    without hints) — its prediction then follows the hints (mixed with its prediction without them
    when the contract's ``guided_share`` is below 1, and only where the hints reach: a second call),
    and the merge's spread
    (:func:`color_planes`) touches up what is left at the hint points; any other model gets L
    alone and the merge spreads the hints over its colors (the training-free route). ``predictor``:
    a backend (``.predict``) or a function of L; ``unguided``: the model's prediction of these photos
    without hints (N, 2, h, w), when the caller has it already (the app's preview at each edit): the
    second call is then not made."""
    x = np.stack([p.model_input for p in prepared])
    predict = getattr(predictor, "predict", predictor)
    contract = hint_contract(predictor)
    if contract is None:
        return predict(x)
    guidance = np.stack([model_guidance(p, contract) for p in prepared])
    guided = predict(x, hints=guidance)
    share = contract.hint_inputs.guided_share
    hinted = guidance.reshape(len(guidance), -1).any(axis=1)
    if share >= 1.0 or not hinted.any():
        return guided
    # the contract's share of the guided prediction where the hints reach, the model's own colors
    # without hints elsewhere; predicted again only for the photos with hints (for the others, zero
    # guidance, both are the same prediction)
    if unguided is None:
        unguided = predict(x[hinted], hints=np.zeros_like(guidance[hinted]))
    else:
        unguided = np.asarray(unguided, np.float32)[hinted]
    reach = _hint_reach(guidance[hinted], contract)[:, None]
    out = np.array(guided, np.float32, copy=True)  # a backend may hand out its own buffer
    out[hinted] = unguided + reach * np.float32(share) * (out[hinted] - unguided)
    return out


def _hint_reach(guidance: np.ndarray, contract: ModelContract) -> np.ndarray:
    """(N, H, W) in [0, 1]: how far the hints reach at each pixel, as the spread fades its residual —
    the summed spread weights (from the guidance's confidence, 1 - exp(-sum)) against its floor."""
    floor = max(1e-6, float(dict(contract.hint_inputs.spread).get("floor", SpreadParams().floor)))
    confidence = np.clip(guidance[:, 2], 0.0, np.float32(1 - 1e-7))
    return np.minimum(np.float32(1.0), -np.log1p(-confidence) / np.float32(floor))


def colorize(
    rgb: np.ndarray,
    predict: Predictor,
    render_size: int,
    size_multiple: int,
    saturation: float = 1.0,
    upsampling: str = "guided",
    hints: PhotoHints | None = None,
) -> np.ndarray:
    """Colorize one image (RGB or gray levels: :func:`prepare`) with ``predict`` (a function of L or a
    backend: :func:`predict_prepared`; and the user's color ``hints``, in its pixels); returns float32
    RGB in [0, 1] at full resolution."""
    prepared = prepare(rgb, render_size, size_multiple).with_hints(hints, rgb.shape[:2])
    ab = predict_prepared(predict, [prepared])[0]
    return merge_color(prepared, ab, saturation, upsampling)

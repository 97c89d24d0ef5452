"""Color hints spread over a photo without training: works with every exported model.

The hints of a photo (:mod:`colorizer.hints`) are placed on the render-size grid once the photo's
size is known (:func:`place_hints`); after the model has predicted ab at render size and before
it is brought to full resolution (:func:`colorizer.colorize.color_planes`), :func:`spread_hints`
moves the prediction toward the hints:

* each hint's residual ``r_i`` = its chroma - the predicted ab averaged over its patch;
* a weight per hint and pixel: a Gaussian in distance (``sigma_distance`` of the long side) times a
  Gaussian in lightness difference (``sigma_lightness`` L units) to the hint's patch;
  with ``method="geodesic"`` the distance is geodesic: it grows by ``edge_cost`` of the long side
  per L unit crossed, so color does not leak over strong edges into regions it cannot reach
  without crossing one (computed on a coarse grid by raster sweeps, then resized);
* the model's own colors gate it (``sigma_chroma``): a pixel whose *predicted* ab differs from the
  prediction at the hint weighs ``exp(-d^2 / (2 sigma_chroma^2))`` less, so a hint stays on what the
  model took for the same thing (the sky's hint off grass it predicted green, at the same lightness);
  a model that predicted gray everywhere leaves the gate open (1);
* ``ab + sum_i w_i r_i / max(sum_i w_i, floor)``: near a hint its residual applies in full, where
  several overlap they are averaged, and far from every hint (sum of weights << floor) the
  prediction stays;
* the hint's own pixels are set to its chroma.

Everything is vectorized numpy/OpenCV at render size: its cost does not depend on the photo's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from colorizer.hints import PhotoHints

SPREAD_METHODS = ("geodesic", "gaussian")


@dataclass(frozen=True)
class SpreadParams:
    """How hints spread; the defaults won bench/hints_spread_sweep.py (README, "Color hints")."""

    method: str = "geodesic"
    sigma_distance: float = 0.35  # of the long side
    sigma_lightness: float = 8.0  # L units
    floor: float = 0.3  # the sum of weights below which the residual fades (far from every hint)
    sigma_chroma: float = 10.0  # ab units: the gate by the model's predicted colors (0: off; the spread only)
    edge_cost: float = 0.002  # geodesic: distance (of the long side) added per L unit crossed
    grid: int = 96  # geodesic: long side of the grid the distances are computed on

    def __post_init__(self) -> None:
        if self.method not in SPREAD_METHODS:
            raise ValueError(f"unknown hint spread {self.method!r}; choose from {', '.join(SPREAD_METHODS)}")


DEFAULT_PARAMS = SpreadParams()


@dataclass(frozen=True)
class RenderHints:
    """Hints placed on the render grid (h, w): patch bounds [y0, y1) x [x0, x1), centers and chroma."""

    shape: tuple[int, int]
    y0: np.ndarray
    y1: np.ndarray
    x0: np.ndarray
    x1: np.ndarray
    cy: np.ndarray  # float, render pixel coordinates of the centers
    cx: np.ndarray
    ab: np.ndarray  # (n, 2) float32 Lab a, b
    hints: PhotoHints  # the hints as given (the report lists them)
    digest: str
    params: SpreadParams = DEFAULT_PARAMS
    weights: np.ndarray | None = None  # (n, h, w) hint_weights computed ahead (a film's decode thread); None: later

    def __len__(self) -> int:
        return len(self.ab)


def place_hints(hints: PhotoHints, full_hw: tuple[int, int], render_hw: tuple[int, int],
                params: SpreadParams = DEFAULT_PARAMS) -> RenderHints:
    """``hints`` of a photo of ``full_hw`` (upright, checked to lie inside) on a ``render_hw`` grid:
    each point's square of ``size`` photo pixels covers at least the render pixel under its center."""
    (height, width), (h, w) = full_hw, render_hw
    hints.check_inside(width, height)
    sy, sx = h / height, w / width
    n = len(hints.points)
    x = np.array([p.x for p in hints.points], np.float64).reshape(n)
    y = np.array([p.y for p in hints.points], np.float64).reshape(n)
    side = np.array([p.side for p in hints.points], np.float64).reshape(n)
    # a photo pixel i spans [i, i + 1); the square [x + 0.5 - side / 2, x + 0.5 + side / 2) on the render grid
    cxs, cys = (x + 0.5) * sx, (y + 0.5) * sy
    inside_x = np.clip(np.floor(cxs), 0, w - 1).astype(np.int64)
    inside_y = np.clip(np.floor(cys), 0, h - 1).astype(np.int64)
    x0 = np.minimum(inside_x, np.floor(cxs - side * sx / 2 + 1e-6)).clip(0, w - 1).astype(np.int64)
    x1 = np.maximum(inside_x + 1, np.ceil(cxs + side * sx / 2 - 1e-6)).clip(1, w).astype(np.int64)
    y0 = np.minimum(inside_y, np.floor(cys - side * sy / 2 + 1e-6)).clip(0, h - 1).astype(np.int64)
    y1 = np.maximum(inside_y + 1, np.ceil(cys + side * sy / 2 - 1e-6)).clip(1, h).astype(np.int64)
    ab = np.array([p.ab() for p in hints.points], np.float32).reshape(n, 2)
    return RenderHints((h, w), y0, y1, x0, x1, cys - 0.5, cxs - 0.5, ab, hints, hints.digest(), params)


# ---------------------------------------------------------------------------- geodesic distance
def _sweep_rows(dist: np.ndarray, vertical: np.ndarray, down_right: np.ndarray, down_left: np.ndarray) -> None:
    """Relax ``dist`` (H, W, n: the hints last, so a row of every hint is one block) from each row to
    the next, down then up (costs between rows y and y + 1: ``vertical`` (H-1, W), ``down_right``
    (H-1, W-1) for (y, x)->(y+1, x+1), ``down_left`` for (y, x+1)->(y+1, x)). ``dist`` may be a
    transposed view (the columns swept as rows)."""
    height = dist.shape[0]
    tmp = np.empty(dist.shape[1:], np.float32)
    vertical, down_right, down_left = vertical[..., None], down_right[..., None], down_left[..., None]
    for order in (range(1, height), range(height - 2, -1, -1)):
        for y in order:
            prev = y - 1 if order.step == 1 else y + 1
            k = min(y, prev)  # the cost rows between y and prev
            row, src = dist[y], dist[prev]
            np.add(src, vertical[k], out=tmp)
            np.minimum(row, tmp, out=row)
            if order.step == 1:  # from (y-1, x-1) and (y-1, x+1)
                _relax(row[1:], src[:-1], down_right[k], tmp[1:])
                _relax(row[:-1], src[1:], down_left[k], tmp[:-1])
            else:  # from (y+1, x+1) (reverse of down_right) and (y+1, x-1) (reverse of down_left)
                _relax(row[:-1], src[1:], down_right[k], tmp[:-1])
                _relax(row[1:], src[:-1], down_left[k], tmp[1:])


def _relax(row: np.ndarray, src: np.ndarray, cost: np.ndarray, scratch: np.ndarray) -> None:
    """``row = min(row, src + cost)`` in place (``scratch``: of ``row``'s shape)."""
    np.add(src, cost, out=scratch)
    np.minimum(row, scratch, out=row)


def _row_costs(lum: np.ndarray, step: float, edge: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vertical = step + edge * np.abs(lum[1:] - lum[:-1])
    diag = step * np.sqrt(2)
    down_right = diag + edge * np.abs(lum[1:, 1:] - lum[:-1, :-1])
    down_left = diag + edge * np.abs(lum[1:, :-1] - lum[:-1, 1:])
    return vertical.astype(np.float32), down_right.astype(np.float32), down_left.astype(np.float32)


def _geodesic_distances_last(lum: np.ndarray, seeds_y: np.ndarray, seeds_x: np.ndarray, step: float, edge: float,
                             sweeps: int = 2) -> np.ndarray:
    """:func:`geodesic_distances` as (H, W, n): the layout the sweeps work in (a row of every hint
    is one contiguous block, and the columns are swept through a transposed view, not a copy)."""
    n = len(seeds_y)
    height, width = lum.shape
    dist = np.full((height, width, n), np.float32(1e6), np.float32)
    dist[seeds_y, seeds_x, np.arange(n)] = 0.0
    costs = _row_costs(lum, step, edge)
    costs_t = _row_costs(np.ascontiguousarray(lum.T), step, edge)
    for _ in range(sweeps):
        _sweep_rows(dist, *costs)
        _sweep_rows(dist.transpose(1, 0, 2), *costs_t)
    return dist


def geodesic_distances(lum: np.ndarray, seeds_y: np.ndarray, seeds_x: np.ndarray, step: float, edge: float,
                       sweeps: int = 2) -> np.ndarray:
    """(n, H, W) float32 geodesic distance from each seed pixel over the grid ``lum`` (H, W): a step
    to a neighbour costs ``step`` (x sqrt 2 diagonally) + ``edge`` x |difference of lum|. Raster sweeps
    (down/up, then left/right) repeated ``sweeps`` times, vectorized across the hints."""
    dist = _geodesic_distances_last(lum, seeds_y, seeds_x, step, edge, sweeps)
    return np.ascontiguousarray(dist.transpose(2, 0, 1))


_RESIZE_CHANNELS = 4
"""Hints resized in one OpenCV call. Always this many (the last call padded): OpenCV's bilinear
resize of 2 channels rounds differently from that of 4, and a hint's weights must not depend on
which others it was computed with (the app's preview computes only the hints an edit changed)."""


def _resized_chunks(planes: np.ndarray, hw: tuple[int, int]) -> Iterator[tuple[int, np.ndarray]]:
    """(first hint, (h, w, k) bilinear resize of ``planes`` (H, W, n) hints [first, first + k) to ``hw``),
    k <= :data:`_RESIZE_CHANNELS`: a chunk at a time, each hint's result as if resized alone."""
    same = tuple(planes.shape[:2]) == tuple(hw)
    n = planes.shape[2]
    for i in range(0, n, _RESIZE_CHANNELS):
        k = min(_RESIZE_CHANNELS, n - i)
        if same:
            yield i, planes[..., i : i + k]
            continue
        chunk = np.zeros((*planes.shape[:2], _RESIZE_CHANNELS), np.float32)
        chunk[..., :k] = planes[..., i : i + k]
        yield i, cv2.resize(chunk, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)[..., :k]


# ---------------------------------------------------------------------------- the spread
def geodesic_grid(lum: np.ndarray, hints: RenderHints, params: SpreadParams = DEFAULT_PARAMS
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The grid the geodesic distances are computed on: (coarse L, seed rows, seed columns)."""
    h, w = lum.shape
    scale = min(1.0, params.grid / float(max(h, w)))
    gh, gw = max(1, round(h * scale)), max(1, round(w * scale))
    coarse = lum if (gh, gw) == (h, w) else cv2.resize(lum, (gw, gh), interpolation=cv2.INTER_AREA)
    sy = np.clip(np.floor((hints.cy + 0.5) * gh / h), 0, gh - 1).astype(np.int64)
    sx = np.clip(np.floor((hints.cx + 0.5) * gw / w), 0, gw - 1).astype(np.int64)
    return coarse.astype(np.float32), sy, sx


def hint_distances(lum: np.ndarray, hints: RenderHints, params: SpreadParams = DEFAULT_PARAMS,
                   grid: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(n, h, w) float32 geodesic distance (units of the long side) of each hint at each render pixel,
    computed on ``grid`` (:func:`geodesic_grid`, made here when None) and resized to ``lum``'s shape."""
    out = np.empty((len(hints), *lum.shape), np.float32)
    for i, dist in _distance_chunks(lum, hints, params, grid):
        out[i : i + len(dist)] = dist
    return out


def _distance_chunks(lum: np.ndarray, hints: RenderHints, params: SpreadParams,
                     grid: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                     ) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`hint_distances` a few hints at a time: (first hint, (k, h, w) distances, a view that
    holds until the next chunk is asked for)."""
    coarse, sy, sx = grid if grid is not None else geodesic_grid(lum, hints, params)
    gh, gw = coarse.shape
    # distances in units of the long side: a grid step is 1 / long side of the grid
    dist = _geodesic_distances_last(coarse, sy, sx, 1.0 / max(gh, gw), params.edge_cost)
    for i, resized in _resized_chunks(dist, lum.shape):
        yield i, resized.transpose(2, 0, 1)


def _given_chunks(distances: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    for i in range(0, len(distances), _RESIZE_CHANNELS):
        yield i, distances[i : i + _RESIZE_CHANNELS]


def hint_weights(lum: np.ndarray, hints: RenderHints, params: SpreadParams = DEFAULT_PARAMS,
                 hint_l: np.ndarray | None = None, distances: np.ndarray | None = None) -> np.ndarray:
    """(n, h, w) float32 weight of each hint at each render pixel (1 at the hint itself); geodesic:
    ``distances`` (:func:`hint_distances`) computed ahead may be given (a film reuses them while
    nothing moves). Computed a few hints at a time (each hint's weights do not depend on the others),
    so the temporaries stay small whatever the number of hints."""
    lum = np.asarray(lum, np.float32)
    h, w = lum.shape
    long_side = float(max(h, w))
    if hint_l is None:
        hint_l = patch_means(lum[None], hints)[:, 0]
    hint_l = hint_l.astype(np.float32)
    out = np.empty((len(hints), h, w), np.float32)
    lightness_scale = np.float32(2 * params.sigma_lightness ** 2)
    if params.method == "gaussian":
        yy = np.arange(h, dtype=np.float32)[None, :, None]
        xx = np.arange(w, dtype=np.float32)[None, None, :]
        cy, cx = hints.cy.astype(np.float32)[:, None, None], hints.cx.astype(np.float32)[:, None, None]
        distance_scale = np.float32(2 * (params.sigma_distance * long_side) ** 2)
        for i in range(0, len(hints), _RESIZE_CHANNELS):
            part = slice(i, i + _RESIZE_CHANNELS)
            exponent = out[part]
            np.add((yy - cy[part]) ** 2, (xx - cx[part]) ** 2, out=exponent)
            exponent /= distance_scale
            _add_lightness_and_exp(exponent, lum, hint_l[part], lightness_scale)
        return out
    chunks = _distance_chunks(lum, hints, params) if distances is None else _given_chunks(distances)
    distance_scale = np.float32(2 * params.sigma_distance ** 2)
    for i, dist in chunks:
        exponent = out[i : i + len(dist)]
        np.multiply(dist, dist, out=exponent)
        exponent /= distance_scale
        _add_lightness_and_exp(exponent, lum, hint_l[i : i + len(dist)], lightness_scale)
    return out


def _add_lightness_and_exp(exponent: np.ndarray, lum: np.ndarray, hint_l: np.ndarray, scale: np.float32) -> None:
    """``exponent`` (k, h, w) (distance term) -> ``exp(-(exponent + (lum - hint_l)^2 / scale))`` in place."""
    lightness = lum[None] - hint_l[:, None, None]
    np.square(lightness, out=lightness)
    lightness /= scale
    exponent += lightness
    np.negative(exponent, out=exponent)
    np.exp(exponent, out=exponent)


def patch_means(planes: np.ndarray, hints: RenderHints) -> np.ndarray:
    """(n, k) mean of (k, h, w) ``planes`` over each hint's patch."""
    return np.array([planes[:, y0:y1, x0:x1].reshape(planes.shape[0], -1).mean(axis=1)
                     for y0, y1, x0, x1 in zip(hints.y0, hints.y1, hints.x0, hints.x1, strict=True)],
                    np.float32).reshape(len(hints), planes.shape[0])


def chroma_gate(ab: np.ndarray, predicted: np.ndarray, sigma: float) -> np.ndarray:
    """(n, h, w) float32 ``exp(-|ab - predicted_i|^2 / (2 sigma^2))``: how alike the predicted color
    ``ab`` (2, h, w) at each pixel is to the prediction at each hint (``predicted`` (n, 2))."""
    n = len(predicted)
    gate = np.empty((n, *ab.shape[-2:]), np.float32)
    scale = np.float32(-1.0 / (2 * sigma * sigma))
    for i in range(n):  # one hint at a time: no (n, 2, h, w) temporary
        np.square(ab[0] - predicted[i, 0], out=gate[i])
        gate[i] += np.square(ab[1] - predicted[i, 1])
        gate[i] *= scale
    return np.exp(gate, out=gate)


def spread_hints(ab: np.ndarray, lum: np.ndarray, hints: RenderHints, params: SpreadParams | None = None,
                 scale: float = 1.0) -> np.ndarray:
    """The predicted ``ab`` (2, h, w) in Lab units, moved toward ``hints`` (placed on this grid);
    ``lum``: L (h, w) at render size; ``params`` default to those the hints were placed with. The
    hints' chroma is divided by ``scale`` (the saturation the finish multiplies by afterwards, so
    hinted colors come out as given). A new float32 array."""
    out = np.array(ab, np.float32, copy=True)
    if len(hints) == 0 or scale <= 0:
        return out
    if tuple(lum.shape) != tuple(ab.shape[-2:]) or tuple(hints.shape) != tuple(lum.shape):
        raise ValueError(f"hints placed on {hints.shape}, L {lum.shape}, ab {ab.shape[-2:]}: they must agree")
    lum = np.asarray(lum, np.float32)
    params = params or hints.params
    target = hints.ab / np.float32(scale)
    predicted = patch_means(out, hints)  # (n, 2)
    residual = target - predicted
    ahead = hints.weights is not None and params == hints.params  # computed with the same L and parameters
    weights = hints.weights if ahead else hint_weights(lum, hints, params)
    if params.sigma_chroma > 0:
        gated = chroma_gate(out, predicted, params.sigma_chroma)
        weights = np.multiply(gated, weights, out=gated)  # into the gate's array (``ahead`` is reused, unchanged)
    total = weights.sum(axis=0)
    np.maximum(total, np.float32(params.floor), out=total)
    for c in range(2):
        out[c] += np.tensordot(residual[:, c], weights, axes=1) / total
    for i, (y0, y1, x0, x1) in enumerate(zip(hints.y0, hints.y1, hints.x0, hints.x1, strict=True)):
        out[:, y0:y1, x0:x1] = target[i][:, None, None]
    return out

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
    """Relax ``dist`` (n, H, W) from each row to the next, down then up (costs between rows y and y + 1:
    ``vertical`` (H-1, W), ``down_right`` (H-1, W-1) for (y, x)->(y+1, x+1), ``down_left`` for (y, x+1)->(y+1, x))."""
    height = dist.shape[1]
    tmp = np.empty_like(dist[:, 0])
    for order in (range(1, height), range(height - 2, -1, -1)):
        for y in order:
            prev = y - 1 if order.step == 1 else y + 1
            k = min(y, prev)  # the cost rows between y and prev
            row, src = dist[:, y], dist[:, prev]
            np.add(src, vertical[k], out=tmp)
            np.minimum(row, tmp, out=row)
            if order.step == 1:  # from (y-1, x-1) and (y-1, x+1)
                np.minimum(row[:, 1:], src[:, :-1] + down_right[k], out=row[:, 1:])
                np.minimum(row[:, :-1], src[:, 1:] + down_left[k], out=row[:, :-1])
            else:  # from (y+1, x+1) (reverse of down_right) and (y+1, x-1) (reverse of down_left)
                np.minimum(row[:, :-1], src[:, 1:] + down_right[k], out=row[:, :-1])
                np.minimum(row[:, 1:], src[:, :-1] + down_left[k], out=row[:, 1:])


def _row_costs(lum: np.ndarray, step: float, edge: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vertical = step + edge * np.abs(lum[1:] - lum[:-1])
    diag = step * np.sqrt(2)
    down_right = diag + edge * np.abs(lum[1:, 1:] - lum[:-1, :-1])
    down_left = diag + edge * np.abs(lum[1:, :-1] - lum[:-1, 1:])
    return vertical.astype(np.float32), down_right.astype(np.float32), down_left.astype(np.float32)


def geodesic_distances(lum: np.ndarray, seeds_y: np.ndarray, seeds_x: np.ndarray, step: float, edge: float,
                       sweeps: int = 2) -> np.ndarray:
    """(n, H, W) float32 geodesic distance from each seed pixel over the grid ``lum`` (H, W): a step
    to a neighbour costs ``step`` (x sqrt 2 diagonally) + ``edge`` x |difference of lum|. Raster sweeps
    (down/up, then left/right) repeated ``sweeps`` times, vectorized across the hints."""
    n = len(seeds_y)
    height, width = lum.shape
    dist = np.full((n, height, width), np.float32(1e6), np.float32)
    dist[np.arange(n), seeds_y, seeds_x] = 0.0
    costs = _row_costs(lum, step, edge)
    costs_t = _row_costs(np.ascontiguousarray(lum.T), step, edge)
    for _ in range(sweeps):
        _sweep_rows(dist, *costs)
        dist_t = np.ascontiguousarray(dist.transpose(0, 2, 1))
        _sweep_rows(dist_t, *costs_t)
        dist = np.ascontiguousarray(dist_t.transpose(0, 2, 1))
    return dist


def _resize_stack(planes: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(n, h, w) -> (n, H, W) bilinear, in chunks of channels OpenCV accepts."""
    out = np.empty((planes.shape[0], *hw), np.float32)
    for i in range(0, planes.shape[0], 4):
        chunk = np.ascontiguousarray(planes[i : i + 4].transpose(1, 2, 0))
        resized = cv2.resize(chunk, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)
        out[i : i + 4] = resized.reshape(*hw, -1).transpose(2, 0, 1)
    return out


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
    h, w = lum.shape
    coarse, sy, sx = grid if grid is not None else geodesic_grid(lum, hints, params)
    gh, gw = coarse.shape
    # distances in units of the long side: a grid step is 1 / long side of the grid
    dist = geodesic_distances(coarse, sy, sx, 1.0 / max(gh, gw), params.edge_cost)
    if (gh, gw) != (h, w):
        dist = _resize_stack(dist, (h, w))
    return dist


def hint_weights(lum: np.ndarray, hints: RenderHints, params: SpreadParams = DEFAULT_PARAMS,
                 hint_l: np.ndarray | None = None, distances: np.ndarray | None = None) -> np.ndarray:
    """(n, h, w) float32 weight of each hint at each render pixel (1 at the hint itself); geodesic:
    ``distances`` (:func:`hint_distances`) computed ahead may be given (a film reuses them while
    nothing moves)."""
    h, w = lum.shape
    long_side = float(max(h, w))
    if hint_l is None:
        hint_l = patch_means(lum[None], hints)[:, 0]
    if params.method == "gaussian":
        yy = np.arange(h, dtype=np.float32)[None, :, None]
        xx = np.arange(w, dtype=np.float32)[None, None, :]
        cy, cx = hints.cy.astype(np.float32)[:, None, None], hints.cx.astype(np.float32)[:, None, None]
        dist2 = (yy - cy) ** 2 + (xx - cx) ** 2
        exponent = dist2 / np.float32(2 * (params.sigma_distance * long_side) ** 2)
    else:
        dist = hint_distances(lum, hints, params) if distances is None else distances
        exponent = dist * dist / np.float32(2 * params.sigma_distance ** 2)
    lightness = (lum[None] - hint_l.astype(np.float32)[:, None, None]) ** 2
    exponent += lightness / np.float32(2 * params.sigma_lightness ** 2)
    np.negative(exponent, out=exponent)
    return np.exp(exponent, out=exponent)


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
        weights = chroma_gate(out, predicted, params.sigma_chroma) * weights  # a new array (``ahead`` is reused)
    total = weights.sum(axis=0)
    np.maximum(total, np.float32(params.floor), out=total)
    for c in range(2):
        out[c] += np.tensordot(residual[:, c], weights, axes=1) / total
    for i, (y0, y1, x0, x1) in enumerate(zip(hints.y0, hints.y1, hints.x0, hints.x1, strict=True)):
        out[:, y0:y1, x0:x1] = target[i][:, None, None]
    return out

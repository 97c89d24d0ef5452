"""The hint preview and the viewer at scale: many hints, a large scan, a photo above 300 MP.

* The spread is the one it was (a copy of the former implementation, ``_former_*`` below, on random
  hints), each hint's weights do not depend on the others computed with it, and the preview computes
  at each edit only the weights of the hints the edit added or moved, with the run's result.
* The viewer reads a JPEG reduced while decoding (DCT scaling) with the orientation, gray and 16-bit
  handling of :func:`read_image`, in a fraction of the memory; hint mode decodes the photo whole, as
  the run does (its render grid's L must be the run's).
* The viewer and hint mode take photos up to the decoders' limit with the run's memory check, and a
  photo too large for it says why in the view.

Mechanisms are tested (equal results, work counted, memory traced), never a speed; figures:
``bench/bench_hint_preview.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import dataclasses  # noqa: E402
import tracemalloc  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

import colorizer.hint_guidance as guidance_module  # noqa: E402
import colorizer.hint_spread as spread_module  # noqa: E402
from colorizer.colorize import merge_color, predict_prepared  # noqa: E402
from colorizer.contract import HintInputs, ModelContract  # noqa: E402
from colorizer.desktop.media import image_read  # noqa: E402
from colorizer.desktop.media.errors import ImageReadError  # noqa: E402
from colorizer.desktop.media.image_read import DECODER_MAX_PIXELS, read_image  # noqa: E402
from colorizer.desktop.pipeline import hint_preview as preview_module  # noqa: E402
from colorizer.desktop.pipeline import stages  # noqa: E402
from colorizer.desktop.pipeline.hint_preview import HintPreview  # noqa: E402
from colorizer.desktop.pipeline.settings import ImageSettings  # noqa: E402
from colorizer.hint_spread import (  # noqa: E402
    SpreadParams,
    chroma_gate,
    geodesic_distances,
    hint_distances,
    hint_weights,
    patch_means,
    place_hints,
    spread_hints,
)
from colorizer.hints import HintPoint, PhotoHints  # noqa: E402


# ---------------------------------------------------------------------------- the former spread, copied
def _former_sweep_rows(dist, vertical, down_right, down_left):
    height = dist.shape[1]
    tmp = np.empty_like(dist[:, 0])
    for order in (range(1, height), range(height - 2, -1, -1)):
        for y in order:
            prev = y - 1 if order.step == 1 else y + 1
            k = min(y, prev)
            row, src = dist[:, y], dist[:, prev]
            np.add(src, vertical[k], out=tmp)
            np.minimum(row, tmp, out=row)
            if order.step == 1:
                np.minimum(row[:, 1:], src[:, :-1] + down_right[k], out=row[:, 1:])
                np.minimum(row[:, :-1], src[:, 1:] + down_left[k], out=row[:, :-1])
            else:
                np.minimum(row[:, :-1], src[:, 1:] + down_right[k], out=row[:, :-1])
                np.minimum(row[:, 1:], src[:, :-1] + down_left[k], out=row[:, 1:])


def _former_geodesic_distances(lum, seeds_y, seeds_x, step, edge, sweeps=2):
    n = len(seeds_y)
    height, width = lum.shape
    dist = np.full((n, height, width), np.float32(1e6), np.float32)
    dist[np.arange(n), seeds_y, seeds_x] = 0.0
    costs = spread_module._row_costs(lum, step, edge)
    costs_t = spread_module._row_costs(np.ascontiguousarray(lum.T), step, edge)
    for _ in range(sweeps):
        _former_sweep_rows(dist, *costs)
        dist_t = np.ascontiguousarray(dist.transpose(0, 2, 1))
        _former_sweep_rows(dist_t, *costs_t)
        dist = np.ascontiguousarray(dist_t.transpose(0, 2, 1))
    return dist


def _former_resize_stack(planes, hw):
    out = np.empty((planes.shape[0], *hw), np.float32)
    for i in range(0, planes.shape[0], 4):
        chunk = np.ascontiguousarray(planes[i : i + 4].transpose(1, 2, 0))
        resized = cv2.resize(chunk, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)
        out[i : i + 4] = resized.reshape(*hw, -1).transpose(2, 0, 1)
    return out


def _former_hint_distances(lum, hints, params):
    h, w = lum.shape
    coarse, sy, sx = spread_module.geodesic_grid(lum, hints, params)
    gh, gw = coarse.shape
    dist = _former_geodesic_distances(coarse, sy, sx, 1.0 / max(gh, gw), params.edge_cost)
    return _former_resize_stack(dist, (h, w)) if (gh, gw) != (h, w) else dist


def _former_hint_weights(lum, hints, params):
    h, w = lum.shape
    long_side = float(max(h, w))
    hint_l = patch_means(lum[None], hints)[:, 0]
    if params.method == "gaussian":
        yy = np.arange(h, dtype=np.float32)[None, :, None]
        xx = np.arange(w, dtype=np.float32)[None, None, :]
        cy, cx = hints.cy.astype(np.float32)[:, None, None], hints.cx.astype(np.float32)[:, None, None]
        dist2 = (yy - cy) ** 2 + (xx - cx) ** 2
        exponent = dist2 / np.float32(2 * (params.sigma_distance * long_side) ** 2)
    else:
        dist = _former_hint_distances(lum, hints, params)
        exponent = dist * dist / np.float32(2 * params.sigma_distance ** 2)
    lightness = (lum[None] - hint_l.astype(np.float32)[:, None, None]) ** 2
    exponent += lightness / np.float32(2 * params.sigma_lightness ** 2)
    np.negative(exponent, out=exponent)
    return np.exp(exponent, out=exponent)


def _former_spread_hints(ab, lum, hints, params, scale=1.0):
    out = np.array(ab, np.float32, copy=True)
    target = hints.ab / np.float32(scale)
    predicted = patch_means(out, hints)
    residual = target - predicted
    weights = _former_hint_weights(lum, hints, params)
    if params.sigma_chroma > 0:
        weights = chroma_gate(out, predicted, params.sigma_chroma) * weights
    total = weights.sum(axis=0)
    np.maximum(total, np.float32(params.floor), out=total)
    for c in range(2):
        out[c] += np.tensordot(residual[:, c], weights, axes=1) / total
    for i, (y0, y1, x0, x1) in enumerate(zip(hints.y0, hints.y1, hints.x0, hints.x1, strict=True)):
        out[:, y0:y1, x0:x1] = target[i][:, None, None]
    return out


# ---------------------------------------------------------------------------- helpers
COLORS = ("#b03a2e", "#3a6ea5", "#2e8b57", "#d4a017", "#6b3fa0")


def render_l(h: int = 72, w: int = 96, seed: int = 0) -> np.ndarray:
    """L at render size with smooth areas and a strong edge (the geodesic distance crosses it)."""
    rng = np.random.default_rng(seed)
    lum = cv2.GaussianBlur((rng.random((h, w)) * 60).astype(np.float32), (0, 0), 2)
    lum[:, w // 2 :] += 35
    return lum


def random_hints(rng: np.random.Generator, n: int, full_hw: tuple[int, int]) -> PhotoHints:
    height, width = full_hw
    return PhotoHints(tuple(HintPoint(float(rng.integers(0, width)), float(rng.integers(0, height)),
                                      COLORS[i % len(COLORS)], size=int(rng.integers(1, 40))) for i in range(n)))


def write_photo(path: Path, hw: tuple[int, int] = (300, 400), gray: bool = True, **save) -> Path:
    """A photo with smooth areas, an edge and texture, saved by Pillow (``save``: its options)."""
    h, w = hw
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    level = 60 + 80 * np.sin(x / w * 6) * np.cos(y / h * 4) + 70 * (x > w * 0.55)
    level += np.random.default_rng(1).normal(0, 3, (h, w))
    plane = np.clip(level, 0, 255).astype(np.uint8)
    pixels = plane if gray else np.dstack([plane, np.roll(plane, 7, axis=1), 255 - plane])
    Image.fromarray(pixels).save(path, **save)
    return path


def some_hints(hints, indices: list[int]):
    """The hints ``indices`` of ``hints`` (placed on the same grid)."""
    return dataclasses.replace(hints, y0=hints.y0[indices], y1=hints.y1[indices], x0=hints.x0[indices],
                               x1=hints.x1[indices], cy=hints.cy[indices], cx=hints.cx[indices],
                               ab=hints.ab[indices], weights=None)


@dataclass
class FakeBackend:
    """A deterministic model: ab from L, and from the guidance when its contract takes hints."""

    contract: ModelContract
    name: str = "fake"

    def predict(self, l_norm: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        ab = np.concatenate([l_norm * 0.3, np.sin(l_norm * 3) * 0.2], axis=1)
        if hints is not None:
            ab = ab + 0.6 * hints[:, :2] - 0.1 * hints[:, 2:3]
        return ab.astype(np.float32)


def plain_backend() -> FakeBackend:
    return FakeBackend(ModelContract(32, 96))


def hint_backend() -> FakeBackend:
    spread = dataclasses.asdict(SpreadParams())
    return FakeBackend(ModelContract(32, 96, hint_inputs=HintInputs(spread=spread, guided_share=0.65)))


# ---------------------------------------------------------------------------- 1. many hints
@pytest.mark.parametrize("method", ["geodesic", "gaussian"])
def test_the_spread_is_the_former_one_on_random_hints(method):
    """The faster spread (distances swept with the hints last, weights a few hints at a time) gives
    the former implementation's numbers: the preview and ``colorize-batch`` show what they showed."""
    params = SpreadParams(method=method)
    rng = np.random.default_rng(7)
    lum = render_l()
    ab = (rng.standard_normal((2, *lum.shape)) * 25).astype(np.float32)
    for n in (1, 3, 4, 6, 37):
        hints = place_hints(random_hints(rng, n, (900, 1200)), (900, 1200), lum.shape, params)
        np.testing.assert_allclose(hint_weights(lum, hints, params), _former_hint_weights(lum, hints, params),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(spread_hints(ab, lum, hints, params), _former_spread_hints(ab, lum, hints, params),
                                   rtol=1e-5, atol=1e-4)
        if method == "geodesic":
            coarse, sy, sx = spread_module.geodesic_grid(lum, hints, params)
            np.testing.assert_array_equal(geodesic_distances(coarse, sy, sx, 0.01, 0.002),
                                          _former_geodesic_distances(coarse, sy, sx, 0.01, 0.002))
            np.testing.assert_allclose(hint_distances(lum, hints, params), _former_hint_distances(lum, hints, params),
                                       rtol=1e-6, atol=1e-6)


def test_a_hint_s_weights_do_not_depend_on_the_hints_computed_with_it():
    """Each hint's weights are the same numbers whichever hints are computed with it (OpenCV resized
    the former last chunk of 2 hints' distances with other rounding than chunks of 4): what lets the
    preview compute only the hints an edit changed and still show exactly what the run writes."""
    params = SpreadParams()
    rng = np.random.default_rng(3)
    lum = render_l(90, 120)
    hints = place_hints(random_hints(rng, 6, (600, 800)), (600, 800), lum.shape, params)
    together = hint_weights(lum, hints, params)
    for i in range(len(hints)):
        alone = hint_weights(lum, some_hints(hints, [i]), params)
        np.testing.assert_array_equal(alone[0], together[i])
    np.testing.assert_array_equal(hint_weights(lum, some_hints(hints, [4, 5]), params),
                                  together[4:6])


def count_weights(monkeypatch) -> list[int]:
    """The number of hints whose weights are computed, call by call, wherever they are computed."""
    computed: list[int] = []
    real = spread_module.hint_weights

    def counting(lum, hints, *args, **kwargs):
        computed.append(len(hints))
        return real(lum, hints, *args, **kwargs)

    for module in (spread_module, guidance_module, preview_module):
        monkeypatch.setattr(module, "hint_weights", counting, raising=False)
    return computed


def run_render(preview: HintPreview, backend: FakeBackend, hints: PhotoHints) -> np.ndarray:
    """What the run computes for ``hints`` (every weight computed at once, as ``colorize-batch`` does),
    at the preview's screen size."""
    prepared = preview.prepared.with_hints(hints, preview.full_hw)
    ab = predict_prepared(backend, [prepared], unguided=preview.ab[None])[0]
    return merge_color(prepared, ab, preview.saturation, preview.upsampling, np.uint8)


@pytest.mark.parametrize("backend", [plain_backend(), hint_backend()], ids=["plain model", "hint model"])
def test_an_edit_computes_the_weights_of_the_hints_it_changed_only(backend, tmp_path, monkeypatch):
    """With 40 hints shown, a click (a 41st), a move and an undo compute one hint's weights each (the
    former preview computed all of them at each edit, twice for a hint model: its guidance and the
    spread), and each preview is exactly what the run computes for those hints."""
    photo = write_photo(tmp_path / "scan.png", (300, 400))
    preview = HintPreview.open(photo, backend, ImageSettings(render_size=96), max_side=200)
    rng = np.random.default_rng(5)
    shown = random_hints(rng, 40, preview.full_hw).points
    preview.render(PhotoHints(shown))
    computed = count_weights(monkeypatch)
    click = PhotoHints(shown + (HintPoint(350, 120, "#2e8b57"),))
    moved = PhotoHints(shown[:7] + (dataclasses.replace(shown[7], x=12, y=250),) + shown[8:])
    for hints in (click, moved, PhotoHints(shown)):  # the click, a move of point 7, the undo of the move
        computed.clear()
        rgb = preview.render(hints)
        assert computed == [1]
        np.testing.assert_array_equal(rgb, run_render(preview, backend, hints))


# ---------------------------------------------------------------------------- 2. a large scan, shown
def test_a_jpeg_is_shown_from_a_reduced_decode_upright_and_gray(tmp_path, monkeypatch):
    """read_image_for_display decodes a JPEG at a DCT scale (Pillow's draft) near the screen size: the
    upright picture (EXIF orientation 6) at a quarter of the size, gray kept one plane, the same
    picture as read_image's reduced, its metadata read_image's."""
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 1600 wide, shown rotated: 1200 wide, 1600 high
    path = write_photo(tmp_path / "scan.jpg", (1200, 1600), quality=92, exif=exif.tobytes())
    drafts = []
    real_draft = image_read.JpegImagePlugin.JpegImageFile.draft
    monkeypatch.setattr(image_read.JpegImagePlugin.JpegImageFile, "draft",
                        lambda im, mode, size: drafts.append(size) or real_draft(im, mode, size))
    shown = image_read.read_image_for_display(path, 400)
    assert drafts == [(400, 300)]  # the stored picture's size reduced to a long side of 400
    full = read_image(path)
    assert full.pixels.shape == (1600, 1200) and shown.pixels.shape == (400, 300)  # upright, 1/4
    assert shown.pixels.dtype == np.uint8 and not shown.is_color and shown.format == "JPEG"
    assert shown.metadata.exif == full.metadata.exif
    reduced = cv2.resize(full.pixels, (300, 400), interpolation=cv2.INTER_AREA)
    assert np.abs(shown.pixels.astype(int) - reduced.astype(int)).mean() < 3  # the same picture
    assert image_read.read_image_for_display(path, 5000).pixels.shape == (1600, 1200)  # never enlarged: decoded whole


def test_other_formats_are_shown_as_read_image_reads_them(tmp_path):
    """A 16-bit PNG and a color PNG: decoded whole, exactly read_image's pixels (16 bits kept)."""
    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), (np.random.default_rng(0).random((60, 80, 3)) * 65535).astype(np.uint16))
    color = write_photo(tmp_path / "color.png", (60, 80), gray=False)
    for path in (deep, color):
        shown, full = image_read.read_image_for_display(path, 20), read_image(path)
        assert shown.pixels.dtype == full.pixels.dtype and shown.is_color == full.is_color
        np.testing.assert_array_equal(shown.pixels, full.pixels)
    with pytest.raises(ValueError):
        image_read.read_image_for_display(color, 0)


def test_the_viewer_shows_a_large_jpeg_without_decoding_it_whole(tmp_path):
    """The viewer's load of a 12 MP gray JPEG for a 750-pixel view takes a small part of the memory
    its pixels would (the former viewer decoded all 12 MB and made 36 MB of RGB of them)."""
    from colorizer.desktop.app.preview import load_preview

    path = write_photo(tmp_path / "scan.jpg", (3000, 4000), quality=85)
    tracemalloc.start()
    try:
        image = load_preview(path, 750)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (image.width(), image.height()) == (750, 562)
    assert peak < 3000 * 4000 / 2, f"{peak / 1e6:.1f} MB traced at the peak"


def test_hint_mode_decodes_the_photo_whole_as_the_run_does(tmp_path):
    """Hint mode's preview reads the photo whole (a reduced decode would give another L at render
    size): its render grid's L is the run's, bit for bit, for a JPEG too."""
    path = write_photo(tmp_path / "scan.jpg", (900, 1200), quality=90)
    preview = HintPreview.open(path, plain_backend(), ImageSettings(render_size=96), max_side=300)
    run, _ = stages.prepare_photo(read_image(path), ImageSettings(render_size=96), 96, 32)
    assert preview.full_hw == (900, 1200)
    np.testing.assert_array_equal(preview.prepared.l_small, run.l_small)
    np.testing.assert_array_equal(preview.prepared.model_input, run.model_input)


# ---------------------------------------------------------------------------- 3. above 300 MP
def decode_limits(monkeypatch) -> list[tuple]:
    """(max_pixels, admit) of every decode, whichever reader asked for it."""
    seen: list[tuple] = []
    real = image_read._decode
    monkeypatch.setattr(image_read, "_decode",
                        lambda data, fmt, max_pixels, admit, *rest: seen.append((max_pixels, admit))
                        or real(data, fmt, max_pixels, admit, *rest))
    return seen


def test_the_viewer_and_hint_mode_take_what_a_run_takes(tmp_path, monkeypatch):
    """The viewer and hint mode read up to the decoders' limit with the run's memory check (they
    refused photos over 300 MP that a run colorizes)."""
    from colorizer.desktop.app.preview import load_preview

    path = write_photo(tmp_path / "scan.jpg", (120, 160), quality=90)
    seen = decode_limits(monkeypatch)
    load_preview(path)
    HintPreview.open(path, plain_backend(), ImageSettings(render_size=96))
    assert [max_pixels for max_pixels, _ in seen] == [DECODER_MAX_PIXELS, DECODER_MAX_PIXELS]
    assert all(admit is not None for _, admit in seen)


def test_a_photo_too_large_for_the_memory_says_why_in_the_view(qtbot, tmp_path, monkeypatch):
    """A photo whose header declares more than a photo may take is refused before it is decoded, with
    the run's reason, shown in the view; hint mode's preview is refused the same way."""
    from colorizer.desktop.app.queue_model import QueueItem
    from colorizer.desktop.app.viewer import ItemViewer
    from colorizer.desktop.core import TaskKind

    path = write_photo(tmp_path / "scan.png", (120, 160))
    monkeypatch.setattr(stages, "memory_limit", lambda settings: 100_000)  # 19 200 px x 16 B = 307 kB needed
    viewer = ItemViewer()
    messages = []
    viewer.preview.ready.connect(lambda before, after, message: messages.append(message))
    viewer.show(QueueItem(source=path, kind=TaskKind.IMAGE))
    qtbot.waitUntil(lambda: bool(messages), timeout=10_000)
    assert "160x120" in messages[0] and "needs about" in messages[0] and "may take" in messages[0]
    assert "needs about" in viewer.compare.view._message
    with pytest.raises(ImageReadError, match="needs about"):
        HintPreview.open(path, plain_backend(), ImageSettings(render_size=96))

"""A photo's live color-hint preview (Qt-free; the app calls it off its GUI thread).

    preview = HintPreview.open(source, backend, settings)  # decode + prepare + predict: once per photo
    rgb = preview.render(hints)                            # spread + a screen-size merge: each edit

The photo is decoded and prepared exactly as a run does it (:func:`stages.prepare_photo`, with the
run's :class:`ImageSettings` and the backend's contract), so the render grid, the model's input and
the predicted ab at render size are the run's. Each edit places the hints on that grid
(:meth:`Prepared.with_hints`) and merges the color with :func:`colorizer.colorize.merge_color`: the
hints are spread over the kept prediction by the same :func:`colorizer.colorize.color_planes` a run
uses, and only the last step, merging the color with L, works on L reduced to screen size. What Start (or
``colorize-batch``) writes from the same sidecar is this preview at full resolution.

The cost of an edit does not depend on the photo's size: the spread is at render size and the
merge at screen size (``bench/bench_hint_preview.py`` measures it). Nor does it grow much with the
number of hints: each hint's spread weights depend only on the photo and on where the hint sits, so
they are kept from one edit to the next (:class:`HintWeights`) and an edit computes those of the
hints it added or moved only; the spread and a hint model's guidance take them from there. A model
with hint inputs is predicted again at each edit with the hints' guidance (:func:`colorizer.colorize.predict_prepared`,
as a run gives it; its prediction without hints, which the run mixes in, is the one made at open), so
its preview costs one model call per edit.

A film's frame (issue #22) the same way: :meth:`HintPreview.open_frame` decodes frame ``index`` of a
video or frame folder as the colorizing pass does (the same frame format: a planar video's luma, or
RGB), predicts it once, and each render spreads the frame's hints with the film's spread
(:class:`.hint_tracking.FilmSpread`, the decode thread's). What Start writes for that frame is this
preview, except for the temporal smoothing of the predicted ab across neighbouring frames (the
preview sees one frame). :func:`film_hint_plan` tracks a film's key-frame points with the run's
own first pass (the same decoding, scene cuts and tracker), for the app to show where they go.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from colorizer.colorize import Prepared, hint_contract, merge_color, predict_prepared
from colorizer.desktop.core import CancelToken, TaskKind
from colorizer.desktop.media.image_read import read_image
from colorizer.desktop.pipeline import stages
from colorizer.desktop.pipeline.hint_tracking import FilmSpread, HintPlan
from colorizer.desktop.pipeline.settings import ImageSettings, VideoSettings
from colorizer.hint_spread import RenderHints, hint_weights
from colorizer.hints import FilmHints, HintsError, PhotoHints

SCREEN_SIDE = 1600
"""Long side (pixels) of the preview: about a screen; the photo's own size when it is smaller."""


def screen_hw(height: int, width: int, max_side: int) -> tuple[int, int]:
    f = min(1.0, max_side / max(height, width))
    return max(1, round(height * f)), max(1, round(width * f))


@dataclass
class HintPreview:
    """One photo's prediction at render size, kept, and L at screen size to merge its color with."""

    source: Path
    full_hw: tuple[int, int]  # the upright photo's (height, width): the hints' pixels
    prepared: Prepared  # the run's render grid and model input, with L at screen size
    ab: np.ndarray  # the model's (2, h, w) normalized ab for prepared.model_input
    saturation: float = 1.0
    upsampling: str = "guided"
    timings: dict = field(default_factory=dict)  # seconds: decode, prepare, predict
    frame: int | None = None  # a film's frame (None: a photo)
    spread: FilmSpread | None = None  # a film frame's spread (None: a photo's)
    contract: object = None  # the backend's contract (a film's tracking needs its render size and multiple)
    predictor: object = None  # a model with hint inputs: predicts again with each edit's guidance (None: spread)
    weights: HintWeights = field(default_factory=lambda: HintWeights(), repr=False)  # a photo's, kept between edits

    @classmethod
    def open(cls, source: Path | str, backend, settings: ImageSettings | None = None,
             max_side: int = SCREEN_SIDE) -> HintPreview:
        """Decode ``source``, prepare it as a run with ``settings`` on ``backend`` does and predict its
        color once (``backend``: anything with ``contract`` and ``predict``, e.g. ``open_backend()``).
        The photo is decoded whole, as the run decodes it (the render grid's L is the run's; a JPEG
        decoded at a reduced size would give another), up to the size a run takes: the decoders'
        limit, and the memory a photo may take (:func:`stages.photo_limits`, before decoding).
        Raises what :func:`read_image` raises for a file that cannot be read or is too large."""
        settings = settings or ImageSettings()
        source = Path(source)
        t0 = time.perf_counter()
        image = read_image(source, **stages.photo_limits(source, settings))
        t1 = time.perf_counter()
        render_size = settings.render_size or backend.contract.render_size
        prepared, _luma = stages.prepare_photo(image, settings, render_size, backend.contract.size_multiple)
        full_hw = (image.height, image.width)
        del image
        return cls._predicted(source, full_hw, prepared, backend, settings, max_side, t0, t1)

    @classmethod
    def open_frame(cls, source: Path | str, kind: TaskKind, index: int, backend,
                   settings: VideoSettings | None = None, max_side: int = SCREEN_SIDE) -> HintPreview:
        """Frame ``index`` (from 0) of the video or frame folder ``source``, decoded and prepared as
        the colorizing pass does with ``settings`` on ``backend``, predicted once."""
        settings = settings or VideoSettings()
        source = Path(source)
        render_size = settings.render_size or backend.contract.render_size
        t0 = time.perf_counter()
        picture, frame_format = _film_picture(source, kind, index, settings)
        t1 = time.perf_counter()
        from colorizer.desktop.pipeline.frame_formats import picture_hw

        full_hw = picture_hw(picture)
        prepared = frame_format.prepare(picture, render_size, backend.contract.size_multiple)
        del picture
        return cls._predicted(source, full_hw, prepared, backend, settings, max_side, t0, t1, frame=index,
                              spread=FilmSpread())

    @classmethod
    def _predicted(cls, source: Path, full_hw: tuple[int, int], prepared: Prepared, backend,
                   settings: ImageSettings | VideoSettings, max_side: int, t0: float, t1: float,
                   **film) -> HintPreview:
        """The second half of :meth:`open` and :meth:`open_frame`: L at screen size (the L the color is
        merged with; a gray JPEG's or a film's luma route's is at its chroma resolution), one prediction."""
        sh, sw = screen_hw(*full_hw, max_side)
        l_merge = prepared.l_merge
        if l_merge.shape != (sh, sw):
            l_merge = cv2.resize(l_merge, (sw, sh), interpolation=cv2.INTER_AREA)
        prepared = replace(prepared, l_merge=np.ascontiguousarray(l_merge, np.float32))
        t2 = time.perf_counter()
        ab = np.asarray(predict_prepared(backend, [prepared])[0], np.float32)
        t3 = time.perf_counter()
        return cls(source, full_hw, prepared, ab, settings.saturation, settings.upsampling,
                   {"decode_s": t1 - t0, "prepare_s": t2 - t1, "predict_s": t3 - t2}, contract=backend.contract,
                   predictor=backend if hint_contract(backend) is not None else None, **film)

    @property
    def screen_hw(self) -> tuple[int, int]:
        return self.prepared.l_merge.shape

    def render(self, hints: PhotoHints | None) -> np.ndarray:
        """The colorized photo with ``hints`` (upright photo pixels) at screen size: (h, w, 3) uint8
        RGB. HintsError when a point lies outside the photo."""
        if self.spread is not None:
            prepared = self.spread.prepare(self.prepared, hints, self.full_hw)
        else:
            prepared = self.weights.attach(self.prepared.with_hints(hints, self.full_hw))
        ab = self.ab
        if self.predictor is not None and prepared.hints is not None:  # as a run gives a hint model its hints
            # (its prediction without them is the one made at open: predicted once, not at each edit)
            ab = np.asarray(predict_prepared(self.predictor, [prepared], unguided=self.ab[None])[0], np.float32)
        return merge_color(prepared, ab, self.saturation, self.upsampling, np.uint8)


class HintWeights:
    """The spread weights of a photo's hints (:func:`colorizer.hint_spread.hint_weights`), kept from one
    edit to the next. A hint's weights depend only on the photo's L at render size and on where the
    hint sits on the render grid (its patch and center), never on the other hints, so an edit computes
    those of the hints it added or moved only and takes the others from the last edit: the same
    numbers the run computes for all of them at once (``tests/test_preview_scale.py`` checks it). The
    weights kept are those of the last edit's hints (at most :data:`colorizer.hints.MAX_POINTS`)."""

    def __init__(self) -> None:
        self._index: dict[tuple, int] = {}  # a hint's place -> its plane in _weights
        self._weights: np.ndarray | None = None  # (n, h, w) of the last edit
        self._params = None

    def attach(self, prepared: Prepared) -> Prepared:
        """``prepared`` with its hints' weights computed ahead (:attr:`RenderHints.weights`, which the
        spread and a hint model's guidance take as they are); itself when it has no hints."""
        placed = prepared.hints
        if placed is None or len(placed) == 0:
            return prepared
        lum = np.asarray(prepared.l_render(prepared.render_hw), np.float32)  # the L the run's spread uses
        if placed.params != self._params or self._weights is None or self._weights.shape[1:] != lum.shape:
            self._index, self._weights, self._params = {}, None, placed.params
        places = [_place(placed, i) for i in range(len(placed))]
        new = [i for i, place in enumerate(places) if place not in self._index]
        weights = np.empty((len(placed), *lum.shape), np.float32)
        for i, place in enumerate(places):
            if place in self._index:  # plane by plane: no temporary of all the kept ones
                weights[i] = self._weights[self._index[place]]
        if new:
            weights[new] = hint_weights(lum, _some_hints(placed, new), placed.params)
        self._index = {place: i for i, place in enumerate(places)}
        self._weights = weights
        return replace(prepared, hints=replace(placed, weights=weights))

    def clear(self) -> None:
        """Keep nothing (the photo is not shown any more: its next edit computes every hint)."""
        self._index, self._weights = {}, None


def _place(hints: RenderHints, i: int) -> tuple:
    """What hint ``i``'s weights depend on besides the photo: its patch and its center on the grid."""
    return (int(hints.y0[i]), int(hints.y1[i]), int(hints.x0[i]), int(hints.x1[i]),
            float(hints.cy[i]), float(hints.cx[i]))


def _some_hints(hints: RenderHints, indices: list[int]) -> RenderHints:
    """The hints ``indices`` of ``hints`` (placed on the same grid), without weights."""
    return replace(hints, y0=hints.y0[indices], y1=hints.y1[indices], x0=hints.x0[indices], x1=hints.x1[indices],
                   cy=hints.cy[indices], cx=hints.cx[indices], ab=hints.ab[indices], weights=None)


def _film_picture(source: Path, kind: TaskKind, index: int, settings: VideoSettings):
    """Frame ``index`` of a film as its colorizing pass decodes it, and that pass's frame format."""
    from colorizer.desktop.pipeline.frame_formats import LumaFrames, RgbFrames

    if kind == TaskKind.FRAMES:
        frames = _sequence(source).frames
        if not 0 <= index < len(frames):
            raise HintsError(f"{source}: no frame {index} (it has {len(frames)})")
        return read_image(frames[index]).pixels, RgbFrames()  # a gray frame stays one plane, as in a run
    from colorizer.desktop.media.video_source import VideoSource
    from colorizer.desktop.pipeline import video

    if index > 0:  # deep in a long film: a seek, not decoding every frame before it
        with VideoSource(source) as film:
            luma = video._luma_route(film, settings)
            picture = film.picture_at(index, luma)
            if picture is not None:
                return picture, (LumaFrames(None) if luma else RgbFrames())
    with VideoSource(source) as film:
        luma = video._luma_route(film, settings)
        frames = film.frames(lambda packet: None, luma)
        n = -1
        try:
            for n, (_, picture) in enumerate(frames):
                if n == index:
                    return picture, (LumaFrames(None) if luma else RgbFrames())
        finally:
            frames.close()
    raise HintsError(f"{source}: no frame {index} (it has {n + 1})")


def _sequence(folder: Path):
    from colorizer.desktop.pipeline.frames import find_frame_sequences

    sequences = find_frame_sequences(folder)
    if len(sequences) != 1:
        raise HintsError(f"{folder}: not one sequence of numbered frames")
    return sequences[0]


@dataclass(frozen=True)
class _TrackingBackend:
    """What the first pass asks of a backend: its contract (render size, size multiple)."""

    contract: object


def film_hint_plan(source: Path | str, kind: TaskKind, hints: FilmHints, contract,
                   settings: VideoSettings | None = None, cancel: CancelToken | None = None) -> HintPlan:
    """The key-frame points of ``hints`` tracked through the film ``source`` by the colorizing run's
    own first pass (:func:`.video._video_hint_plan`, :func:`.frames._sequence_hint_plan`) with
    ``settings`` and a backend of ``contract``. HintsError as a run raises it."""
    from colorizer.desktop.pipeline import frames as frames_pipeline
    from colorizer.desktop.pipeline import video

    settings = settings or VideoSettings()
    cancel = cancel or CancelToken()
    backend = _TrackingBackend(contract)
    source = Path(source)
    if kind == TaskKind.FRAMES:
        return frames_pipeline._sequence_hint_plan(_sequence(source), hints, backend, settings, cancel)
    from colorizer.desktop.media.video_source import VideoSource

    with VideoSource(source) as film:
        return video._video_hint_plan(film, hints, backend, settings, cancel)

"""Hint mode: the user puts color hints on a photo in the before/after view and sees the result at once.

* :class:`HintEditor` (the window's ``hints``): the "Hints" toggle (H), the hint bar (the color,
  recent colors, a reference photo to pick colors from, remove all, undo/redo), the points of the
  selected photo and their :class:`QUndoStack`. Every change is saved to the photo's sidecar
  (:func:`colorizer.hints.write_hints` to :func:`colorizer.hints.sidecar_path`, beside the photo),
  where Start and ``colorize-batch`` read it. When it cannot be written (a read-only folder) the
  status bar says so, the row says "not saved" and the points stay in the window (Save hints
  tries again); nothing is dropped silently. A sidecar changed by another program while it is shown
  is never overwritten: the next edit (or undo) reads it again instead, and says so.
* :class:`HintPreviewer`: the live preview off the GUI thread, through the Qt-free
  :class:`~colorizer.desktop.pipeline.hint_preview.HintPreview` (the photo's prediction at render
  size with the run's backend and settings, made once; each edit: the spread and a screen-size
  finish). Edits made while one renders are merged: only the latest is rendered next.
* :class:`ReferenceDialog`: a color photo opened beside (of the same place, the same uniform); a
  click on it picks the color there (an eyedropper).

Films (issue #22): on a video's or frame folder's row hint mode works on the slider's frame. Points
are put on that frame (pixels of the upright frame), which becomes a key frame, marked on the slider;
the film's sidecar (``reel.mp4.hints.json``; a frame folder's ``<folder>.hints.json`` beside it)
holds every key frame. :class:`HintTracker` tracks the points through their shots off the GUI
thread with the run's own first pass (:func:`~colorizer.desktop.pipeline.hint_preview.film_hint_plan`;
the plans are cached per film and hints), and the view draws, on every frame, where they are
(hollow markers: read-only; the key frame's own points are the editable ones). The preview is of the
slider's frame with the hints the run gives it (:meth:`HintPreview.open_frame`), without the run's
temporal smoothing. Undo, redo, delete and move work as for photos; an undo on another frame goes
back to that frame.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, QSettings, Qt, QThreadPool, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QImage, QKeySequence, QPainter, QPixmap, QUndoCommand, QUndoStack
from PySide6.QtWidgets import (
    QColorDialog,
    QDialog,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from colorizer.desktop.app.compare_view import ComparePanel, ElidedLabel
from colorizer.desktop.app.preview import array_to_qimage
from colorizer.desktop.app.queue_model import DONE, QUEUED, SKIPPED, WAITING, WORKING, QueueItem, QueueModel
from colorizer.desktop.app.settings import AppSettings
from colorizer.desktop.core import Cancelled, CancelToken, TaskKind
from colorizer.desktop.pipeline import stages
from colorizer.desktop.pipeline.hint_preview import HintPreview, film_hint_plan
from colorizer.desktop.pipeline.hint_tracking import HintPlan, read_film_hints
from colorizer.fileio import to_uint8
from colorizer.hints import (
    MAX_FILM_POINTS,
    MAX_POINTS,
    FilmHints,
    FrameHints,
    HintPoint,
    HintsError,
    PhotoHints,
    hex_color,
    sidecar_path,
    write_hints,
)

log = logging.getLogger(__name__)

DEFAULT_COLOR = "#b03a2e"
_RECENT_KEY = "hints/recent_colors"
MAX_RECENT = 8
FILM_KINDS = (TaskKind.VIDEO, TaskKind.FRAMES)
PHOTO_TIP = "Hint mode: put color hints on the photo (H)"
FILM_TIP = ("Hint mode: put color hints on the slider's frame (H); it becomes a key frame and its points are "
            "tracked through the shot")
PICK_RADIUS = 2  # the eyedropper averages (2 r + 1)^2 pixels of the reference photo
REFERENCE_SIDE = 2000  # long side (pixels) the reference photo is shown and picked from at most


def file_signature(path: Path) -> tuple | None:
    """What tells one version of a file from another (sidecars are replaced atomically: a new inode
    each time); None: no file there."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def swatch(color: str, size: int = 18) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(color))
    p = QPainter(pixmap)
    p.setPen(QColor(0, 0, 0, 160))
    p.drawRect(0, 0, size - 1, size - 1)
    p.end()
    return QIcon(pixmap)


# ---------------------------------------------------------------------------- the preview, off the GUI thread
class _Signals(QObject):
    opened = Signal(int, object, str)  # generation, HintPreview or None, error
    rendered = Signal(int, object, str, float)  # generation, QImage or None, error, seconds


class HintPreviewer(QObject):
    """``open(source, settings)`` then ``render(hints)`` as often as wanted; ``opened`` and
    ``rendered`` come back on the GUI thread, for the photo opened last only."""

    opened = Signal(object, str)  # HintPreview or None, error
    rendered = Signal(object, str, float)  # QImage or None, error, seconds from the request

    def __init__(self, open_backend=None, choose_backend: Callable[[str], str] | None = None, parent=None,
                 cache_size: int = 4) -> None:
        super().__init__(parent)
        self._open_backend = open_backend
        self._choose_backend = choose_backend
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # one after the other: the backend and the previews are this thread's
        self._signals = _Signals()
        self._signals.opened.connect(self._deliver_opened)
        self._signals.rendered.connect(self._deliver_rendered)
        self._lock = threading.Lock()
        self._generation = 0
        self._pending: tuple | None = None
        self._rendering = False
        self._backend = None
        self._backend_key = None
        self._cache: OrderedDict[tuple, HintPreview] = OrderedDict()
        self._cache_size = cache_size
        self.preview: HintPreview | None = None

    def open(self, source: Path, settings: AppSettings, kind: TaskKind = TaskKind.IMAGE, frame: int = 0) -> None:
        """Prepare the preview of a photo, or of frame ``frame`` of a film (``kind``)."""
        self._generation += 1
        self.preview = None
        generation = self._generation
        self._pool.start(lambda: self._open(generation, Path(source), settings, kind, frame))

    def forget(self) -> None:
        """Whatever is in flight is not wanted any more."""
        self._generation += 1
        self.preview = None

    def render(self, hints: PhotoHints) -> None:
        if self.preview is None:
            return
        with self._lock:
            self._pending = (self._generation, self.preview, hints, time.perf_counter())
            if self._rendering:
                return
            self._rendering = True
        self._pool.start(self._render_loop)

    def wait(self) -> None:
        self._pool.waitForDone()

    def close(self) -> None:
        self.forget()
        self._pool.waitForDone()
        self._close_backend()
        self._cache.clear()

    # ------------------------------------------------------------------ the pool's thread
    @staticmethod
    def _backend_key_of(s: AppSettings) -> tuple:
        return (s.model, s.backend, s.gpu, s.render_size)

    def _close_backend(self) -> None:
        if self._backend is not None:
            try:
                self._backend.close()
            except Exception:
                log.info("closing the preview backend failed", exc_info=True)
            self._backend = self._backend_key = None

    def _backend_for(self, s: AppSettings):
        key = self._backend_key_of(s)
        if self._backend is None or self._backend_key != key:
            self._close_backend()
            self._cache.clear()
            from colorizer.desktop import backends

            opener = self._open_backend or backends.open_backend
            choice = self._choose_backend(s.backend) if self._choose_backend else s.backend
            self._backend = opener(s.model_path, choice, device=s.gpu, render_size=s.render_size or None)
            self._backend_key = key
        return self._backend

    def _open(self, generation: int, source: Path, settings: AppSettings, kind: TaskKind, frame: int) -> None:
        if generation != self._generation:
            return
        try:
            backend = self._backend_for(settings)
            stat = source.stat()
            if kind in FILM_KINDS:
                video_settings = settings.video_settings()
                key = (str(source), stat.st_mtime_ns, stat.st_size, frame, video_settings)
            else:
                image_settings = settings.image_settings()
                key = (str(source), stat.st_mtime_ns, stat.st_size, image_settings.saturation,
                       image_settings.output_format, image_settings.render_size)
            preview = self._cache.get(key)
            if preview is None:
                if kind in FILM_KINDS:
                    preview = HintPreview.open_frame(source, kind, frame, backend, video_settings)
                else:
                    preview = HintPreview.open(source, backend, image_settings)
                self._cache[key] = preview
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            self._cache.move_to_end(key)
            for other in self._cache.values():  # the weights kept between edits: the shown photo's only
                if other is not preview:
                    other.weights.clear()
            self._signals.opened.emit(generation, preview, "")
        except Exception as exc:  # a model that cannot open, a photo that cannot be read: said, never raised
            log.info("hint preview of %s failed", source, exc_info=True)
            self._signals.opened.emit(generation, None, f"no preview of {source.name}: {exc}")

    def _render_loop(self) -> None:
        while True:
            with self._lock:
                job, self._pending = self._pending, None
                if job is None:
                    self._rendering = False
                    return
            generation, preview, hints, asked = job
            image, error = None, ""
            try:
                image = array_to_qimage(preview.render(hints))
            except HintsError as exc:
                error = str(exc)
            except Exception as exc:
                log.info("hint preview render failed", exc_info=True)
                error = f"the preview failed: {exc}"
            self._signals.rendered.emit(generation, image, error, time.perf_counter() - asked)

    # ------------------------------------------------------------------ back on the GUI thread
    def _deliver_opened(self, generation: int, preview, error: str) -> None:
        if generation == self._generation:
            self.preview = preview
            self.opened.emit(preview, error)

    def _deliver_rendered(self, generation: int, image, error: str, seconds: float) -> None:
        if generation == self._generation:
            self.rendered.emit(image, error, seconds)


# ------------------------------------------------------------------------ a film's points tracked, off the GUI thread
class _TrackSignals(QObject):
    tracked = Signal(int, object, str)  # generation, HintPlan or None, error


class HintTracker(QObject):
    """``request(source, kind, hints, contract, settings)``: the film's key-frame points tracked through
    their shots by the run's own first pass, on a pool thread; ``tracked(plan, error)`` comes back on
    the GUI thread for the latest request only (an older one in flight is cancelled). Plans are cached
    per film, hints and settings: going back to hints seen before costs nothing."""

    tracked = Signal(object, str)  # HintPlan or None, error

    def __init__(self, parent=None, cache_size: int = 8) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _TrackSignals()
        self._signals.tracked.connect(self._deliver)
        self._generation = 0
        self._cancel = CancelToken()
        self._cache: OrderedDict[tuple, HintPlan] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def request(self, source: Path, kind: TaskKind, hints: FilmHints, contract, settings: AppSettings) -> None:
        self.forget()
        generation = self._generation
        cancel = self._cancel
        video_settings = settings.video_settings()
        try:
            stat = Path(source).stat()
        except OSError as exc:  # the film was removed or renamed since its row was shown: said, never raised
            self._signals.tracked.emit(generation, None,
                                       f"cannot track the hints of {Path(source).name}: {exc.strerror or exc}")
            return
        key = (str(source), stat.st_mtime_ns, stat.st_size, hints.digest(), contract.render_size,
               contract.size_multiple, video_settings)
        with self._lock:
            plan = self._cache.get(key)
        if plan is not None:
            self._signals.tracked.emit(generation, plan, "")
            return
        self._pool.start(lambda: self._track(generation, cancel, key, Path(source), kind, hints, contract,
                                             video_settings))

    def forget(self) -> None:
        self._generation += 1
        self._cancel.cancel()
        self._cancel = CancelToken()

    def wait(self) -> None:
        self._pool.waitForDone()

    def close(self) -> None:
        self.forget()
        self._pool.waitForDone()

    def _track(self, generation: int, cancel: CancelToken, key: tuple, source: Path, kind: TaskKind,
               hints: FilmHints, contract, settings) -> None:
        if generation != self._generation:
            return
        try:
            plan = film_hint_plan(source, kind, hints, contract, settings, cancel)
        except Cancelled:
            return
        except HintsError as exc:
            self._signals.tracked.emit(generation, None, str(exc))
            return
        except Exception as exc:  # a film that cannot be decoded: said, never raised
            log.info("tracking the hints of %s failed", source, exc_info=True)
            self._signals.tracked.emit(generation, None, f"cannot track the hints of {source.name}: {exc}")
            return
        with self._lock:
            self._cache[key] = plan
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._signals.tracked.emit(generation, plan, "")

    def _deliver(self, generation: int, plan, error: str) -> None:
        if generation == self._generation:
            self.tracked.emit(plan, error)


# ---------------------------------------------------------------------------- the eyedropper's reference photo
class ReferencePane(QWidget):
    """A color photo, fitted; a click picks the color under the pointer (``picked``: "#rrggbb")."""

    picked = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rgb: np.ndarray | None = None
        self._image: QImage | None = None
        self.setMinimumSize(320, 240)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_rgb(self, rgb: np.ndarray | None) -> None:
        self.rgb = None if rgb is None else np.ascontiguousarray(to_uint8(rgb))
        self._image = None if rgb is None else array_to_qimage(self.rgb)
        self.update()

    def image_rect(self) -> QRectF:
        if self._image is None:
            return QRectF()
        iw, ih = self._image.width(), self._image.height()
        f = min(self.width() / iw, self.height() / ih)
        return QRectF((self.width() - iw * f) / 2, (self.height() - ih * f) / 2, iw * f, ih * f)

    def color_at(self, pos: QPointF) -> str | None:
        r = self.image_rect()
        if self.rgb is None or not r.contains(pos):
            return None
        h, w = self.rgb.shape[:2]
        x = min(w - 1, int((pos.x() - r.x()) * w / r.width()))
        y = min(h - 1, int((pos.y() - r.y()) * h / r.height()))
        patch = self.rgb[max(0, y - PICK_RADIUS) : y + PICK_RADIUS + 1, max(0, x - PICK_RADIUS) : x + PICK_RADIUS + 1]
        return hex_color(patch.reshape(-1, 3).mean(axis=0) / 255.0)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(38, 38, 40))
        if self._image is None:
            p.setPen(QColor(170, 170, 170))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       "Open a color photo of the same place or the same clothes,\nthen click on it to pick a color.")
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(self.image_rect(), self._image)

    def mousePressEvent(self, event) -> None:
        color = self.color_at(event.position())
        if color is not None:
            self.picked.emit(color)


class ReferenceDialog(QDialog):
    """A window beside the main one: a reference color photo to pick hint colors from."""

    picked = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Reference photo: click to pick a hint color")
        self.setModal(False)
        self.pane = ReferencePane()
        self.pane.picked.connect(self._picked)
        self.open_button = QPushButton("Open a color photo…")
        self.open_button.clicked.connect(self.choose)
        self.status = QLabel("")
        bar = QHBoxLayout()
        bar.addWidget(self.open_button)
        bar.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.pane, 1)
        self.resize(560, 460)
        self.path: Path | None = None

    def choose(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open a reference photo", "",
                                              "Images (*.jpg *.jpeg *.png *.tif *.tiff *.webp *.bmp);;All files (*)")
        if name:
            self.load(Path(name))

    def load(self, path: Path) -> bool:
        """Show the photo at ``path`` (read as the viewer reads one: :func:`.preview.read_for_display`)."""
        from colorizer.desktop.app.preview import read_for_display, screen_rgb

        try:
            rgb = screen_rgb(read_for_display(Path(path), REFERENCE_SIDE), REFERENCE_SIDE)
        except Exception as exc:
            self.status.setText(f"cannot open {Path(path).name}: {exc}")
            return False
        self.pane.set_rgb(rgb)
        self.path = Path(path)
        self.status.setText(Path(path).name)
        self.setWindowTitle(f"Reference: {Path(path).name} — click to pick a hint color")
        return True

    def _picked(self, color: str) -> None:
        self.status.setText(f"picked {color}")
        self.picked.emit(color)


# ---------------------------------------------------------------------------- undo
class _SetPoints(QUndoCommand):
    """The points of one photo, or of one frame of a film (``frame``), from ``before`` to ``after``."""

    def __init__(self, editor: HintEditor, before: tuple, after: tuple, text: str, selected: int,
                 frame: int = 0) -> None:
        super().__init__(text)
        self.editor, self.before, self.after, self.frame = editor, before, after, frame
        self.selected_before, self.selected_after = editor.selected, selected

    def redo(self) -> None:
        self.editor._apply(self.after, self.selected_after, self.frame)

    def undo(self) -> None:
        self.editor._apply(self.before, self.selected_before, self.frame)


# ---------------------------------------------------------------------------- the editor
class HintEditor(QObject):
    """Hint mode of the before/after view for the selected photo (see the module notes)."""

    message = Signal(str, int)  # for the status bar: text, milliseconds (0: until replaced)
    changed = Signal()  # the points changed (and were saved, or said not to be)
    preview_ready = Signal(float)  # a preview was shown: seconds from the edit

    def __init__(self, compare: ComparePanel, queue: QueueModel, store: QSettings,
                 settings: Callable[[], AppSettings], open_backend=None,
                 choose_backend: Callable[[str], str] | None = None, parent=None) -> None:
        super().__init__(parent)
        self.compare, self.view, self.queue, self.store = compare, compare.view, queue, store
        self._settings = settings
        self.item: QueueItem | None = None
        self.points: tuple[HintPoint, ...] = ()
        self.selected = -1
        self.error = ""  # why the selected photo's hints cannot be edited (an unreadable sidecar)
        self.unsaved: dict[int, object] = {}  # item id -> points (a film's: {frame: points}) its sidecar could not take
        self.frame = 0  # a film's frame on the slider (the points edited are this frame's)
        self.film: dict[int, tuple[HintPoint, ...]] = {}  # a film's key frames: frame -> points
        self.plan: HintPlan | None = None  # the film's points tracked (for the hints saved last, or older)
        self.tracking_error = ""
        self.last_latency: float | None = None
        self._preview_key = None
        self._on_disk: tuple | None = None  # file_signature of the sidecar as this editor read or wrote it last
        self.stack = QUndoStack(self)
        self.previewer = HintPreviewer(open_backend, choose_backend, self)
        self.previewer.opened.connect(self._opened)
        self.previewer.rendered.connect(self._rendered)
        self.tracker = HintTracker(self)
        self.tracker.tracked.connect(self._tracked)
        compare.frame_changed.connect(self._frame_changed)
        self.reference: ReferenceDialog | None = None
        self.ask_color: Callable[[QColor], QColor | None] = self._ask_color  # tests replace it
        recent = store.value(_RECENT_KEY, "")  # a list where an ini edited by hand has "#ff0000, #00ff00"
        recent = recent if isinstance(recent, list) else str(recent or "").split(",")
        self.recent = [QColor(c).name() for c in map(str.strip, map(str, recent))
                       if c.startswith("#") and QColor(c).isValid()][:MAX_RECENT]
        self.color = self.recent[0] if self.recent else DEFAULT_COLOR

        self.action = QAction("Hints", self, checkable=True)
        self.action.setShortcut(QKeySequence("H"))
        self.action.setToolTip(PHOTO_TIP)
        self.action.toggled.connect(self.set_mode)
        compare.hints_button.setDefaultAction(self.action)
        compare.hints_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.bar = self._build_bar()
        self.bar.setVisible(False)
        compare.set_hint_bar(self.bar)
        v = self.view
        v.hint_added.connect(self.add_point)
        v.hint_selected.connect(self.select)
        v.hint_moving.connect(self._moving)
        v.hint_moved.connect(self.move_point)
        v.hint_activated.connect(self.choose_color_for)
        v.hint_key.connect(self._key)
        self._update_enabled()

    # ------------------------------------------------------------------ widgets
    def _build_bar(self) -> QWidget:
        bar = QWidget()
        rows = QVBoxLayout(bar)  # the tools, then the state on a line of its own (shortened, never widening)
        rows.setContentsMargins(0, 2, 0, 2)
        rows.setSpacing(2)
        tools = QWidget()
        layout = QHBoxLayout(tools)
        layout.setContentsMargins(0, 0, 0, 0)
        # in a narrow window the tools scroll sideways; they never widen the window (nor does a new swatch)
        scroller = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        scroller.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroller.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroller.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        scroller.setWidget(tools)
        rows.addWidget(scroller)
        layout.addWidget(QLabel("Hint color:"))
        self.color_button = QToolButton(toolTip="Choose the hint color (for the selected point and the next ones)")
        self.color_button.clicked.connect(lambda: self.choose_color_for(self.selected))
        layout.addWidget(self.color_button)
        self.recent_buttons = []
        for _ in range(MAX_RECENT):
            b = QToolButton(autoRaise=True)
            b.clicked.connect(lambda _=False, b=b: self.set_color(b.property("color")))
            layout.addWidget(b)
            self.recent_buttons.append(b)
        self.reference_button = QToolButton(text="Reference photo…",
                                            toolTip="Open a color photo beside and click on it to pick a color")
        self.reference_button.clicked.connect(self.show_reference)
        self.clear_button = QToolButton(text="Remove all", toolTip="Remove every hint of this photo")
        self.clear_button.clicked.connect(self.remove_all)
        # fixed labels (what would be undone in the tooltip): a label growing with the command's name
        # would move everything beside it
        self.undo_button = QToolButton(text="Undo", enabled=False)
        self.undo_button.clicked.connect(self.undo)
        self.stack.canUndoChanged.connect(self.undo_button.setEnabled)
        self.stack.undoTextChanged.connect(lambda t: self.undo_button.setToolTip(" ".join(["Undo", t, "(Ctrl+Z)"])))
        self.redo_button = QToolButton(text="Redo", enabled=False)
        self.redo_button.clicked.connect(self.redo)
        self.stack.canRedoChanged.connect(self.redo_button.setEnabled)
        self.stack.redoTextChanged.connect(
            lambda t: self.redo_button.setToolTip(" ".join(["Redo", t, "(Ctrl+Shift+Z)"])))
        self.save_button = QToolButton(text="Save hints", toolTip="Try again to save the hints beside the photo")
        self.save_button.clicked.connect(self.save)
        self.save_button.setVisible(False)
        self.state_label = ElidedLabel()  # a long state never widens the window (the full text: tooltip)
        for w in (self.reference_button, self.clear_button, self.undo_button, self.redo_button, self.save_button):
            layout.addWidget(w)
        layout.addStretch(1)
        scroller.setFixedHeight(tools.sizeHint().height() + scroller.horizontalScrollBar().sizeHint().height())
        rows.addWidget(self.state_label)
        self._show_color()
        return bar

    def _show_color(self) -> None:
        self.color_button.setIcon(swatch(self.color, 20))
        self.color_button.setText(self.color)
        for b, c in zip(self.recent_buttons, self.recent + [None] * MAX_RECENT, strict=False):
            b.setVisible(c is not None)
            if c is not None:
                b.setIcon(swatch(c))
                b.setProperty("color", c)
                b.setToolTip(f"{c}: use this color")

    def is_film(self) -> bool:
        return self.item is not None and self.item.kind in FILM_KINDS

    def _update_enabled(self) -> None:
        self.action.setEnabled(self.item is not None)
        self.action.setToolTip(FILM_TIP if self.is_film() else PHOTO_TIP)

    def _status_text(self) -> str:
        if self.item is None:
            return ""
        n = len(self.points)
        where = sidecar_path(self.item.source).name
        if self.error:
            return self.error
        if self.is_film():
            keys = len(self.film)
            text = (f"frame {self.frame + 1}: {n} hint{'s' * (n != 1)} (a key frame)" if n else
                    f"frame {self.frame + 1}: click to make it a key frame")
            text += f" · {keys} key frame{'s' * (keys != 1)}"
            if self.item.id in self.unsaved:
                return text + " NOT SAVED (the folder cannot be written)"
            tracked = len(self.view.tracked())
            if tracked:
                text += f" · {tracked} tracked here"
            if self.tracking_error:
                text += f" · {self.tracking_error}"
            return text + (f" · saved in {where}" if keys else "")
        if self.item.id in self.unsaved:
            return f"{n} hint{'s' * (n != 1)} NOT SAVED (the folder cannot be written)"
        return f"{n} hint{'s' * (n != 1)}" + (f" · saved in {where}" if n else " · click the photo to put one")

    def _refresh(self) -> None:
        self.view.set_hints([(p.x, p.y, QColor(p.color)) for p in self.points], self.selected)
        self.view.set_tracked([(p.x, p.y, QColor(p.color)) for p in self._tracked_here()])
        if self.is_film():
            self.compare.set_key_frames(self.film)
        self.state_label.setText(self._status_text())
        self.save_button.setVisible(self.item is not None and self.item.id in self.unsaved)
        self.clear_button.setEnabled(bool(self.points))

    # ------------------------------------------------------------------ a film's frames
    def film_hints(self) -> FilmHints:
        return FilmHints(tuple(FrameHints(f, pts) for f, pts in sorted(self.film.items()) if pts))

    def _plan_current(self) -> bool:
        return self.plan is not None and self.plan.digest == self.film_hints().digest()

    def _tracked_here(self) -> list[HintPoint]:
        """Points of other key frames that the run applies on this frame (tracked), as the plan says."""
        if not self.is_film() or self.plan is None:
            return []
        return [self.plan.point_at(t, self.frame) for t in self.plan.tracked_at(self.frame) if t.key != self.frame]

    def _frame_hints(self, points: tuple[HintPoint, ...]) -> PhotoHints:
        """The hints the preview of this frame gets: the run's (the plan's) when it is up to date,
        else this frame's points (as being edited) and those tracked here from other key frames."""
        if self.is_film() and self._plan_current() and points == self.film.get(self.frame, ()):
            chosen = self.plan.tracked_at(self.frame)
            return PhotoHints(tuple(self.plan.point_at(t, self.frame) for t in chosen))
        return PhotoHints(tuple(points) + tuple(self._tracked_here()))

    def _frame_changed(self, frame: int) -> None:
        if not self.is_film():
            return
        self.frame = frame
        self.points, self.selected = self.film.get(frame, ()), -1
        self._refresh()
        if self.action.isChecked():
            self._open_preview(force=True)

    def _track(self) -> None:
        """Track the saved key frames' points (off the GUI thread): the markers and the preview follow."""
        preview = self.previewer.preview
        contract = preview.contract if preview is not None else None
        if not self.is_film() or contract is None or self.item.id in self.unsaved:
            return
        hints = self.film_hints()
        if not len(hints):
            self.tracker.forget()
            self.plan = None
            self._refresh()
            return
        self.tracker.request(self.item.source, self.item.kind, hints, contract, self._settings())

    def _tracked(self, plan: HintPlan | None, error: str) -> None:
        self.tracking_error = "" if plan is not None else error
        if error:
            self.message.emit(error, 10000)
        self.plan = plan
        self._refresh()
        if self.action.isChecked():
            self._render(self.points)

    # ------------------------------------------------------------------ the selected photo
    def show_item(self, item: QueueItem | None) -> None:
        """The selected row changed (None: none); the same row again keeps its undo history."""
        if item is self.item:
            return
        self.item = item
        self.tracker.forget()
        self.plan, self.tracking_error = None, ""
        self.frame = self.compare.current_frame() if self.is_film() else 0
        self._load()
        self._update_enabled()
        if self.action.isChecked():
            if item is None:
                self.action.setChecked(False)
            else:
                self._open_preview(force=True)

    def _load(self) -> None:
        """The selected photo's hints from its sidecar (or those the window keeps when they could not be saved)."""
        self.stack.clear()
        self.points, self.selected, self.error = (), -1, ""
        self.film = {}
        item = self.item
        self._on_disk = file_signature(sidecar_path(item.source)) if item is not None else None
        if item is not None and item.kind in FILM_KINDS:
            if item.id in self.unsaved:
                self.film = dict(self.unsaved[item.id])
            else:
                try:
                    hints = read_film_hints(sidecar_path(item.source))
                    self.film = {f.frame: f.points for f in hints.frames if f.points} if hints else {}
                    self.queue.set_hints(item.id, len(self.film))
                except HintsError as exc:
                    self.error = f"cannot edit the hints: {exc} (fix or remove that file)"
                    self.queue.set_hints(item.id, 0, "unreadable")
            self.points = self.film.get(self.frame, ())
        elif item is not None and item.kind == TaskKind.IMAGE:
            if item.id in self.unsaved:
                self.points = self.unsaved[item.id]
            else:
                try:
                    hints = stages.photo_hints(sidecar_path(item.source))
                    self.points = hints.points if hints is not None else ()
                    self.queue.set_hints(item.id, len(self.points))
                except HintsError as exc:
                    self.error = f"cannot edit the hints: {exc} (fix or remove that file)"
                    self.queue.set_hints(item.id, 0, "unreadable")
        self._refresh()

    def settings_changed(self) -> None:
        if self.action.isChecked():
            self._open_preview()

    # ------------------------------------------------------------------ the mode
    def set_mode(self, on: bool) -> None:
        item = self.item
        if on and item is None:
            self.action.setChecked(False)
            self.message.emit("Select a photo or a film to put hints on.", 8000)
            return
        self.view.set_hint_mode(on)
        self.bar.setVisible(on)
        if on:
            self._open_preview(force=True)
            self.view.setFocus()
            self.message.emit("Hint mode: click the frame to put a color hint there (it becomes a key frame; the "
                              "points are tracked through the shot); H leaves." if self.is_film() else
                              "Hint mode: click the photo to put a color hint; H leaves.", 5000)
        else:
            self.previewer.forget()
            self.tracker.forget()
            self._preview_key = None
            self.view.set_hint_preview(None)

    def active(self) -> bool:
        return self.action.isChecked()

    def _open_preview(self, force: bool = False) -> None:
        s = self._settings()
        key = (self.item.id if self.item else None, self.frame, HintPreviewer._backend_key_of(s), s.saturation,
               s.output_format, s.temporal_smoothing)
        if not force and key == self._preview_key:
            return
        self._preview_key = key
        self.view.set_photo_size(None)
        self.view.set_hint_preview(None, "Preparing the hint preview…")
        self.previewer.open(self.item.source, s, self.item.kind, self.frame)

    def _opened(self, preview: HintPreview | None, error: str) -> None:
        if preview is None:
            self.message.emit(error, 15000)
            self.view.set_hint_preview(None, "No preview (see the status bar)")
            return
        h, w = preview.full_hw
        self.view.set_photo_size((w, h))
        self._render(self.points)
        if self.is_film() and not self._plan_current():
            self._track()

    def _render(self, points: tuple[HintPoint, ...]) -> None:
        self.previewer.render(self._frame_hints(points) if self.is_film() else PhotoHints(points))

    def _rendered(self, image, error: str, seconds: float) -> None:
        if image is None:
            self.message.emit(error, 10000)
            return
        self.last_latency = seconds
        n = len(self.points)
        if self.is_film():
            tracked = len(self.view.tracked())
            parts = [f"{n} hint{'s' * (n != 1)}"] * bool(n) + [f"{tracked} tracked"] * bool(tracked)
            label = f"Frame {self.frame + 1} with {' + '.join(parts)} (preview)" if parts else \
                f"Frame {self.frame + 1}: automatic (preview)"
        else:
            label = f"With {n} hint{'s' * (n != 1)} (preview)" if n else "Automatic (preview)"
        self.view.set_hint_preview(image, label)
        self.preview_ready.emit(seconds)

    # ------------------------------------------------------------------ edits
    def _editable(self) -> bool:
        item = self.item
        if item is None or self._reloaded_if_changed():
            return False
        if self.error:
            self.message.emit(self.error, 10000)
            return False
        if item.status in (QUEUED, WORKING):
            self.message.emit(f"{item.source.name} is being colorized: edit its hints once it is finished.", 8000)
            return False
        return True

    def _reloaded_if_changed(self) -> bool:
        """Whether the sidecar was changed (written, damaged, removed) by another program since this
        editor read or wrote it; if so it is read again (the undo history goes: it describes the old
        file) and the user told, and the edit asked for is not made: it would overwrite the change."""
        item = self.item
        if item is None or item.id in self.unsaved:
            return False
        path = sidecar_path(item.source)
        if file_signature(path) == self._on_disk:
            return False
        log.info("%s changed on disk: hints read again", path)
        self._load()
        if self.action.isChecked():
            self._render(self.points)
            self._track()
        self.message.emit(f"{path.name} was changed by another program: its hints are read again (your last edit "
                          "was not made, and undo starts afresh).", 10000)
        return True

    def undo(self) -> None:
        if self.stack.canUndo() and self._editable():
            self.stack.undo()

    def redo(self) -> None:
        if self.stack.canRedo() and self._editable():
            self.stack.redo()

    def _push(self, points: tuple[HintPoint, ...], text: str, selected: int) -> None:
        if self._editable():
            self.stack.push(_SetPoints(self, self.points, tuple(points), text, selected, self.frame))

    def _apply(self, points: tuple[HintPoint, ...], selected: int, frame: int = 0) -> None:
        """Undo stack: the photo's (a film's: frame ``frame``'s) points are now ``points`` (saved at once)."""
        if self.is_film():
            if points:
                self.film[frame] = tuple(points)
            else:
                self.film.pop(frame, None)
            if frame != self.frame:  # an undo of another frame's edit: that frame is shown
                self.compare.show_frame(frame)
        self.points = tuple(points)
        self.selected = selected if 0 <= selected < len(points) else -1
        self.save()
        self._render(self.points)
        self._track()
        item = self.item
        if item is not None and item.status in (DONE, SKIPPED):  # its output was made with other hints
            self.queue.update(item.id, status=WAITING, progress=0,
                              message="its hints changed since it was colorized: Start colorizes it again")
        self._refresh()
        self.changed.emit()

    def add_point(self, x: float, y: float) -> None:
        if len(self.points) >= MAX_POINTS:
            where = "frame" if self.is_film() else "photo"
            self.message.emit(f"A {where} holds at most {MAX_POINTS} hints: move or recolor one instead.", 8000)
            return
        if self.is_film() and sum(len(p) for f, p in self.film.items() if f != self.frame) + len(self.points) \
                >= MAX_FILM_POINTS:
            self.message.emit(f"A film holds at most {MAX_FILM_POINTS} hints on all its key frames: a key frame's "
                              "hints carry through its shot.", 8000)
            return
        self._push(self.points + (HintPoint(float(x), float(y), self.color),), "Add a hint", len(self.points))

    def move_point(self, index: int, x: float, y: float) -> None:
        if 0 <= index < len(self.points):
            p = self.points[index]
            moved = HintPoint(float(x), float(y), p.color, p.size)
            self._push(self.points[:index] + (moved,) + self.points[index + 1 :], "Move a hint", index)
            self._refresh()  # refused (a photo being colorized): the view puts it back

    def _moving(self, index: int, x: float, y: float) -> None:
        if 0 <= index < len(self.points) and self.item is not None and self.item.status not in (QUEUED, WORKING):
            p = self.points[index]
            self._render(self.points[:index] + (HintPoint(x, y, p.color, p.size),) + self.points[index + 1 :])

    def remove_point(self, index: int) -> None:
        if 0 <= index < len(self.points):
            self._push(self.points[:index] + self.points[index + 1 :], "Remove a hint", -1)

    def remove_all(self) -> None:
        if self.points:
            self._push((), "Remove every hint", -1)

    def select(self, index: int) -> None:
        self.selected = index if 0 <= index < len(self.points) else -1
        if self.selected >= 0:
            self.color = self.points[self.selected].color
            self._show_color()
        self._refresh()

    def set_color(self, color: str) -> None:
        """The hint color (for the next points), given to the selected point too."""
        if not color:
            return
        color = QColor(color).name()
        self.color = color
        self.recent = [color] + [c for c in self.recent if c != color][: MAX_RECENT - 1]
        self.store.setValue(_RECENT_KEY, ",".join(self.recent))
        self._show_color()
        i = self.selected
        if 0 <= i < len(self.points) and self.points[i].color != color:
            p = self.points[i]
            self._push(self.points[:i] + (HintPoint(p.x, p.y, color, p.size),) + self.points[i + 1 :],
                       "Color of a hint", i)

    def _ask_color(self, initial: QColor) -> QColor | None:
        color = QColorDialog.getColor(initial, self.compare, "Hint color")
        return color if color.isValid() else None

    def choose_color_for(self, index: int) -> None:
        if 0 <= index < len(self.points):
            self.select(index)
        color = self.ask_color(QColor(self.color))
        if color is not None and color.isValid():
            self.set_color(color.name())

    def show_reference(self) -> ReferenceDialog:
        if self.reference is None:
            self.reference = ReferenceDialog(self.compare.window())
            self.reference.picked.connect(self.set_color)
        self.reference.show()
        self.reference.raise_()
        return self.reference

    def _key(self, command: str) -> None:
        if command == "delete":
            self.remove_point(self.selected)
        elif command == "undo":
            self.undo()
        elif command == "redo":
            self.redo()

    # ------------------------------------------------------------------ the sidecar
    def save(self) -> bool:
        """Write the points to the photo's sidecar (none left: remove it); say so when it cannot be."""
        item = self.item
        if item is None:
            return False
        path = sidecar_path(item.source)
        film = self.is_film()
        hints = self.film_hints() if film else PhotoHints(self.points)
        count = len(hints.frames) if film else len(self.points)
        try:
            if len(hints):
                write_hints(path, hints)
            elif path.exists():
                path.unlink()
        except OSError as exc:
            self.unsaved[item.id] = dict(self.film) if film else self.points
            self.queue.set_hints(item.id, count, "not saved")
            reason = exc.strerror or str(exc)
            self.message.emit(f"Cannot save the hints of {item.source.name} in {path.parent} ({reason}): they are "
                              "kept in this window only, and Start and colorize-batch do not see them. Make the "
                              "folder writable, then press Save hints.", 0)
            log.warning("hints of %s not saved to %s: %s", item.source, path, reason)
            self._refresh()
            return False
        self._on_disk = file_signature(path)
        was_unsaved = self.unsaved.pop(item.id, None) is not None
        self.queue.set_hints(item.id, count)
        if was_unsaved:
            self.message.emit(f"Hints of {item.source.name} saved in {path.name}.", 5000)
        self._refresh()
        return True

    def unsaved_items(self) -> list[QueueItem]:
        return [i for i in self.queue.items() if i.id in self.unsaved]

    def close(self) -> None:
        self.tracker.close()
        self.previewer.close()
        if self.reference is not None:
            self.reference.close()

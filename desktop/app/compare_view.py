"""Before/after viewer: the original and the result in one view, split by a line you drag.

:class:`CompareView` draws the original left of the split and the result right of it, at the same
place and scale. Drag the line to move the split, drag elsewhere to pan, turn the wheel to zoom
around the pointer, double-click (or 0) to fit, 1 for one image pixel per screen pixel. An image
drawn smaller than it is (a 3000-pixel preview of a 100 MP scan, fitted) is scaled once per zoom
level into a pixmap of the size drawn (:meth:`CompareView.display_pixmap`), so a pan, a drag of the
split or of a hint repaints by copying pixels, not by filtering millions of them again.
:class:`ComparePanel` adds a bar with Fit, 1:1, the zoom in percent and "Show in folder", and a
frame scrubber for videos and frame folders, hidden until it is given a :class:`FrameSource`.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from typing import Protocol

from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QObject,
    QPoint,
    QPointF,
    QRectF,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QColor, QCursor, QImage, QKeySequence, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QStyle,
    QStyleOptionSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

log = logging.getLogger(__name__)

SPLIT_GRAB_PX = 8
SPLIT_KNOB_PX = 13  # radius of the split line's knob (◀▶)
HINT = "Drag the line to compare · wheel: zoom · drag: pan · double-click or 0: fit · 1: 1:1"
EMPTY = f"Select a photo or a film in the queue to compare the original with the result.\n\n{HINT}"
MIN_SCALE, MAX_SCALE = 0.02, 32.0
HINT_RADIUS = 7  # screen pixels of a hint's marker
HINT_GRAB_PX = 10
MARKER_MARGIN = 6  # screen pixels around a marker's ring in its pixmap (the pens' width, the tracked ring)
MARKER_CACHE = 1024  # markers kept (one per color)
DISPLAY_CACHE = 4  # scaled pixmaps kept: the original, the result, the hint preview and one more
HINT_MODE_HINT = ("Hint mode: click the photo to put a point · drag a point to move it · Delete removes it · "
                  "Ctrl+Z / Ctrl+Shift+Z undo / redo · double-click a point: its color · right-drag: pan · H: leave")


class CompareView(QWidget):
    """In hint mode (:meth:`set_hint_mode`) a left click on the photo asks for a hint there, a point
    can be dragged, selected and removed; the view only draws the points it is given and reports
    what the user did, in pixels of the upright photo (:meth:`set_photo_size`)."""

    split_changed = Signal(float)
    zoom_changed = Signal(float)  # screen pixels per image pixel (1.0 = 100 %)
    hint_added = Signal(float, float)  # photo pixels
    hint_selected = Signal(int)  # index, -1: none
    hint_moving = Signal(int, float, float)  # while dragged
    hint_moved = Signal(int, float, float)  # released at (photo pixels)
    hint_activated = Signal(int)  # double-click on a point: choose its color
    hint_key = Signal(str)  # "delete", "undo", "redo"

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._before: QImage | None = None
        self._after: QImage | None = None
        self._labels = ("Original", "Colorized")
        self._message = EMPTY
        self._split = 0.5  # fraction of the widget's width
        self._scale = 1.0  # screen pixels per image pixel
        self._origin = QPointF()  # screen position of the image's top-left corner
        self._fitted = True
        self._drag: str | None = None  # "split" | "pan" | "hint"
        self._last = QPointF()
        self._hint_mode = False
        self._hints: list[tuple[float, float, QColor]] = []  # photo pixels
        self._selected = -1
        self._photo_size: tuple[int, int] | None = None  # (width, height) of the upright photo
        self._tracked: list[tuple[float, float, QColor]] = []  # a film's points tracked from other frames
        self._hint_after: QImage | None = None  # the live preview shown right of the split in hint mode
        self._hint_label = "Colorized with hints (preview)"
        self._moved = False
        self._drag_index, self._drag_origin = -1, None  # the point a drag began on, as it was then
        self._display: OrderedDict[tuple, QPixmap] = OrderedDict()  # (image, size drawn) -> the image scaled to it
        self._markers: dict[tuple, QPixmap] = {}  # (color, tracked, pixel ratio) -> a point's marker
        self.setMouseTracking(True)
        self.setMinimumSize(240, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    # ------------------------------------------------------------------ content
    def set_images(self, before: QImage | None, after: QImage | None = None, *, message: str = "",
                   labels: tuple[str, str] = ("Original", "Colorized")) -> None:
        """Show ``before`` and ``after`` (None: the result is not there yet; ``message`` says why)."""
        same_size = (self._before is not None and before is not None and before.size() == self._before.size())
        self._before, self._after, self._labels = before, after, labels
        self._message = message
        if not same_size or self._fitted:
            self.fit()
        self.update()

    def clear(self, message: str = "") -> None:
        self.set_images(None, None, message=message or EMPTY)

    def has_image(self) -> bool:
        return self._before is not None

    def has_result(self) -> bool:
        return self._after is not None

    # ------------------------------------------------------------------ hints
    def set_hint_mode(self, on: bool) -> None:
        self._hint_mode = on
        self._drag = None
        self.setToolTip(HINT_MODE_HINT if on else HINT)
        self.update()

    def hint_mode(self) -> bool:
        return self._hint_mode

    def set_photo_size(self, size: tuple[int, int] | None) -> None:
        """(width, height) of the upright photo the hints' pixels are in (None: not known yet)."""
        self._photo_size = size
        self.update()

    def set_hints(self, points: list[tuple[float, float, QColor]], selected: int = -1) -> None:
        """The points to draw, in photo pixels, and the selected one (-1: none).

        A point being dragged stays in the drag (where the pointer has taken it) while it is still
        the point the drag began on; when it is not (an undo, a Delete or another photo while the
        button is held) the drag ends: its release must not move another point."""
        points = list(points)
        if self._drag == "hint":
            i = self._drag_index
            if selected == i and 0 <= i < len(points) and points[i] == self._drag_origin:
                points[i] = self._hints[i] if i < len(self._hints) else points[i]
            else:
                self._drag = None
        self._hints = points
        self._selected = selected if 0 <= selected < len(points) else -1
        self.update()

    def set_tracked(self, points: list[tuple[float, float, QColor]]) -> None:
        """A film's points on this frame tracked from its key frames (photo pixels), drawn hollow:
        read-only, they show where the run will apply them."""
        self._tracked = list(points)
        self.update()

    def tracked(self) -> list[tuple[float, float, QColor]]:
        return list(self._tracked)

    def hints(self) -> list[tuple[float, float, QColor]]:
        return list(self._hints)

    def set_hint_preview(self, image: QImage | None, label: str = "") -> None:
        """The colorized preview with hints, shown right of the split while in hint mode."""
        self._hint_after = image
        if label:
            self._hint_label = label
        self.update()

    def hint_preview(self) -> QImage | None:
        return self._hint_after

    def photo_to_view(self, x: float, y: float) -> QPointF:
        """Where the center of photo pixel (x, y) is on the screen."""
        return self._to_view()(x, y)

    def _view_to_photo(self, pos: QPointF) -> tuple[float, float] | None:
        """The photo pixel under ``pos`` (None: off the photo, or its size unknown)."""
        if self._photo_size is None or self._before is None:
            return None
        w, h = self._photo_size
        r = self.image_rect()
        if r.width() <= 0 or not r.contains(pos):
            return None
        x = (pos.x() - r.x()) * w / r.width()
        y = (pos.y() - r.y()) * h / r.height()
        return float(min(w - 1, max(0, int(x)))), float(min(h - 1, max(0, int(y))))

    def hint_at(self, pos: QPointF) -> int:
        """The index of the point drawn under ``pos`` (the topmost), -1 if none."""
        if self._photo_size is None:
            return -1
        to_view = self._to_view()
        for i in range(len(self._hints) - 1, -1, -1):
            c = to_view(self._hints[i][0], self._hints[i][1])
            if (c - pos).manhattanLength() <= HINT_GRAB_PX * 1.4:
                return i
        return -1

    # ------------------------------------------------------------------ geometry
    def split(self) -> float:
        return self._split

    def set_split(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, fraction))
        if fraction != self._split:
            self._split = fraction
            self.split_changed.emit(fraction)
            self.update()

    def _split_x(self) -> float:
        return self._split * self.width()

    def scale(self) -> float:
        return self._scale

    def fit(self) -> None:
        self._fitted = True
        if self._before is None or self._before.isNull():
            return
        iw, ih = self._before.width(), self._before.height()
        scale = min(self.width() / iw, self.height() / ih)
        if scale <= 0:  # a view of no size yet: fitted when it gets one (resizeEvent)
            return
        self._scale = min(MAX_SCALE, scale)  # a tiny photo is not blown up past the zoom limit
        self._origin = QPointF((self.width() - iw * self._scale) / 2, (self.height() - ih * self._scale) / 2)
        self.zoom_changed.emit(self._scale)
        self.update()

    def actual_size(self) -> None:
        """One image pixel per screen pixel, around the center of the view."""
        self.zoom_by(1.0 / self._scale)

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        if self._before is None:
            return
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        new_scale = min(MAX_SCALE, max(MIN_SCALE, self._scale * factor))
        image_point = (anchor - self._origin) / self._scale
        self._scale = new_scale
        self._origin = anchor - image_point * new_scale
        self._fitted = False
        self.zoom_changed.emit(new_scale)
        self.update()

    def pan_by(self, dx: float, dy: float) -> None:
        self._origin += QPointF(dx, dy)
        self._fitted = False
        self.update()

    def image_rect(self) -> QRectF:
        if self._before is None:
            return QRectF()
        return QRectF(self._origin, self._before.size().toSizeF() * self._scale)

    # ------------------------------------------------------------------ painting
    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(38, 38, 40))
        if self._before is None:
            p.setPen(QColor(170, 170, 170))
            p.drawText(self.rect().adjusted(20, 20, -20, -20), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self._message)
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._scale < 2)
        target = self.image_rect()
        sx = self._split_x()
        after = self._hint_after if self._hint_mode and self._hint_after is not None else self._after
        right = after if after is not None else self._before
        for image, clip in ((self._before, QRectF(0, 0, sx, self.height())),
                            (right, QRectF(sx, 0, self.width() - sx, self.height()))):
            if clip.width() <= 0:
                continue
            p.save()
            p.setClipRect(clip)
            self._draw_image(p, image, target)
            p.restore()
        self._paint_split(p, sx)
        if self._hint_mode:
            self._paint_hints(p)
        self._paint_label(p, self._labels[0], left=True)
        if self._hint_mode and self._hint_after is not None:
            right = self._hint_label
        else:
            right = self._labels[1] if self._after is not None else (self._message or "Not colorized yet")
        self._paint_label(p, right, left=False)

    def _draw_image(self, p: QPainter, image: QImage, target: QRectF) -> None:
        pixmap = self.display_pixmap(image, target)
        if pixmap is None:
            p.drawImage(target, image)
        else:
            p.drawPixmap(target.topLeft(), pixmap)

    def display_pixmap(self, image: QImage, target: QRectF) -> QPixmap | None:
        """``image`` scaled (smoothly, once) to the size it is drawn at in the screen's pixels (``target``
        times the pixel ratio), when that is smaller than the image; None when it is drawn larger (zoomed
        in: only the part in view is filtered, as it is)."""
        ratio = self.devicePixelRatioF()
        size = QSize(round(target.width() * ratio), round(target.height() * ratio))
        if size.isEmpty() or (size.width() >= image.width() and size.height() >= image.height()):
            return None
        key = (image.cacheKey(), size.width(), size.height(), ratio)
        pixmap = self._display.get(key)
        if pixmap is None:
            pixmap = QPixmap.fromImage(image.scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio,
                                                    Qt.TransformationMode.SmoothTransformation))
            pixmap.setDevicePixelRatio(ratio)  # drawn at ``target``'s size, every screen pixel its own
            self._display[key] = pixmap
            while len(self._display) > DISPLAY_CACHE:
                self._display.popitem(last=False)
        self._display.move_to_end(key)
        return pixmap

    def _paint_hints(self, p: QPainter) -> None:
        """The points (and a film's tracked ones): each a copy of its color's marker drawn once
        (:meth:`marker`), those off the screen skipped; 500 antialiased rings a repaint made a drag of
        one point over a photo holding the most hints stutter."""
        if self._photo_size is None:
            return
        to_view = self._to_view()
        half = HINT_RADIUS + MARKER_MARGIN
        area = QRectF(self.rect()).adjusted(-half, -half, half, half)

        def put(x: float, y: float, color: QColor, tracked: bool) -> None:
            c = to_view(x, y)
            if area.contains(c):
                p.drawPixmap(QPoint(round(c.x()) - half, round(c.y()) - half), self.marker(color, tracked))

        for x, y, color in self._tracked:  # hollow: tracked from a key frame, not editable here
            put(x, y, color, True)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        for i, (x, y, color) in enumerate(self._hints):  # in order: the one on top is the one a click takes
            if i != self._selected:
                put(x, y, color, False)
                continue
            c, radius = to_view(x, y), HINT_RADIUS + 3  # the selected one: larger, with a dashed ring
            self._draw_point(p, c, radius, color)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.setPen(QPen(QColor(255, 210, 0), 2, Qt.PenStyle.DashLine))
            p.drawEllipse(c, radius + 5, radius + 5)

    @staticmethod
    def _draw_point(p: QPainter, c: QPointF, radius: float, color: QColor) -> None:
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(QColor(0, 0, 0, 200), 4))
        p.drawEllipse(c, radius, radius)
        p.setPen(QPen(QColor(255, 255, 255), 2))
        p.setBrush(color)
        p.drawEllipse(c, radius, radius)

    @staticmethod
    def _draw_tracked(p: QPainter, c: QPointF, color: QColor) -> None:
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(QColor(0, 0, 0, 200), 5))
        p.drawEllipse(c, HINT_RADIUS, HINT_RADIUS)
        p.setPen(QPen(color, 3))
        p.drawEllipse(c, HINT_RADIUS, HINT_RADIUS)
        p.setPen(QPen(QColor(255, 255, 255), 1, Qt.PenStyle.DotLine))
        p.drawEllipse(c, HINT_RADIUS + 3, HINT_RADIUS + 3)

    def marker(self, color: QColor, tracked: bool = False) -> QPixmap:
        """A point's marker (a tracked point's: hollow) in ``color``, drawn once at the screen's pixel ratio."""
        ratio = self.devicePixelRatioF()
        key = (color.rgba(), tracked, ratio)
        pixmap = self._markers.get(key)
        if pixmap is None:
            if len(self._markers) >= MARKER_CACHE:
                self._markers.clear()
            half = HINT_RADIUS + MARKER_MARGIN
            pixmap = QPixmap(round(2 * half * ratio), round(2 * half * ratio))
            pixmap.setDevicePixelRatio(ratio)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            center = QPointF(half, half)
            if tracked:
                self._draw_tracked(painter, center, color)
            else:
                self._draw_point(painter, center, HINT_RADIUS, color)
            painter.end()
            self._markers[key] = pixmap
        return pixmap

    def _to_view(self):
        """:meth:`photo_to_view` with the photo's place on the screen looked up once (for many points)."""
        w, h = self._photo_size or (1, 1)
        r = self.image_rect()
        x0, y0, fx, fy = r.x(), r.y(), r.width() / w, r.height() / h
        return lambda x, y: QPointF(x0 + (x + 0.5) * fx, y0 + (y + 0.5) * fy)

    def _paint_split(self, p: QPainter, x: float) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor(0, 0, 0, 110), 3))
        p.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        p.setPen(QPen(QColor(255, 255, 255), 1.5))
        p.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        c = QPointF(x, self.height() / 2)
        p.setBrush(QColor(255, 255, 255, 235))
        p.setPen(QPen(QColor(0, 0, 0, 120), 1))
        p.drawEllipse(c, SPLIT_KNOB_PX, SPLIT_KNOB_PX)
        arrows = QPainterPath()
        for d in (-1, 1):  # two small triangles: ◀ ▶
            arrows.moveTo(c + QPointF(d * 3, -5))
            arrows.lineTo(c + QPointF(d * 9, 0))
            arrows.lineTo(c + QPointF(d * 3, 5))
            arrows.closeSubpath()
        p.fillPath(arrows, QColor(40, 40, 40))

    def _paint_label(self, p: QPainter, text: str, *, left: bool) -> None:
        metrics = p.fontMetrics()
        w, h = metrics.horizontalAdvance(text) + 16, metrics.height() + 8
        x = 10 if left else self.width() - w - 10
        box = QRectF(x, 10, w, h)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 150))
        p.drawRoundedRect(box, 4, 4)
        p.setPen(QColor(255, 255, 255))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    # ------------------------------------------------------------------ interaction
    def resizeEvent(self, event) -> None:
        if self._fitted:
            self.fit()
        super().resizeEvent(event)

    def _near_split(self, pos: QPointF) -> bool:
        """Whether a press at ``pos`` takes the split line: anywhere along it, or in hint mode (where a
        click on the photo puts a point) its knob only."""
        if self._hint_mode:
            knob = QPointF(self._split_x(), self.height() / 2)
            return math.hypot(pos.x() - knob.x(), pos.y() - knob.y()) <= SPLIT_KNOB_PX + 3
        return abs(pos.x() - self._split_x()) <= SPLIT_GRAB_PX

    def mousePressEvent(self, event) -> None:
        if self._hint_mode and self._before is not None and event.button() in (
                Qt.MouseButton.RightButton, Qt.MouseButton.MiddleButton):
            self._drag, self._last = "pan", event.position()  # in hint mode the left button puts points
            self.setCursor(QCursor(Qt.CursorShape.ClosedHandCursor))
            event.accept()
            return
        if event.button() != Qt.MouseButton.LeftButton or self._before is None:
            return super().mousePressEvent(event)
        pos = event.position()
        self._drag = "split" if self._near_split(pos) else "pan"
        self._last = pos
        if self._hint_mode and self._drag == "pan":
            index = self.hint_at(pos)
            if index >= 0:
                self._drag, self._moved = "hint", False
                self._drag_index, self._drag_origin = index, self._hints[index]
                self._selected = index
                self.hint_selected.emit(index)
                self.update()
                event.accept()
                return
            at = self._view_to_photo(pos)
            if at is not None:
                self._drag = None
                self.hint_added.emit(*at)
                event.accept()
                return
        if self._drag == "pan":
            self.setCursor(QCursor(Qt.CursorShape.ClosedHandCursor))
        event.accept()

    def mouseMoveEvent(self, event) -> None:
        pos = event.position()
        if self._drag == "hint" and 0 <= self._selected < len(self._hints):
            at = self._view_to_photo(pos)
            if at is not None and at != self._hints[self._selected][:2]:
                self._moved = True
                self._hints[self._selected] = (*at, self._hints[self._selected][2])
                self.hint_moving.emit(self._selected, *at)
                self.update()
            self._last = pos
            return
        if self._drag == "split":
            self.set_split(pos.x() / max(1, self.width()))
        elif self._drag == "pan":
            delta = pos - self._last
            self.pan_by(delta.x(), delta.y())
        elif self._before is not None:
            if self._near_split(pos):
                shape = Qt.CursorShape.SplitHCursor
            elif self._hint_mode:
                shape = (Qt.CursorShape.SizeAllCursor if self.hint_at(pos) >= 0 else Qt.CursorShape.CrossCursor)
            else:
                shape = Qt.CursorShape.OpenHandCursor
            self.setCursor(QCursor(shape))
        self._last = pos

    def mouseReleaseEvent(self, event) -> None:
        if self._drag == "hint" and self._moved and 0 <= self._selected < len(self._hints):
            x, y, _ = self._hints[self._selected]
            self.hint_moved.emit(self._selected, x, y)
        self._drag = None
        self.unsetCursor()
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:
        if self._hint_mode:
            index = self.hint_at(event.position())
            if index >= 0:
                self.hint_activated.emit(index)
            return
        self.fit()

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(1.25 ** steps, event.position())
        event.accept()

    def _hint_command(self, event) -> str | None:
        """What a key means in hint mode ("delete", "undo", "redo"), None: nothing of hint mode's."""
        if not self._hint_mode:
            return None
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            return "delete"
        if event.matches(QKeySequence.StandardKey.Undo):
            return "undo"
        ctrl_shift = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
        if event.matches(QKeySequence.StandardKey.Redo) or (
                event.key() == Qt.Key.Key_Z and event.modifiers() & ctrl_shift == ctrl_shift):
            return "redo"
        return None

    def event(self, event) -> bool:
        # hint mode's keys go to the view, not to the window's shortcuts (Delete removes queue rows there)
        if event.type() == QEvent.Type.ShortcutOverride and self._hint_command(event) is not None:
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:
        command = self._hint_command(event)
        if command is not None:
            self.hint_key.emit(command)
            event.accept()
            return
        key = event.key()
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(1.25)
        elif key == Qt.Key.Key_Minus:
            self.zoom_by(0.8)
        elif key == Qt.Key.Key_0:
            self.fit()
        elif key == Qt.Key.Key_1:
            self.actual_size()
        else:
            super().keyPressEvent(event)


class FrameSource(Protocol):
    """Frames of a video item for the scrubber: original and (when colorized) result of frame i.

    A source may also have ``stops_early = True`` (its ``frames(index, wanted)`` stops, raising an
    exception, once ``wanted()`` is false: a frame asked for is not decoded to its end once another
    one is asked for) and ``release()`` (close the files it holds open; called off the GUI thread, once
    it is not shown any more or its result is about to be written again)."""

    frame_count: int

    def frames(self, index: int) -> tuple[QImage, QImage | None]: ...


class KeyFrameSlider(QSlider):
    """The frame slider, with a film's key frames (frames that hold color hints) marked under it."""

    def __init__(self, parent=None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self._keys: list[int] = []

    def set_key_frames(self, frames) -> None:
        self._keys = sorted(set(int(f) for f in frames))
        self.setToolTip("Key frames (with color hints): " + ", ".join(str(f + 1) for f in self._keys)
                        if self._keys else "")
        self.update()

    def key_frames(self) -> list[int]:
        return list(self._keys)

    def key_frame_x(self, frame: int) -> float:
        """Where ``frame``'s marker is drawn (widget x): under the handle's center at that frame."""
        option = QStyleOptionSlider()
        self.initStyleOption(option)
        style = self.style()
        groove = style.subControlRect(QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderGroove, self)
        handle = style.subControlRect(QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderHandle, self)
        span = groove.width() - handle.width()
        offset = QStyle.sliderPositionFromValue(self.minimum(), self.maximum(), frame, max(0, span))
        return groove.x() + handle.width() / 2 + offset

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if not self._keys:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        h = self.height()
        for frame in self._keys:
            if self.minimum() <= frame <= self.maximum():
                x = self.key_frame_x(frame)
                marker = QPainterPath()
                marker.moveTo(x, h - 7)
                marker.lineTo(x - 5, h)
                marker.lineTo(x + 5, h)
                marker.closeSubpath()
                p.fillPath(marker, QColor(255, 190, 0))
                p.setPen(QPen(QColor(0, 0, 0, 160), 1))
                p.drawPath(marker)
        p.end()


class ElidedLabel(QLabel):
    """A one-line label that shortens its text in the middle instead of widening the window."""

    def __init__(self, text: str = "", parent=None) -> None:
        super().__init__(parent)
        self._full = text
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        super().setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideMiddle, max(0, self.width())))


class _FrameSignals(QObject):
    loaded = Signal(int, int, object, object, str)  # request, frame index, before, after (or None), error


class _FrameLoad(QRunnable):
    """One frame of a film decoded off the GUI thread (a seek lands on the key frame before it, and a
    1080p film decodes up to 250 frames from there: seconds). Skipped when a later frame was asked for
    before it started, so a quick scrub decodes the frame it stops at, not every one it passed, and
    stopped when one is asked for while it decodes (a source that ``stops_early``)."""

    def __init__(self, panel: ComparePanel, request: int, source: FrameSource, index: int) -> None:
        super().__init__()
        self.panel, self.request, self.source, self.index = panel, request, source, index
        self.signals = panel._frame_signals

    def run(self) -> None:
        if not self.wanted():
            return
        before = after = None
        error = ""
        try:
            if getattr(self.source, "stops_early", False):  # a far frame of a 1080p film: 0.4 s not spent
                before, after = self.source.frames(self.index, self.wanted)  # once another one is asked for
            else:
                before, after = self.source.frames(self.index)
        except Exception as exc:  # the film was removed, cut short or damaged since its row was shown
            if not self.wanted():
                return  # stopped: another frame was asked for
            error = str(exc) or type(exc).__name__
        self.signals.loaded.emit(self.request, self.index, before, after, error)

    def wanted(self) -> bool:
        """Whether this frame is still the one asked for last."""
        return self.panel._frame_request == self.request


class ComparePanel(QWidget):
    """The compare view, its bar (fit, 1:1, zoom %, show in folder), a frame scrubber and a caption."""

    show_in_folder = Signal()
    frame_changed = Signal(int)  # the user (or show_frame) moved to another frame of a film

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.view = CompareView()
        self.caption = ElidedLabel()
        self.scrubber = KeyFrameSlider()
        self.scrubber.setMinimumHeight(26)  # room for the key-frame markers under the groove
        self.scrubber.setVisible(False)
        self.scrubber.setTracking(False)  # a frame is decoded when the handle is let go, not on every pixel
        self.scrubber.valueChanged.connect(self._show_frame)
        self.scrubber.sliderMoved.connect(self._preview_frame_number)
        self._frames: FrameSource | None = None
        self._frame_pool = QThreadPool(self)  # one film frame decoded at a time, off the GUI thread
        self._frame_pool.setMaxThreadCount(1)
        self._frame_signals = _FrameSignals()  # no parent: a decode in flight may outlive the panel
        self._frame_signals.loaded.connect(self._frame_loaded)
        self._frame_request = 0  # the latest frame asked for; a decode of an earlier one is not shown
        self.view.setToolTip(HINT)
        self.fit_button = QToolButton(text="Fit", toolTip="Fit the image in the view (0, or double-click)")
        self.fit_button.clicked.connect(self.view.fit)
        self.actual_button = QToolButton(text="1:1", toolTip="One image pixel per screen pixel (1)")
        self.actual_button.clicked.connect(self.view.actual_size)
        self.zoom_label = QLabel("")
        self.zoom_label.setMinimumWidth(48)
        self.zoom_label.setToolTip("Zoom: screen pixels per image pixel")
        self.view.zoom_changed.connect(lambda scale: self.zoom_label.setText(f"{scale * 100:.0f} %"))
        self.show_button = QToolButton(text="Show in folder", toolTip="Show the selected result in its folder")
        self.show_button.clicked.connect(self.show_in_folder)
        self.hints_button = QToolButton(text="Hints", checkable=True)  # its action: the hint editor's
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        for w in (self.hints_button, self.fit_button, self.actual_button, self.zoom_label):
            bar.addWidget(w)
        bar.addWidget(self.caption, 1)
        bar.addWidget(self.show_button)
        self._layout = layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.scrubber)
        layout.addLayout(bar)
        self.clear()

    def set_hint_bar(self, bar: QWidget) -> None:
        """The hint mode's tools, shown between the view and the bar (the editor shows and hides it)."""
        self._layout.insertWidget(2, bar)

    def clear(self, message: str = "") -> None:
        """Nothing selected: no image, no frame scrubber, no caption, no zoom left from before."""
        self._release_frames(None)
        self._frame_request += 1  # a frame still being decoded is not shown
        self.scrubber.setVisible(False)
        self.view.clear(message)
        self.caption.setText("")
        self.zoom_label.setText("")
        self.show_button.setEnabled(False)

    def set_frame_source(self, source: FrameSource | None, frame: int = 0) -> None:
        """Videos: show frame ``frame`` of ``source`` with the scrubber; None hides it. ``frame_changed``
        follows only when the frame shown is not ``frame`` (a film shorter than that now)."""
        self._release_frames(source)
        self.scrubber.set_key_frames([])
        self.scrubber.setVisible(source is not None and source.frame_count > 1)
        if source is not None:
            index = min(max(0, frame), max(0, source.frame_count - 1))
            self.scrubber.blockSignals(True)
            self.scrubber.setRange(0, max(0, source.frame_count - 1))
            self.scrubber.setValue(index)
            self.scrubber.blockSignals(False)
            self._show_frame(index, notify=index != frame)

    def set_key_frames(self, frames) -> None:
        """Mark a film's key frames on the slider (and say in the caption when the frame shown is one)."""
        self.scrubber.set_key_frames(frames)
        self.update_caption()

    def update_caption(self) -> None:
        if self._frames is not None:
            index = self.scrubber.value()
            key = " · key frame (hints)" if index in self.scrubber.key_frames() else ""
            self.caption.setText(f"frame {index + 1} / {self._frames.frame_count}{key}")

    def _release_frames(self, source: FrameSource | None) -> None:
        """``source`` is shown from now on; the one shown before lets go of its files (off the GUI
        thread, after the frame being decoded)."""
        if self._frames is not None and self._frames is not source:
            self.release_frames()
        self._frames = source

    def release_frames(self) -> None:
        """The film shown holds no file open (it is opened again for the next frame shown): its result
        is about to be written again (a file held open cannot be replaced on Windows)."""
        release = getattr(self._frames, "release", None)
        if release is not None:
            self._frame_pool.start(release)

    def current_frame(self) -> int:
        """The film's frame shown (from 0); 0 for a photo."""
        return self.scrubber.value() if self._frames is not None else 0

    def show_frame(self, index: int) -> None:
        """Move the slider to frame ``index`` and show it (``frame_changed`` follows)."""
        if self._frames is not None and index != self.scrubber.value():
            self.scrubber.setValue(index)

    def _preview_frame_number(self, index: int) -> None:
        if self._frames is not None:
            self.caption.setText(f"frame {index + 1} / {self._frames.frame_count}")

    def _show_frame(self, index: int, notify: bool = True) -> None:
        """Ask for frame ``index`` (shown when decoded, unless another was asked for meanwhile); the caption
        and ``frame_changed`` follow at once."""
        if self._frames is not None:
            self._frame_request += 1
            self._frame_pool.start(_FrameLoad(self, self._frame_request, self._frames, index))
            self.update_caption()
            if notify:
                self.frame_changed.emit(index)

    def _frame_loaded(self, request: int, index: int, before, after, error: str) -> None:
        if request != self._frame_request or self._frames is None:
            return  # another frame, or another row, was asked for since
        if error:
            log.warning("cannot show frame %d: %s", index + 1, error)
            self.view.clear(f"Frame {index + 1} cannot be shown: {error}")
        elif before is None:
            self.view.clear(f"Frame {index + 1} cannot be shown (the film ends before it).")
        else:
            self.view.set_images(before, after)

    def wait_for_frame(self) -> None:
        """Until the frame asked for last is shown (tests; the window waits for it as it closes)."""
        self._frame_pool.waitForDone()
        QCoreApplication.sendPostedEvents(self._frame_signals)
        QCoreApplication.processEvents()

"""The queue: one row per input (a photo, a video or a folder of frames) and what became of it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QPalette
from PySide6.QtWidgets import QStyledItemDelegate

from colorizer.desktop.core import Status, TaskKind, TextEnum
from colorizer.desktop.pipeline.report import FileResult


class Pending(TextEnum):
    """Where an item is before it has a result (a :class:`Status`)."""

    WAITING = "waiting"
    QUEUED = "queued"
    WORKING = "working"


WAITING, QUEUED, WORKING = Pending
DONE, SKIPPED, FAILED, CANCELLED = Status.DONE, Status.SKIPPED, Status.FAILED, Status.CANCELLED

COLUMNS = ("Name", "Type", "Hints", "Status", "Progress", "Result")
NAME, TYPE, HINTS, STATUS, PROGRESS, RESULT = range(len(COLUMNS))
ERROR = RESULT  # a failure's reason is shown in the Result column (in full in the details pane)
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 1

_STATUS_COLORS = {DONE: QColor(30, 130, 60), SKIPPED: QColor(110, 110, 110), FAILED: QColor(190, 30, 30),
                  CANCELLED: QColor(160, 100, 0)}
_ids = itertools.count(1)


@dataclass
class QueueItem:
    source: Path
    kind: TaskKind
    root: Path | None = None  # the folder it was found in: its tree is mirrored under the output folder
    status: Pending | Status = WAITING
    progress: float = 0.0  # 0..1
    message: str = ""  # the runtime's reason for a failure or a skip
    output: Path | None = None  # a film's output video, or its folder of frames
    id: int = 0
    hints: int = 0  # color hints in its sidecar (or, when they could not be saved, in the app only)
    hints_note: str = ""  # why they are not (all) in the sidecar: "not saved", "unreadable"

    def __post_init__(self) -> None:
        self.kind = TaskKind(self.kind)  # ValueError for an unknown kind
        self.id = self.id or next(_ids)

    @cached_property
    def key(self) -> Path:
        """The file it is (its path resolved): one row per file. Resolved once (a queue of 20,000 rows
        compares every new file with all of them)."""
        return self.source.resolve()

    def _result_text(self) -> str:
        """The Result column: a failure's reason, else where the output goes ('→ film.mp4', '→ reel/ (frames)')."""
        if self.status in (Status.FAILED, Status.CANCELLED) or (self.message and self.output is None):
            return self.message.splitlines()[0] if self.message else ""
        if self.output is None:
            return ""
        if self.kind == TaskKind.FRAMES and not self.output.suffix:
            return f"→ {self.output.name}/ (frames)"
        return f"→ {self.output.name}"

    def hints_text(self) -> str:
        """The Hints column: "3 hints", "3 hints (not saved)", a film's "2 key frames", "" when there are none."""
        if not self.hints and not self.hints_note:
            return ""
        noun = "hint" if self.kind == TaskKind.IMAGE else "key frame"  # a film's: its frames that hold hints
        count = f"{self.hints} {noun}{'s' * (self.hints != 1)}" if self.hints else ""
        return f"{count} ({self.hints_note})" if count and self.hints_note else count or self.hints_note

    def details(self) -> str:
        """Everything about the item, in full, for the details pane."""
        lines = [f"{self.kind}: {self.source}", f"status: {self.status}"]
        if self.hints or self.hints_note:
            lines.append(f"color hints: {self.hints_text()}")
        if self.output is not None:
            lines.append(f"output: {self.output}")
        if self.message:
            lines.append(("error: " if self.status == Status.FAILED else "note: ") + self.message)
        return "\n".join(lines)


MANY_RANGES = 32  # a removal of more separate runs of rows than this resets the view once instead


def row_runs(rows) -> list[tuple[int, int]]:
    """Rows as (first, last) runs of consecutive rows, in ascending order."""
    runs: list[tuple[int, int]] = []
    for row in sorted(set(rows)):
        if runs and row == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs


class QueueModel(QAbstractTableModel):
    """The rows, in the order added. Built for archives: a file already queued is found by its key in
    a set, item ids map to rows through an index rebuilt only when rows are removed (lazily), a
    removal takes runs of rows at once, and :meth:`update_many` changes many rows with one signal."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._items: list[QueueItem] = []
        self._keys: set[Path] = set()  # the items' keys: what is queued already
        self._index: dict[int, int] | None = {}  # item id -> row (None: rebuilt when next asked)
        self._quiet: set[int] = set()  # ids of the items whose progress changed without a signal (set_progress)

    # ------------------------------------------------------------------ Qt model interface
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self._items)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        item, col = self._items[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (item.source.name, item.kind, item.hints_text(), item.status, f"{round(item.progress * 100)}%",
                    item._result_text())[col]
        if role == PROGRESS_ROLE:
            return item.progress
        if role == Qt.ItemDataRole.ToolTipRole:
            return item.details()
        if role == Qt.ItemDataRole.ForegroundRole and col in (STATUS, RESULT) and item.status in _STATUS_COLORS:
            return QBrush(_STATUS_COLORS[item.status])
        return None

    # ------------------------------------------------------------------ queue operations
    def items(self) -> list[QueueItem]:
        return list(self._items)

    def item(self, row: int) -> QueueItem:
        return self._items[row]

    def item_by_id(self, item_id: int) -> QueueItem | None:
        row = self._row_of(item_id)
        return None if row is None else self._items[row]

    def add(self, items: list[QueueItem]) -> list[QueueItem]:
        """Append the items not already queued (same file); returns those added."""
        new = []
        for item in items:
            if item.key not in self._keys:
                self._keys.add(item.key)
                new.append(item)
        if new:
            start = len(self._items)
            self.beginInsertRows(QModelIndex(), start, start + len(new) - 1)
            self._items.extend(new)
            if self._index is not None:
                self._index.update((item.id, row) for row, item in enumerate(new, start))
            self.endInsertRows()
        return new

    def remove_rows(self, rows: list[int]) -> None:
        """Remove ``rows``: each run of consecutive rows at once; very many runs (every other row of
        thousands) in one reset, as one by one the view's bookkeeping grows with the square of them."""
        runs = [(first, last) for first, last in row_runs(rows) if first >= 0 and last < len(self._items)]
        if not runs:
            return
        if len(runs) > MANY_RANGES:
            gone = {row for first, last in runs for row in range(first, last + 1)}
            self.beginResetModel()
            self._items = [item for row, item in enumerate(self._items) if row not in gone]
            self._rows_changed()
            self.endResetModel()
            return
        for first, last in reversed(runs):
            self.beginRemoveRows(QModelIndex(), first, last)
            for item in self._items[first : last + 1]:
                self._keys.discard(item.key)
            del self._items[first : last + 1]
            self._index = None
            self.endRemoveRows()

    def clear(self) -> None:
        self.beginResetModel()
        self._items.clear()
        self._rows_changed()
        self.endResetModel()

    def update(self, item_id: int, *, status: Pending | Status | None = None, progress: float | None = None,
               message: str | None = None, output: Path | None = None) -> None:
        row = self._row_of(item_id)
        if row is None:  # removed meanwhile
            return
        self._change(self._items[row], status, progress, message, output)
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def update_many(self, changes: dict[int, dict]) -> None:
        """:meth:`update` of many rows (item id -> its keyword arguments) with one ``dataChanged`` over
        the rows they span: a Start of 20,000 rows is one signal, not 20,000."""
        rows = []
        for item_id, change in changes.items():
            row = self._row_of(item_id)
            if row is not None:  # removed meanwhile
                self._change(self._items[row], **change)
                rows.append(row)
        self._rows_data_changed(rows)

    def _rows_data_changed(self, rows: list[int]) -> None:
        """One ``dataChanged`` over the span of ``rows`` (none when empty)."""
        if rows:
            self.dataChanged.emit(self.index(min(rows), 0), self.index(max(rows), len(COLUMNS) - 1))

    @staticmethod
    def _change(item: QueueItem, status: Pending | Status | None = None, progress: float | None = None,
                message: str | None = None, output: Path | None = None) -> None:
        if status is not None:
            item.status = status
        if progress is not None:
            item.progress = min(1.0, max(0.0, progress))
        if message is not None:
            item.message = message
        if output is not None:
            item.output = output

    def set_progress(self, item_id: int, fraction: float) -> None:
        """A film's frame progress, kept without a signal: :meth:`show_progress` tells the views of all
        the rows changed so (a film's frames come hundreds a second; a row repainted and the row shown
        in the viewer described again at each one made a run of films keep the window busy)."""
        row = self._row_of(item_id)
        if row is not None:
            self._change(self._items[row], progress=fraction)
            self._quiet.add(item_id)

    def show_progress(self) -> None:
        """One ``dataChanged`` over the rows :meth:`set_progress` changed since the last one (where they are
        now: rows may have been removed meanwhile)."""
        rows = [row for row in map(self._row_of, self._quiet) if row is not None]
        self._quiet = set()
        self._rows_data_changed(rows)

    def set_hints(self, item_id: int, count: int, note: str = "") -> None:
        """What the row says of its color hints."""
        row = self._row_of(item_id)
        if row is None:
            return
        item = self._items[row]
        item.hints, item.hints_note = count, note
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def apply_result(self, item_id: int, result: FileResult) -> None:
        progress = 1.0 if result.status in (DONE, SKIPPED) else None
        item = self.item_by_id(item_id)
        keep = item is not None and item.kind == TaskKind.FRAMES and item.output is not None  # its video
        message = result.reason or ""
        if result.status == SKIPPED:
            message += "; tick “Redo files whose output exists” to colorize it again"
        if result.warnings:  # what the run noticed about the file (a damaged EXIF block dropped...): in the details
            message = "\n".join([message, *(f"warning: {w}" for w in result.warnings)]).strip("\n")
        self.update(item_id, status=result.status, progress=progress, message=message,
                    output=None if keep else result.output)

    def _row_of(self, item_id: int) -> int | None:
        if self._index is None:
            self._index = {item.id: row for row, item in enumerate(self._items)}
        return self._index.get(item_id)

    def _rows_changed(self) -> None:
        """Rows went: the set of keys follows at once, the id index when next asked."""
        self._keys = {item.key for item in self._items}
        self._index = None


class ProgressDelegate(QStyledItemDelegate):
    """Draws the Progress column as a bar with its percentage over it, never clipped by the style."""

    def paint(self, painter, option, index) -> None:
        value = index.data(PROGRESS_ROLE)
        if value is None:
            super().paint(painter, option, index)
            return
        palette = option.palette
        rect = option.rect.adjusted(3, 3, -3, -3)
        painter.save()
        painter.setPen(palette.color(QPalette.ColorRole.Mid))
        painter.setBrush(palette.color(QPalette.ColorRole.Base))
        painter.drawRect(rect.adjusted(0, 0, -1, -1))
        fill = QColor(palette.color(QPalette.ColorRole.Highlight))
        fill.setAlpha(110)
        painter.fillRect(rect.adjusted(1, 1, -1, -1).adjusted(0, 0, -round((rect.width() - 2) * (1 - value)), 0), fill)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, f"{round(float(value) * 100)}%")
        painter.restore()

"""The queue: one row per input (a photo, a video or a folder of frames) and what became of it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionProgressBar

from colorizer.desktop.core import Status, TaskKind, TextEnum
from colorizer.desktop.pipeline.report import FileResult


class Pending(TextEnum):
    """Where an item is before it has a result (a :class:`Status`)."""

    WAITING = "waiting"
    QUEUED = "queued"
    WORKING = "working"


WAITING, QUEUED, WORKING = Pending
DONE, SKIPPED, FAILED, CANCELLED = Status.DONE, Status.SKIPPED, Status.FAILED, Status.CANCELLED

COLUMNS = ("Name", "Type", "Status", "Progress", "Error")
NAME, TYPE, STATUS, PROGRESS, ERROR = range(len(COLUMNS))
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
    output: Path | None = None
    id: int = 0

    def __post_init__(self) -> None:
        self.kind = TaskKind(self.kind)  # ValueError for an unknown kind
        self.id = self.id or next(_ids)

    @property
    def key(self) -> Path:
        return self.source.resolve()


class QueueModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._items: list[QueueItem] = []
        self._rows: dict[int, int] = {}  # item id -> row

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
            return (item.source.name, item.kind, item.status, f"{round(item.progress * 100)}%",
                    item.message)[col]
        if role == PROGRESS_ROLE:
            return item.progress
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == NAME:
                return str(item.source) + (f"\n→ {item.output}" if item.output else "")
            return item.message or None
        if role == Qt.ItemDataRole.ForegroundRole and col in (STATUS, ERROR) and item.status in _STATUS_COLORS:
            return QBrush(_STATUS_COLORS[item.status])
        return None

    # ------------------------------------------------------------------ queue operations
    def items(self) -> list[QueueItem]:
        return list(self._items)

    def item(self, row: int) -> QueueItem:
        return self._items[row]

    def item_by_id(self, item_id: int) -> QueueItem | None:
        row = self._rows.get(item_id)
        return None if row is None else self._items[row]

    def add(self, items: list[QueueItem]) -> list[QueueItem]:
        """Append the items not already queued (same file); returns those added."""
        known = {i.key for i in self._items}
        new = []
        for item in items:
            if item.key not in known:
                known.add(item.key)
                new.append(item)
        if new:
            start = len(self._items)
            self.beginInsertRows(QModelIndex(), start, start + len(new) - 1)
            self._items.extend(new)
            self._reindex()
            self.endInsertRows()
        return new

    def remove_rows(self, rows: list[int]) -> None:
        for row in sorted(set(rows), reverse=True):
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._items[row]
            self._reindex()
            self.endRemoveRows()

    def clear(self) -> None:
        self.beginResetModel()
        self._items.clear()
        self._reindex()
        self.endResetModel()

    def update(self, item_id: int, *, status: Pending | Status | None = None, progress: float | None = None,
               message: str | None = None, output: Path | None = None) -> None:
        row = self._rows.get(item_id)
        if row is None:  # removed meanwhile
            return
        item = self._items[row]
        if status is not None:
            item.status = status
        if progress is not None:
            item.progress = min(1.0, max(0.0, progress))
        if message is not None:
            item.message = message
        if output is not None:
            item.output = output
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def apply_result(self, item_id: int, result: FileResult) -> None:
        progress = 1.0 if result.status in (DONE, SKIPPED) else None
        self.update(item_id, status=result.status, progress=progress, message=result.reason or "",
                    output=result.output)

    def _reindex(self) -> None:
        self._rows = {item.id: row for row, item in enumerate(self._items)}


class ProgressDelegate(QStyledItemDelegate):
    """Draws the Progress column as a progress bar."""

    def paint(self, painter, option, index) -> None:
        value = index.data(PROGRESS_ROLE)
        if value is None:
            super().paint(painter, option, index)
            return
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 3, -2, -3)
        bar.minimum, bar.maximum = 0, 100
        bar.progress = round(float(value) * 100)
        bar.text = f"{bar.progress}%"
        bar.textVisible = True
        bar.state = option.state
        style = option.widget.style() if option.widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, option.widget)

"""The log pane: records of the ``colorizer`` loggers, from any thread, shown in the window."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QPlainTextEdit


class _Bridge(QObject):
    record = Signal(int, str)  # level, formatted message


class QtLogHandler(logging.Handler):
    """A logging handler that forwards each record as a Qt signal (queued to the GUI thread)."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.bridge = _Bridge()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.bridge.record.emit(record.levelno, self.format(record))
        except RuntimeError:  # the window is gone (Qt object deleted)
            pass
        except Exception:
            self.handleError(record)


class LogView(QPlainTextEdit):
    MAX_LINES = 5000

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(self.MAX_LINES)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)  # a long reason is read whole, no scrolling
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.setFont(font)
        self.setPlaceholderText("Messages of the run appear here.")

    def attach(self, logger: logging.Logger, level: int = logging.INFO) -> QtLogHandler:
        """Show ``logger``'s records here from now on; detach the handler returned when done."""
        handler = QtLogHandler(level)
        handler.bridge.record.connect(self.append_record, Qt.ConnectionType.QueuedConnection)
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > level:
            logger.setLevel(level)
        return handler

    def append_record(self, level: int, text: str) -> None:
        """Add a line; the view follows the newest line unless the user scrolled up to read."""
        bar = self.verticalScrollBar()
        following = bar.value() >= bar.maximum() - 2
        if level >= logging.ERROR:
            text = f"<span style='color:#b01c1c'>{_escape(text)}</span>"
        elif level >= logging.WARNING:
            text = f"<span style='color:#a05a00'>{_escape(text)}</span>"
        else:
            text = _escape(text)
        self.appendHtml(text)
        if following:
            bar.setValue(bar.maximum())


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>")

"""The drop target at the top of the queue, with the "Add files" / "Add folder" buttons."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout


def local_paths(mime: QMimeData) -> list[Path]:
    """The local files and folders in a drag's data (other URLs are ignored)."""
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []


class DropZone(QFrame):
    dropped = Signal(list)  # list[Path]
    add_files_clicked = Signal()
    add_folder_clicked = Signal()
    add_frames_clicked = Signal()

    _STYLE = ("DropZone {{ border: 2px dashed {border}; border-radius: 8px; background: {bg}; }}"
              "QLabel {{ border: none; background: transparent; }}")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        title = QLabel("<b>Drop photos, videos or folders here</b>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint = QLabel("Subfolders included; their tree is mirrored in the output folder.")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setWordWrap(True)
        hint.setStyleSheet("color: palette(mid);")
        self.add_files_button = QPushButton("Add files…")
        self.add_folder_button = QPushButton("Add folder…")
        self.add_files_button.clicked.connect(self.add_files_clicked)
        self.add_frames_button = QPushButton("Add frame folder…")
        self.add_frames_button.setToolTip("A folder of numbered frames (name_0001.png, ...), colorized as one film")
        self.add_folder_button.clicked.connect(self.add_folder_clicked)
        self.add_frames_button.clicked.connect(self.add_frames_clicked)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.add_files_button)
        buttons.addWidget(self.add_folder_button)
        buttons.addWidget(self.add_frames_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(hint)
        layout.addLayout(buttons)
        self._highlight(False)

    def _highlight(self, on: bool) -> None:
        self.setStyleSheet(self._STYLE.format(border="#3d7edb" if on else "palette(mid)",
                                              bg="rgba(61, 126, 219, 40)" if on else "transparent"))

    def dragEnterEvent(self, event) -> None:
        if local_paths(event.mimeData()):
            event.acceptProposedAction()
            self._highlight(True)
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dragLeaveEvent(self, event) -> None:
        self._highlight(False)

    def dropEvent(self, event) -> None:
        self._highlight(False)
        paths = local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.dropped.emit(paths)

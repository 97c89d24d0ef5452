"""What the selected queue row shows: its original and result before/after (films frame by frame,
with a slider: videos and frame folders alike) and its details in full (the whole error message).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QPlainTextEdit

from colorizer.desktop.app.compare_view import ComparePanel, FrameSource
from colorizer.desktop.app.preview import FrameFolderFrames, PreviewLoader, VideoFrames
from colorizer.desktop.app.queue_model import DONE, FAILED, QUEUED, SKIPPED, WORKING, QueueItem
from colorizer.desktop.core import TaskKind
from colorizer.desktop.pipeline.frames import find_frame_sequences

log = logging.getLogger(__name__)

FINISHED = (DONE, SKIPPED)  # the row's output is there: colorized now, or before (a skipped row)

DETAILS_HINT = "Select a row to see where its output goes and, for a failure, the whole message."


class ItemViewer(QObject):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.compare = ComparePanel()
        self.details = QPlainTextEdit(readOnly=True)
        self.details.setPlaceholderText(DETAILS_HINT)
        self.details.setMaximumHeight(110)
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.preview = PreviewLoader(self)
        self.preview.ready.connect(self._show_preview)
        self.item: QueueItem | None = None
        self._shown_status = None

    def clear(self) -> None:
        self.item = None
        self.preview.forget()
        self.compare.clear()
        self.details.setPlainText("")

    def show(self, item: QueueItem | None) -> None:
        """Show ``item`` (None: nothing selected)."""
        if item is None:
            self.clear()
            return
        # the same film shown again (its run finished, its row changed): the slider stays on its frame,
        # where hint mode edits, with its key frames marked; another row starts at the film's first frame
        same = item is self.item
        frame, keys = (self.compare.current_frame(), self.compare.scrubber.key_frames()) if same else (0, [])
        self.item = item
        self._shown_status = item.status
        self.refresh_details(item)
        caption = str(item.source) + (f"  →  {item.output}" if item.status in FINISHED and item.output else "")
        if item.kind == TaskKind.IMAGE:
            self.compare.set_frame_source(None)
            self.compare.caption.setText(caption)
            self.preview.request(item.source, item.output if item.status in FINISHED else None)
            return
        self.preview.forget()
        try:
            frames = self._film_frames(item)
            self.compare.set_frame_source(frames, frame)
            if frames is not None and keys:
                self.compare.set_key_frames(keys)
        except Exception as exc:  # an unreadable frame must not take the window down
            log.warning("cannot show %s: %s", item.source, exc)
            frames = None
            self.compare.set_frame_source(None)
        if frames is None:
            self.compare.view.clear(f"{item.source.name}: no frame can be shown (see the log).")
            self.compare.caption.setText(caption)

    def refresh_details(self, item: QueueItem) -> None:
        """The details pane and *Show in folder* for ``item`` as it is now (called as its row changes)."""
        self.details.setPlainText(item.details())
        self.compare.show_button.setEnabled(self.result_path(item) is not None)

    def item_changed(self, item: QueueItem) -> None:
        """The shown item's row changed: its details follow; once it is finished its result is shown."""
        if item is not self.item:
            return
        changed = item.status != self._shown_status
        if changed and item.status in FINISHED:
            self.show(item)
        else:
            if changed and item.status in (QUEUED, WORKING):
                self.compare.release_frames()  # its output is about to be written: no file of it is held open
            self.refresh_details(item)
        self._shown_status = item.status

    @staticmethod
    def result_path(item: QueueItem) -> Path | None:
        """The item's output when it is finished and there (a file, or a folder of frames)."""
        finished = item.status in FINISHED and item.output is not None
        return item.output if finished and item.output.exists() else None

    def _film_frames(self, item: QueueItem) -> FrameSource | None:
        done = item.status in FINISHED and item.output is not None
        if item.kind == TaskKind.VIDEO:
            return VideoFrames(item.source, item.output if done else None)
        sequences = find_frame_sequences(item.source)
        if len(sequences) != 1:
            return None
        frames_dir = None
        if done:  # the frames are in the output folder; a video made of them lies inside it
            frames_dir = item.output.parent if item.output.suffix else item.output
        return FrameFolderFrames(list(sequences[0].frames), frames_dir)

    def _show_preview(self, before, after, message: str) -> None:
        item = self.item
        if item is None:
            return
        if message:
            self.compare.view.clear(message)
            return
        if after is None:
            message = {FAILED: "Failed (see the details)", SKIPPED: "Skipped"}.get(item.status, "Not colorized yet")
        self.compare.view.set_images(before, after, message=message)

    def wait(self) -> None:
        self.preview.wait()

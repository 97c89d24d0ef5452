"""The dialog shown while TensorRT builds an engine for this GPU (first use only; then cached)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QProgressDialog, QWidget

TEXT = ("Preparing the model for this GPU (TensorRT engine build).\n"
        "This happens once and can take a few minutes; the engine is cached for later runs.")


class EngineBuildDialog(QProgressDialog):
    def __init__(self, parent: QWidget | None, on_cancel: Callable[[], None]) -> None:
        super().__init__(TEXT, "Cancel", 0, 0, parent)
        self.setWindowTitle("Building the TensorRT engine")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setAutoClose(False)
        self.setAutoReset(False)
        self.setMinimumDuration(0)
        self.setMinimumWidth(460)
        self.canceled.connect(on_cancel)

    def show_progress(self, phase: str, step: int, total: int) -> None:
        """One of TensorRT's build phases advanced (``total`` 0: a phase of unknown length)."""
        if self.wasCanceled():
            return
        self.setLabelText(f"{TEXT}\n\n{phase}: {step} / {total}" if total else f"{TEXT}\n\n{phase}")
        if total > 0:
            self.setMaximum(total)
            self.setValue(min(step, total))
        else:
            self.setMaximum(0)  # busy indicator
        if not self.isVisible():
            self.show()

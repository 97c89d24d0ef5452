"""The questions the window asks (each a function, so tests can answer instead of a person)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

from colorizer.desktop.pipeline.frames import FrameSequence


def ask_film_or_photos(parent: QWidget, folder: Path, sequence: FrameSequence) -> str | None:
    """A folder of numbered frames was added: "film", "photos", or None to leave it out."""
    box = QMessageBox(QMessageBox.Icon.Question, "A folder of frames?",
                      f"{folder.name} holds {len(sequence)} numbered frames ({sequence.pattern}).\n\n"
                      "Colorize them as one film (a video, with colors kept steady from frame to frame), "
                      "or as separate photos?", parent=parent)
    film = box.addButton("One film", QMessageBox.ButtonRole.AcceptRole)
    photos = box.addButton("Separate photos", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(film)
    box.exec()
    return {film: "film", photos: "photos"}.get(box.clickedButton())


_RUN_IN_PROGRESS = ("A run is in progress. Stop it and quit?\n\nFiles being written are finished first; "
                    "the rest are colorized the next time you start.")
_RUN_ENDED = "The run has ended: nothing is left to stop. Quit?"


def confirm_stop(parent: QWidget, run_ended=None) -> bool:
    """Stop the run in progress and quit? ``run_ended``: a signal of the run's end, which changes the
    question while it is open (the run may end while the user reads it)."""
    buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
    box = QMessageBox(QMessageBox.Icon.Question, "Stop colorizing?", _RUN_IN_PROGRESS, buttons, parent)
    box.setDefaultButton(QMessageBox.StandardButton.No)

    def ended(*_) -> None:
        box.setWindowTitle("Quit Colorizer?")
        box.setText(_RUN_ENDED)

    if run_ended is not None:
        run_ended.connect(ended)
    try:
        return box.exec() == QMessageBox.StandardButton.Yes
    finally:
        if run_ended is not None:
            run_ended.disconnect(ended)

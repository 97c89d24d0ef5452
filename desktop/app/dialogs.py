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


def confirm_stop(parent: QWidget) -> bool:
    """Stop the run in progress and quit?"""
    answer = QMessageBox.question(parent, "Stop colorizing?",
                                  "A run is in progress. Stop it and quit?\n\nFiles being written are "
                                  "finished first; the rest are colorized the next time you start.",
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes

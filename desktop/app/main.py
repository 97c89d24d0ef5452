"""Entry point of the desktop app (the ``colorizer`` command): ``colorizer [FILES OR FOLDERS...]``."""

from __future__ import annotations

import logging
import signal
import sys
from importlib.resources import files
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from colorizer.allocator import keep_freed_memory
from colorizer.desktop.app.settings import APPLICATION, ORGANIZATION, default_store
from colorizer.desktop.app.window import MainWindow


def app_icon() -> QIcon:
    icons = files("colorizer.assets") / "icons"
    icon = QIcon()
    for name in ("colorizer.svg", "colorizer.png"):
        path = Path(str(icons / name))
        if path.is_file():
            icon.addFile(str(path))
    return icon


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    keep_freed_memory()  # each photo's arrays reuse the last one's pages (colorizer.allocator)
    app = QApplication.instance() or QApplication(argv)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("Colorizer")
    app.setDesktopFileName("colorizer")
    app.setWindowIcon(app_icon())
    window = MainWindow(default_store())
    window.show()
    inputs = [Path(a) for a in argv[1:] if not a.startswith("-")]
    if inputs:
        window.add_paths(inputs)
    # Ctrl-C in the terminal closes the window the normal way (asking first during a run); the timer
    # lets Python run its signal handler while Qt's event loop waits.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    wake = QTimer(interval=300)
    wake.timeout.connect(lambda: None)
    wake.start()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())

"""Entry point of the desktop app (the ``colorizer`` command): ``colorizer [FILES OR FOLDERS...]``.

Before Qt is loaded it checks, on Linux, that a window can open here at all (a display, the system
libraries Qt's X11 platform needs), and says what is missing and how to install it instead of
Qt's plugin error. ``--version`` prints the version; ``--run-and-quit`` (for checks of an install)
colorizes the files given, then quits: exit code 0 when every file was done.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import signal
import sys
from importlib.resources import files
from pathlib import Path

from colorizer import __version__

USAGE = """usage: colorizer [FILES OR FOLDERS...]

Opens the Colorizer window with the given photos, videos and folders queued.
  --version        print the version and exit
  --run-and-quit   colorize the given files with the saved settings, then quit (exit code 0: all done)
"""

# The system libraries Qt's X11 platform (libqxcb, libQt6XcbQpa) and QtGui load, with the Debian /
# Ubuntu package of each. Qt >= 6.5 needs libxcb-cursor0, which desktops often lack.
_SYSTEM_LIBRARIES = (
    ("libxcb-cursor.so.0", "libxcb-cursor0"), ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"), ("libxcb-image.so.0", "libxcb-image0"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"), ("libxcb-util.so.1", "libxcb-util1"),
    ("libxcb-randr.so.0", "libxcb-randr0"), ("libxcb-shape.so.0", "libxcb-shape0"),
    ("libxcb-shm.so.0", "libxcb-shm0"), ("libxcb-sync.so.1", "libxcb-sync1"),
    ("libxcb-xfixes.so.0", "libxcb-xfixes0"), ("libxcb-xkb.so.1", "libxcb-xkb1"),
    ("libxcb-render.so.0", "libxcb-render0"), ("libxcb.so.1", "libxcb1"), ("libX11-xcb.so.1", "libx11-xcb1"),
    ("libX11.so.6", "libx11-6"), ("libxkbcommon.so.0", "libxkbcommon0"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"), ("libEGL.so.1", "libegl1"), ("libGL.so.1", "libgl1"),
    ("libfontconfig.so.1", "libfontconfig1"), ("libfreetype.so.6", "libfreetype6"),
    ("libglib-2.0.so.0", "libglib2.0-0"), ("libdbus-1.so.3", "libdbus-1-3"),
)


def _loadable(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def _x_display_opens(display: str) -> bool:
    """Whether the X server at ``display`` accepts a connection (libxcb, present wherever X is)."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return True  # reported as a missing library instead
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode(), None)
    try:
        return connection is not None and xcb.xcb_connection_has_error(connection) == 0
    finally:
        if connection is not None:
            xcb.xcb_disconnect(connection)


def _has_wayland_plugin() -> bool:
    """Whether this PySide6 has Qt's Wayland platform (the bundle leaves it out: XWayland serves)."""
    if getattr(sys, "frozen", False):
        root = Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "PySide6"
    else:
        spec = importlib.util.find_spec("PySide6")
        if spec is None or not spec.submodule_search_locations:
            return False
        root = Path(list(spec.submodule_search_locations)[0])
    return any((root / "Qt" / "plugins" / "platforms").glob("libqwayland*.so"))


def _startup_problem(environ=None, loadable=_loadable, display_opens=_x_display_opens,
                     wayland_plugin=_has_wayland_plugin) -> str | None:
    """Why the window cannot open here, with what to do about it; None when it can (or Qt will tell).

    Linux only, and only for Qt's X11 platform (the one Qt takes with a DISPLAY, or when
    QT_QPA_PLATFORM=xcb): Wayland, offscreen and other platforms are left to Qt."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return None
    platform = env.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0]
    if platform and platform != "xcb":
        return None
    wayland = bool(env.get("WAYLAND_DISPLAY")) and env.get("XDG_SESSION_TYPE") == "wayland"
    if not platform and wayland and wayland_plugin():
        return None
    display = env.get("DISPLAY", "")
    if not display:
        return ("Colorizer's window cannot start: there is no display (DISPLAY is not set).\n"
                "Start it from a desktop session; on a server, colorize with colorize-batch, or run the window "
                "in a virtual display: xvfb-run -a colorizer (sudo apt install xvfb).")
    missing = [package for soname, package in _SYSTEM_LIBRARIES if not loadable(soname)]
    if missing:
        return ("Colorizer's window cannot start: system libraries that Qt needs are missing: "
                f"{', '.join(missing)}.\nInstall them (Debian, Ubuntu) with:\n  sudo apt install {' '.join(missing)}\n"
                "(colorize-batch works without them.)")
    if not display_opens(display):
        return (f"Colorizer's window cannot start: the X display {display!r} does not accept a connection "
                "(is the desktop session running, and is this user allowed on it?).")
    return None


def app_icon():
    from PySide6.QtGui import QIcon

    icons = files("colorizer.assets") / "icons"
    icon = QIcon()
    for name in ("colorizer.svg", "colorizer.png"):
        path = Path(str(icons / name))
        if path.is_file():
            icon.addFile(str(path))
    return icon


def licence_file() -> Path | None:
    """The third-party licence file of an installed bundle (beside its executables), if any."""
    path = Path(sys.executable).resolve().parent / "THIRD-PARTY-LICENSES.txt"
    return path if getattr(sys, "frozen", False) and path.is_file() else None


def show_about(window) -> None:
    import onnxruntime
    from PySide6 import __version__ as pyside_version
    from PySide6.QtWidgets import QMessageBox

    lines = [f"<b>Colorizer {__version__}</b>", "Brings color back to black-and-white photos and film.",
             f"ONNX Runtime {onnxruntime.__version__} · Qt (PySide6) {pyside_version} · "
             f"Python {sys.version.split()[0]}"]
    licences = licence_file()
    if licences is not None:
        lines.append(f"Licences of the bundled software: {licences}")
    QMessageBox.about(window, "About Colorizer", "<br>".join(lines))


def _run_and_quit(window) -> dict:
    """Start the queue once the backends are known; close the window when the run ends. The exit
    code (0: every file done) is put in the dict returned."""
    from PySide6.QtCore import QTimer

    from colorizer.desktop.core import Status

    exit_code = {"code": 1}

    def finished(outcome) -> None:
        done = [r for r in outcome.results if r.status in (Status.DONE, Status.SKIPPED)]
        print(f"colorizer: {len(done)} of {len(outcome.results)} done on {outcome.backend}"
              + (f" ({outcome.error})" if outcome.error else ""), flush=True)
        exit_code["code"] = 0 if done and len(done) == len(outcome.results) and not outcome.error else 1
        window.confirm_stop = lambda: True
        QTimer.singleShot(0, window.close)  # closing waits for the previews being loaded

    def start_when_ready() -> None:
        if window.settings_panel.detection is None:
            QTimer.singleShot(100, start_when_ready)
        elif not window.queue.items():
            print("colorizer: nothing to colorize", flush=True)
            exit_code["code"] = 2
            window.close()
        else:
            window.start()

    window.run_finished.connect(finished)
    QTimer.singleShot(0, start_when_ready)
    return exit_code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    if "--version" in argv[1:]:
        print(f"colorizer {__version__}")
        return 0
    if "-h" in argv[1:] or "--help" in argv[1:]:
        print(USAGE, end="")
        return 0
    problem = _startup_problem()
    if problem is None:
        from colorizer.desktop.app.qt_check import pyside_refcount_problem

        problem = pyside_refcount_problem()
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QAction, QKeySequence
    from PySide6.QtWidgets import QApplication, QToolBar

    from colorizer.allocator import keep_freed_memory
    from colorizer.desktop.app.settings import APPLICATION, ORGANIZATION, default_store
    from colorizer.desktop.app.window import MainWindow

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    keep_freed_memory()  # each photo's arrays reuse the last one's pages (colorizer.allocator)
    app = QApplication.instance() or QApplication(argv)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("Colorizer")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("colorizer")
    app.setWindowIcon(app_icon())
    window = MainWindow(default_store())
    about = QAction("About", window, shortcut=QKeySequence(QKeySequence.StandardKey.HelpContents),
                    toolTip=f"About Colorizer {__version__}: versions and licences (F1)")
    about.triggered.connect(lambda: show_about(window))
    window.addAction(about)
    toolbar = window.findChild(QToolBar, "run-toolbar")
    if toolbar is not None:
        toolbar.addSeparator()
        toolbar.addAction(about)
    window.show()
    inputs = [Path(a) for a in argv[1:] if not a.startswith("-")]
    if inputs:
        window.add_paths(inputs)
    run_and_quit = _run_and_quit(window) if "--run-and-quit" in argv[1:] else None
    # Ctrl-C in the terminal closes the window the normal way (asking first during a run); the timer
    # lets Python run its signal handler while Qt's event loop waits.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    wake = QTimer(interval=300)
    wake.timeout.connect(lambda: None)
    wake.start()
    code = app.exec()
    return run_and_quit["code"] if run_and_quit is not None else code


if __name__ == "__main__":
    sys.exit(main())

"""The Linux bundle (packaging/): the window's start-up check and --version here, in every run; the
bundle itself (build, tarball, window under Xvfb, .deb) only with COLORIZER_BUNDLE_TEST=1, since it
takes minutes and installs a package:

    COLORIZER_BUNDLE_TEST=1 pytest tests/test_bundle.py -m bundle        # builds first (about 5 min here)
    COLORIZER_BUNDLE_TEST=1 COLORIZER_BUNDLE_SKIP_BUILD=1 pytest tests/test_bundle.py -m bundle
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from colorizer import __version__
from colorizer.desktop.app import main as app_main

REPO = Path(__file__).resolve().parents[1]


def test_version_everywhere_is_the_projects(capsys):
    text = (REPO / "pyproject.toml").read_text()
    assert f'version = "{__version__}"' in text
    assert app_main.main(["colorizer", "--version"]) == 0
    assert capsys.readouterr().out.strip() == f"colorizer {__version__}"
    from colorizer.desktop.cli import main as cli_main

    with pytest.raises(SystemExit) as exit_:
        cli_main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"colorize-batch {__version__}"


def problem(env, missing=(), opens=True, wayland_plugin=True):
    return app_main._startup_problem(env, loadable=lambda soname: soname not in missing,
                                     display_opens=lambda display: opens, wayland_plugin=lambda: wayland_plugin)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the check is for Linux's X11")
def test_startup_problem_says_what_is_missing_and_how_to_install_it():
    assert problem({"DISPLAY": ":0"}) is None
    no_display = problem({})
    assert "no display" in no_display and "xvfb-run" in no_display
    missing = problem({"DISPLAY": ":0"}, missing={"libxcb-cursor.so.0", "libxcb-icccm.so.4"})
    assert "sudo apt install libxcb-cursor0 libxcb-icccm4" in missing
    assert "does not accept a connection" in problem({"DISPLAY": ":9"}, opens=False)
    # platforms other than X11 are left to Qt: offscreen (tests), a Wayland session
    assert problem({"QT_QPA_PLATFORM": "offscreen"}, missing={"libxcb-cursor.so.0"}) is None
    wayland = {"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland", "DISPLAY": ":0"}
    assert problem(wayland, missing={"libxcb-cursor.so.0"}) is None
    # ... unless this Qt has no Wayland platform (the bundle): then XWayland, and X11's libraries count
    assert "libxcb-cursor0" in problem(wayland, missing={"libxcb-cursor.so.0"}, wayland_plugin=False)
    assert "no display" in problem({"QT_QPA_PLATFORM": "xcb"})


def test_wayland_plugin_is_found_where_pyside6_has_it():
    pyside = pytest.importorskip("PySide6")
    platforms = Path(pyside.__file__).parent / "Qt" / "plugins" / "platforms"
    assert app_main._has_wayland_plugin() == any(platforms.glob("libqwayland*.so"))


def test_startup_problem_checks_the_real_libraries_of_this_machine():
    """Every library the check names is one the X11 platform plugin really loads (or QtGui), so the
    message never asks for a package Qt does not need."""
    plugin = Path(sys.modules["PySide6"].__file__).parent if "PySide6" in sys.modules else None
    if plugin is None:
        pyside = pytest.importorskip("PySide6")
        plugin = Path(pyside.__file__).parent
    qt = plugin / "Qt"
    needed = set()
    for lib in (qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6",
                qt / "lib" / "libQt6Gui.so.6", qt / "lib" / "libQt6DBus.so.6"):
        if not lib.is_file():
            pytest.skip(f"no {lib.name} in this PySide6")
        out = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True, check=False).stdout
        needed |= {line.split("[")[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line}
    named = {soname for soname, _ in app_main._SYSTEM_LIBRARIES}
    assert named <= needed, named - needed


@pytest.mark.bundle
@pytest.mark.skipif(os.environ.get("COLORIZER_BUNDLE_TEST") != "1",
                    reason="builds and installs the bundle (minutes): set COLORIZER_BUNDLE_TEST=1")
def test_bundle_builds_runs_and_installs(tmp_path):
    """packaging/build.py, then packaging/check_bundle.py: the bundled colorize-batch under env -i gives
    the source tree's files byte for byte; the bundled window runs a photo under Xvfb and quits; the
    .deb installs, both commands run from the PATH, and dpkg -P leaves nothing behind."""
    if os.environ.get("COLORIZER_BUNDLE_SKIP_BUILD") != "1":
        build = subprocess.run([sys.executable, str(REPO / "packaging" / "build.py")], check=False, timeout=1800)
        assert build.returncode == 0
    check = subprocess.run([sys.executable, str(REPO / "packaging" / "check_bundle.py"), "--repeats", "1",
                            "--json", str(tmp_path / "check.json")], capture_output=True, text=True, timeout=1800,
                           check=False)
    print(check.stdout[-6000:], check.stderr[-3000:])
    assert check.returncode == 0, check.stdout[-3000:]

"""Fixtures of the desktop app's tests (``pytest_plugins = ["app_fixtures"]``): model, store, stop_runs."""

from __future__ import annotations

import pytest
from app_helpers import stop_all
from PySide6.QtCore import QSettings


@pytest.fixture
def store(tmp_path) -> QSettings:
    """Settings in a temporary ini file, never the user's."""
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def stop_runs():
    """Register windows whose runs are stopped after the test."""
    windows = []
    yield windows.append
    stop_all(windows)

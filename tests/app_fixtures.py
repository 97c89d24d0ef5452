"""Fixtures of the desktop app's tests (``pytest_plugins = ["app_fixtures"]``): model, store, stop_runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_helpers import stop_all
from PySide6.QtCore import QSettings


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A tiny exported model (random weights)."""
    from tiny_model import tiny_onnx

    return tiny_onnx(tmp_path_factory.mktemp("app_model"))


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

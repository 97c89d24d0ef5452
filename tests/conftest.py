"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic import synthetic_photo, write_rgb


@pytest.fixture(scope="session")
def model(tmp_path_factory) -> Path:
    """A tiny exported model (random weights, FP32 ONNX): made once for the whole run."""
    from tiny_model import tiny_onnx

    return tiny_onnx(tmp_path_factory.mktemp("model"))


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """16 colorful PNG photos in nested folders."""
    root = tmp_path / "photos"
    for i in range(16):
        write_rgb(root / f"set{i % 2}" / f"img_{i:02d}.png", synthetic_photo(i))
    return root

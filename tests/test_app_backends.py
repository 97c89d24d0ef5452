"""Which backends can run here: detected once in the background, only those offered, the rest explained
in plain words, a GPU chooser when there are several, and no GPU probe before a CPU run."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

pytest_plugins = ["app_fixtures"]  # the fixtures model, store, stop_runs

from dataclasses import replace  # noqa: E402

from app_helpers import (  # noqa: E402
    NO_GPU,
    RUN_TIMEOUT_MS,
    TWO_GPUS,
    make_window,
    photos,
    slow_opener,
    two_gpus,
)

from colorizer.desktop.backends.detect import _list_gpus, detect_backends, resolve_choice  # noqa: E402
from colorizer.gpu import GpuInfo  # noqa: E402


def test_detection_without_a_gpu_offers_the_cpu_and_gives_no_install_advice():
    d = detect_backends(**NO_GPU)
    assert d.usable() == ["cpu"] and d.best() == "cpu" and d.gpus == ()
    assert all("graphics card" in c.reason and "pip" not in c.reason for c in d.choices if not c.usable)
    assert resolve_choice("auto", d) == "cpu" and resolve_choice("cuda", d) == "cuda"
    # with the GPU build of ONNX Runtime but no GPU: still no GPU choice
    assert detect_backends(providers=["CUDAExecutionProvider", "CPUExecutionProvider"], gpus=[],
                           trt_modules=["tensorrt_rtx"]).usable() == ["cpu"]


def test_detection_with_gpus():
    d = detect_backends(**TWO_GPUS)
    assert d.usable() == ["cuda", "cpu"] and d.best() == "cuda" and len(d.gpus) == 2
    assert "TensorRT is not installed" in d.status("tensorrt").reason
    assert resolve_choice("auto", d) == "auto"  # GPU backends are tried first, falling back as they must
    cpu_ort = detect_backends(providers=["CPUExecutionProvider"], gpus=TWO_GPUS["gpus"], trt_modules=[])
    assert "onnxruntime-gpu" in cpu_ort.status("cuda").reason  # advice only where there is a GPU to use it
    gpus = [GpuInfo("A", "8.6"), GpuInfo("B", "8.9")]
    assert _list_gpus(lambda i: gpus[i] if i < len(gpus) else None) == tuple(gpus)
    assert _list_gpus(lambda i: 1 / 0) == ()  # a broken driver is no GPU, not a crash


def test_a_cpu_only_machine_is_offered_the_cpu_and_told_why_not_the_gpu(qtbot, store, tmp_path, model, stop_runs):
    store.setValue("settings/backend", "cuda")  # chosen on another machine, or before the GPU went
    opened = []
    window = make_window(qtbot, store, open_backend=slow_opener(0, opened))
    panel = window.settings_panel
    assert [panel.backend.itemData(i) for i in range(panel.backend.count())] == ["auto", "cpu"]
    assert panel.backend.currentData() == "auto" and panel.backend.itemText(0) == "Auto (best available) → CPU"
    note = panel.backend_note.text()
    assert "GPU: TensorRT and GPU: CUDA need an NVIDIA graphics card" in note and "chosen before" in note
    assert "pip" not in note and not panel.gpu.isVisibleTo(window)
    stop_runs(window)
    panel.set_settings(replace(window.app_settings, model=str(model), output_dir=str(tmp_path / "out"),
                               render_size=32))
    window.add_paths(photos(tmp_path / "in", 1))
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS):
        window.start()
    assert opened[0][0][1] == "cpu"  # auto went straight to the CPU: no GPU probe first


def test_several_gpus_get_a_chooser_and_the_run_uses_the_one_chosen(qtbot, store, tmp_path, model, stop_runs):
    opened = []
    window = make_window(qtbot, store, model, tmp_path / "out", open_backend=slow_opener(0, opened), detect=two_gpus)
    stop_runs(window)
    panel = window.settings_panel
    assert panel.gpu.isVisibleTo(window) and panel.gpu.count() == 2
    assert panel.gpu.itemText(1) == "1: NVIDIA GeForce RTX 4090"
    assert [panel.backend.itemData(i) for i in range(panel.backend.count())] == ["auto", "cuda", "cpu"]
    panel.gpu.setCurrentIndex(1)
    assert window.app_settings.gpu == 1
    window.add_paths(photos(tmp_path / "in", 1))
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS):
        window.start()
    assert opened[0][1]["device"] == 1

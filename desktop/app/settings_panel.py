"""The settings form: edits an :class:`AppSettings` and says which backend is really in use."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from colorizer.desktop.app.settings import OUTPUT_FORMATS, VIDEO_CODECS, AppSettings
from colorizer.desktop.backends import BACKEND_LABELS

FORMAT_LABELS = {"same": "Same as input", "jpeg": "JPEG", "png": "PNG", "tiff": "TIFF", "webp": "WebP",
                 "bmp": "BMP"}
CODEC_LABELS = {"h264": "H.264 (MP4 / MKV)", "lossless": "Lossless (FFV1, MKV)"}
SHIPPED_MODEL = "Shipped model"


def _combo(labels: dict[str, str], keys) -> QComboBox:
    box = QComboBox()
    for key in keys:
        box.addItem(labels.get(key, key.upper()), key)
    return box


def _select(box: QComboBox, key: str) -> None:
    box.setCurrentIndex(max(0, box.findData(key)))


class SettingsPanel(QWidget):
    changed = Signal(object)  # AppSettings

    def __init__(self, settings: AppSettings, parent=None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._loading = False

        self.output_dir = QLineEdit()
        self.output_dir.setPlaceholderText(str(settings.output_folder))
        self.output_dir.setToolTip("Outputs mirror the dropped folders' trees here")
        browse_out = QToolButton(text="…", toolTip="Choose the output folder")
        browse_out.clicked.connect(self._choose_output)
        self.model = QLineEdit(readOnly=True)
        browse_model = QToolButton(text="…", toolTip="Choose an ONNX model or a TensorRT engine")
        browse_model.clicked.connect(self._choose_model)
        shipped = QToolButton(text="↺", toolTip="Use the shipped model")
        shipped.clicked.connect(lambda: self._set_model(""))
        self.backend = _combo(BACKEND_LABELS, BACKEND_LABELS)
        self.backend_in_use = QLabel("—")
        self.backend_in_use.setToolTip("The backend the last run really used (read back from the runtime)")
        self.render_size = QSpinBox(minimum=0, maximum=8192, singleStep=64, suffix=" px")
        self.render_size.setSpecialValueText("Model default")
        self.render_size.setToolTip("Long side the model sees; color is upsampled to full resolution")
        self.saturation = QDoubleSpinBox(minimum=0.0, maximum=3.0, singleStep=0.1, decimals=2)
        self.saturation.setToolTip("Strength of the added color (1 = as predicted)")
        self.output_format = _combo(FORMAT_LABELS, OUTPUT_FORMATS)
        self.quality = QSpinBox(minimum=1, maximum=100)
        self.quality.setToolTip("JPEG and WebP quality")
        self.overwrite = QCheckBox("Redo files whose output exists")
        self.overwrite.setToolTip("Off: existing outputs are skipped, so a run resumes where it stopped")
        self.video_codec = _combo(CODEC_LABELS, VIDEO_CODECS)
        self.video_quality = QSpinBox(minimum=0, maximum=51, prefix="CRF ")
        self.video_quality.setToolTip("H.264 quality: lower is better and larger (18 looks like the source)")
        self.temporal = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.1, decimals=2)
        self.temporal.setToolTip("Smooths color across frames (reset at scene cuts) to stop flicker; 0 = off")

        model_group = QGroupBox("Model and hardware")
        form = QFormLayout(model_group)
        form.addRow("Model", _row(self.model, browse_model, shipped))
        form.addRow("Backend", self.backend)
        form.addRow("In use", self.backend_in_use)
        form.addRow("Render size", self.render_size)
        photo_group = QGroupBox("Output")
        form = QFormLayout(photo_group)
        form.addRow("Folder", _row(self.output_dir, browse_out))
        form.addRow("Saturation", self.saturation)
        form.addRow("Format", self.output_format)
        form.addRow("Quality", self.quality)
        form.addRow("Existing", self.overwrite)
        video_group = QGroupBox("Video")
        form = QFormLayout(video_group)
        form.addRow("Codec", self.video_codec)
        form.addRow("Quality", self.video_quality)
        form.addRow("Smoothing", self.temporal)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for group in (model_group, photo_group, video_group):
            layout.addWidget(group)
        layout.addStretch(1)

        self.set_settings(settings)
        for signal in (self.output_dir.editingFinished, self.backend.currentIndexChanged,
                       self.render_size.valueChanged, self.saturation.valueChanged,
                       self.output_format.currentIndexChanged, self.quality.valueChanged,
                       self.overwrite.toggled, self.video_codec.currentIndexChanged,
                       self.video_quality.valueChanged, self.temporal.valueChanged):
            signal.connect(self._edited)

    # ------------------------------------------------------------------ state
    def settings(self) -> AppSettings:
        return self._settings

    def set_settings(self, s: AppSettings) -> None:
        self._loading = True
        try:
            self.output_dir.setText(s.output_dir)
            self._show_model(s.model)
            _select(self.backend, s.backend)
            self.render_size.setValue(s.render_size)
            self.saturation.setValue(s.saturation)
            _select(self.output_format, s.output_format)
            self.quality.setValue(s.quality)
            self.overwrite.setChecked(s.overwrite)
            _select(self.video_codec, s.video_codec)
            self.video_quality.setValue(s.video_quality)
            self.temporal.setValue(s.temporal_smoothing)
        finally:
            self._loading = False
        self._settings = s
        self._enable_dependent()

    def _enable_dependent(self) -> None:
        self.quality.setEnabled(self._settings.output_format in ("same", "jpeg", "webp"))
        self.video_quality.setEnabled(self._settings.video_codec != "lossless")

    def show_backend(self, name: str) -> None:
        self.backend_in_use.setText(name or "—")

    def _edited(self, *_) -> None:
        if self._loading:
            return
        s = replace(self._settings, output_dir=self.output_dir.text().strip(), backend=self.backend.currentData(),
                    render_size=self.render_size.value(), saturation=round(self.saturation.value(), 2),
                    output_format=self.output_format.currentData(), quality=self.quality.value(),
                    overwrite=self.overwrite.isChecked(), video_codec=self.video_codec.currentData(),
                    video_quality=self.video_quality.value(), temporal_smoothing=round(self.temporal.value(), 2))
        self._apply(s)

    def _apply(self, s: AppSettings) -> None:
        if s != self._settings:
            self._settings = s
            self._enable_dependent()
            self.changed.emit(s)

    # ------------------------------------------------------------------ model and folders
    def _show_model(self, model: str) -> None:
        self.model.setText(Path(model).name if model else SHIPPED_MODEL)
        self.model.setToolTip(model or "The model installed with the app")

    def _set_model(self, model: str) -> None:
        self._show_model(model)
        self._apply(replace(self._settings, model=model))

    def _choose_model(self) -> None:
        start = str(Path(self._settings.model).parent) if self._settings.model else ""
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model", start,
                                              "Models (*.onnx *.engine *.plan *.trt);;All files (*)")
        if path:
            self._set_model(path)

    def _choose_output(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder", str(self._settings.output_folder))
        if path:
            self.output_dir.setText(path)
            self._edited()


def _row(*widgets: QWidget) -> QWidget:
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(4)
    for i, w in enumerate(widgets):
        layout.addWidget(w, 1 if i == 0 else 0)
    return box


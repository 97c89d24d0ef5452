"""The settings form: edits an :class:`AppSettings`, offers the backends that can run here (and says
why the others cannot), a GPU chooser when there are several, and which backend is really in use."""

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

from colorizer.desktop.app.settings import (
    FRAMES_OUTPUTS,
    MAX_RENDER_SIZE,
    OUTPUT_FORMATS,
    VIDEO_CODECS,
    AppSettings,
    default_output_dir,
)
from colorizer.desktop.backends import AUTO, BACKEND_LABELS
from colorizer.desktop.backends.detect import Detection

FORMAT_LABELS = {"same": "Same as input", "jpeg": "JPEG", "png": "PNG", "tiff": "TIFF", "webp": "WebP",
                 "bmp": "BMP"}
CODEC_LABELS = {"h264": "H.264 (MP4 / MKV)", "lossless": "Lossless (FFV1, MKV)"}
FRAMES_LABELS = {"video": "A video (frames kept beside it)", "frames": "Numbered frames only"}
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
        self.output_dir.setToolTip("Outputs mirror the dropped folders' trees here (empty: the default, "
                                   f"{default_output_dir()})")
        browse_out = QToolButton(text="…", toolTip="Choose the output folder")
        browse_out.clicked.connect(self._choose_output)
        self.model = QLineEdit(readOnly=True)
        browse_model = QToolButton(text="…", toolTip="Choose an ONNX model or a TensorRT engine")
        browse_model.clicked.connect(self._choose_model)
        shipped = QToolButton(text="↺", toolTip="Use the shipped model")
        shipped.clicked.connect(lambda: self._set_model(""))
        self.backend = _combo(BACKEND_LABELS, BACKEND_LABELS)
        self.backend_note = QLabel("Looking for GPUs…")
        self.backend_note.setWordWrap(True)
        self.backend_note.setStyleSheet("font-style: italic;")
        self.gpu = QComboBox()
        self.gpu.setToolTip("The graphics card that runs the model")
        self.detection: Detection | None = None
        self.backend_in_use = QLabel("—")
        self.backend_in_use.setToolTip("The backend the last run really used (read back from the runtime)")
        self.render_size = QSpinBox(minimum=0, maximum=MAX_RENDER_SIZE, singleStep=64, suffix=" px")
        self.render_size.setSpecialValueText("Model default")
        self.render_size.setToolTip("Long side the model sees; color is upsampled to full resolution")
        self.saturation = QDoubleSpinBox(minimum=0.0, maximum=3.0, singleStep=0.1, decimals=2)
        self.saturation.setToolTip("Strength of the added color (1 = as predicted)")
        self.output_format = _combo(FORMAT_LABELS, OUTPUT_FORMATS)
        self.quality = QSpinBox(minimum=1, maximum=100)
        self.quality.setToolTip("JPEG and WebP quality")
        self.overwrite = QCheckBox("Redo files whose output exists")
        self.overwrite.setToolTip("Off: existing outputs are skipped, so a run resumes where it stopped.\n"
                                  "For this session only: it is off again at the next launch.")
        self.video_codec = _combo(CODEC_LABELS, VIDEO_CODECS)
        self.video_quality = QSpinBox(minimum=0, maximum=51, prefix="CRF ")
        self.video_quality.setToolTip("H.264 quality: lower is better and larger (18 looks like the source)")
        self.temporal = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.1, decimals=2)
        self.temporal.setToolTip("Smooths color across frames (reset at scene cuts) to stop flicker; 0 = off")
        self.frames_output = _combo(FRAMES_LABELS, FRAMES_OUTPUTS)
        self.frames_output.setToolTip("What a folder of numbered frames becomes: a video encoded with the "
                                      "settings above (its colorized frames are kept beside it), or frames only")

        self._build_groups(browse_model, shipped, browse_out)
        self.set_settings(settings)
        for signal in (self.output_dir.editingFinished, self.backend.currentIndexChanged,
                       self.render_size.valueChanged, self.saturation.valueChanged,
                       self.output_format.currentIndexChanged, self.quality.valueChanged,
                       self.overwrite.toggled, self.video_codec.currentIndexChanged,
                       self.video_quality.valueChanged, self.temporal.valueChanged, self.gpu.currentIndexChanged,
                       self.frames_output.currentIndexChanged):
            signal.connect(self._edited)

    def _build_groups(self, browse_model: QWidget, shipped: QWidget, browse_out: QWidget) -> None:
        model_group = QGroupBox("Model and hardware")
        form = QFormLayout(model_group)
        form.addRow("Model", _row(self.model, browse_model, shipped))
        form.addRow("Backend", self.backend)
        form.addRow("", self.backend_note)
        form.addRow("GPU", self.gpu)
        self._model_form = form
        form.setRowVisible(self.gpu, False)
        form.addRow("In use", self.backend_in_use)
        form.addRow("Render size", self.render_size)
        photo_group = QGroupBox("Output")
        form = QFormLayout(photo_group)
        form.addRow("Folder", _row(self.output_dir, browse_out))
        form.addRow("Saturation", self.saturation)
        form.addRow("Format", self.output_format)
        form.addRow("Quality", self.quality)
        form.addRow("Existing", self.overwrite)
        video_group = QGroupBox("Videos and frame folders")
        form = QFormLayout(video_group)
        form.addRow("Codec", self.video_codec)
        form.addRow("Quality", self.video_quality)
        form.addRow("Smoothing", self.temporal)
        form.addRow("Frame folders", self.frames_output)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for group in (model_group, photo_group, video_group):
            layout.addWidget(group)
        layout.addStretch(1)

    # ------------------------------------------------------------------ state
    def settings(self) -> AppSettings:
        return self._settings

    def set_settings(self, s: AppSettings) -> None:
        self._loading = True
        try:
            self.output_dir.setText(str(s.output_folder))  # the real folder, also when it is the default
            self._show_model(s.model)
            _select(self.backend, s.backend if self.backend.findData(s.backend) >= 0 else AUTO)
            _select(self.gpu, s.gpu)
            self.render_size.setValue(s.render_size)
            self.saturation.setValue(s.saturation)
            _select(self.output_format, s.output_format)
            self.quality.setValue(s.quality)
            self.overwrite.setChecked(s.overwrite)
            _select(self.video_codec, s.video_codec)
            self.video_quality.setValue(s.video_quality)
            self.temporal.setValue(s.temporal_smoothing)
            _select(self.frames_output, s.frames_output)
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
        folder = self.output_dir.text().strip()
        if not folder:
            self.output_dir.setText(str(default_output_dir()))
        folder = "" if folder in ("", str(default_output_dir())) else folder
        s = replace(self._settings, output_dir=folder, backend=self.backend.currentData(),
                    gpu=self.gpu.currentData() if self.gpu.count() else self._settings.gpu,
                    frames_output=self.frames_output.currentData(),
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

    # ------------------------------------------------------------------ backends
    def set_detection(self, detection: Detection) -> None:
        """Offer what can run here (``auto`` first), say why the rest cannot, and list the GPUs."""
        self.detection = detection
        wanted = self._settings.backend
        self._loading = True
        try:
            self.backend.clear()
            self.backend.addItem(BACKEND_LABELS[AUTO] + f" → {BACKEND_LABELS[detection.best()]}", AUTO)
            for choice in detection.usable():
                self.backend.addItem(BACKEND_LABELS[choice], choice)
            self.gpu.clear()
            for index, info in enumerate(detection.gpus):
                self.gpu.addItem(f"{index}: {info.name}", index)
            _select(self.gpu, self._settings.gpu)
        finally:
            self._loading = False
        self._model_form.setRowVisible(self.gpu, len(detection.gpus) > 1)
        note = _reasons(detection)
        if wanted not in detection.usable() and wanted != AUTO:
            note.insert(0, f"{BACKEND_LABELS[wanted]} was chosen before but cannot run here; Auto is used.")
            wanted = AUTO
        self.backend_note.setText("Not available here:\n" + "\n".join(note) if note else
                                  f"{len(detection.gpus)} GPU(s) found." if detection.gpus else "")
        self.backend_note.setVisible(bool(self.backend_note.text()))
        self._loading = True
        try:
            _select(self.backend, wanted)
        finally:
            self._loading = False
        self._settings = replace(self._settings, backend=wanted)

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



def _reasons(detection: Detection) -> list[str]:
    """'GPU: TensorRT and GPU: CUDA need an NVIDIA graphics card...': one line per reason."""
    by_reason: dict[str, list[str]] = {}
    for c in detection.choices:
        if not c.usable:
            by_reason.setdefault(c.reason, []).append(c.label)
    lines = []
    for reason, labels in by_reason.items():
        if len(labels) > 1 and reason.startswith("needs "):
            reason = "need " + reason.removeprefix("needs ")
        lines.append(f"{' and '.join(labels)} {reason}." if reason.startswith("need") else
                     f"{' and '.join(labels)}: {reason}.")
    return lines

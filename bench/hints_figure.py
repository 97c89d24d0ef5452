"""The README's color hints picture: gray | automatic colors | with 3 hints (the hints drawn as dots).

Made through ``colorize-batch`` itself (the shipped model and the shipped training-free spread), on
the sample astronaut photo, whose flag the model leaves gray: two red hints on the stripes and a
blue one on the canton (the same three the app's hint-mode screenshot puts there).

    python bench/hints_figure.py [--model M.onnx] [--out docs/images/hints.png]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "assets" / "samples" / "astronaut.jpg"
HINTS = ((20, 290, "#b22234"), (75, 200, "#b22234"), (22, 60, "#3c3b6e"))  # x, y in the photo; sRGB


def colorize(src: Path, out: Path, model: Path | None, *extra: str) -> Path:
    cmd = [sys.executable, "-m", "colorizer.desktop.cli", str(src), "-o", str(out), "-q", *extra]
    if model is not None:
        cmd += ["--model", str(model)]
    subprocess.run(cmd, check=True)
    return out / src.name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="an exported model (default: the shipped one)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "hints.png")
    args = parser.parse_args()

    from colorizer.hints import HintPoint, PhotoHints, sidecar_path, write_hints

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in" / PHOTO.name
        src.parent.mkdir()
        src.write_bytes(PHOTO.read_bytes())
        automatic = colorize(src, Path(tmp) / "auto", args.model)
        write_hints(sidecar_path(src), PhotoHints(tuple(HintPoint(x, y, c) for x, y, c in HINTS)))
        hinted = colorize(src, Path(tmp) / "hinted", args.model)
        panels = [Image.open(p).convert("RGB") for p in (src, automatic, hinted)]
    draw = ImageDraw.Draw(panels[2])
    for x, y, color in HINTS:
        draw.ellipse((x - 7, y - 7, x + 7, y + 7), fill=color, outline="white", width=2)
    w, h = panels[0].size
    label_h = 28
    grid = Image.new("RGB", (3 * w + 2 * 8, h + label_h), "white")
    font = ImageFont.load_default(size=18)
    labels = ("gray scan", "automatic colors", "with 3 hints (dots)")
    for i, (panel, label) in enumerate(zip(panels, labels, strict=True)):
        grid.paste(panel, (i * (w + 8), label_h))
        ImageDraw.Draw(grid).text((i * (w + 8) + 6, 4), label, fill="black", font=font)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out, optimize=True)
    flag = np.asarray(panels[1])[40:300, 0:80].reshape(-1, 3).mean(axis=0), np.asarray(panels[2])[
        40:300, 0:80].reshape(-1, 3).mean(axis=0)
    print(f"wrote {args.out}; mean RGB of the flag automatic {flag[0].round()}, with hints {flag[1].round()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Take the README screenshot of the desktop app: the sample photos colorized, one shown before/after.

    xvfb-run -s "-screen 0 1600x1000x24" python bench/screenshot_app.py            # shipped model
    xvfb-run -s "-screen 0 1600x1000x24" python bench/screenshot_app.py --model runs/mine/mine.onnx

Runs the real window (any Qt platform: xcb under Xvfb, or QT_QPA_PLATFORM=offscreen), with settings
in a temporary file (never the user's) and outputs in a temporary folder, then saves the window to
docs/screenshots/app.png. Without --model it uses the shipped model, or, when none is installed
yet, a tiny untrained model exported on the fly (its colors are meaningless: say so if you publish it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, help="ONNX model (default: the shipped one, else a tiny test model)")
    p.add_argument("--samples", type=Path, default=REPO / "assets" / "samples")
    p.add_argument("--select", default="astronaut.jpg", help="the photo shown in the before/after viewer")
    p.add_argument("--split", type=float, default=0.5, help="position of the split line (0..1)")
    p.add_argument("--size", default="1440x900", help="window size WxH")
    p.add_argument("-o", "--output", type=Path, default=REPO / "docs" / "screenshots" / "app.png")
    p.add_argument("--timeout", type=float, default=300)
    args = p.parse_args(argv)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from colorizer.desktop.app.main import app_icon
    from colorizer.desktop.app.window import MainWindow
    from colorizer.desktop.backends import default_model_path

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationDisplayName("Colorizer")
    app.setWindowIcon(app_icon())
    with tempfile.TemporaryDirectory(prefix="colorizer-shot-") as tmp:
        tmp = Path(tmp)
        model = args.model
        if model is None and not default_model_path().is_file():
            model = tiny_model(tmp / "model")
            print(f"no shipped model installed: using a tiny untrained model ({model})", file=sys.stderr)
        store = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(store)
        s = replace(window.app_settings, model=str(model or ""), output_dir=str(tmp / "colorized"), backend="auto")
        window.settings_panel.set_settings(s)
        width, height = (int(v) for v in args.size.split("x"))
        window.resize(width, height)
        window.show()
        window.add_paths([args.samples])
        outcome = {}
        window.run_finished.connect(lambda o: outcome.setdefault("run", o))
        window.start()
        if not wait_until(app, lambda: "run" in outcome, args.timeout):
            print("the run did not finish in time", file=sys.stderr)
            window.cancel_run()
            wait_until(app, lambda: not window.running, 60)
            return 1
        names = [item.source.name for item in window.queue.items()]
        window.table.selectRow(names.index(args.select) if args.select in names else 0)
        if not wait_until(app, window.compare.view.has_result, 60):
            print("the viewer did not load the result", file=sys.stderr)
            return 1
        window.compare.view.set_split(args.split)
        wait_until(app, lambda: False, 0.5)  # let the last repaints and the log settle
        args.output.parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(str(args.output)):
            print(f"could not write {args.output}", file=sys.stderr)
            return 1
        print(f"{args.output} ({outcome['run'].backend}, model {model or 'shipped'})")
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

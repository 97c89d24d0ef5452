#!/usr/bin/env python3
"""Check the Colorizer bundle that packaging/build.py made, the way a user without Python gets it.

    python packaging/check_bundle.py                 # the tarball, the window, the .deb (as root)
    python packaging/check_bundle.py --no-deb        # without installing the .deb
    python packaging/check_bundle.py --screenshot docs/screenshots/bundle.png

Run it with the project's development Python (the one `colorize-batch` of the source tree runs in):
the bundle's outputs are compared with the source tree's, file by file, byte for byte. Every bundled
command runs under `env -i` (no virtual environment, no Python packages, a bare PATH). Steps:

1. unpack the .tar.gz into a temporary folder; `colorize-batch --version`, `colorizer --version`;
2. the bundled colorize-batch on assets/samples (as they are, --format tiff, --format png) against
   the source tree's colorize-batch: identical files; time to the first output, both;
3. the window under Xvfb (started here when there is no DISPLAY): time from launch to the window
   on screen; `colorizer --run-and-quit` on a sample photo; its clear failures without a display
   and without libxcb-cursor0 (hidden in a private mount namespace, as root);
4. the .deb (root only): dpkg -i, both commands from the PATH, the desktop entry (validated, and
   launched by its Exec= line under Xvfb, --screenshot saving the screen), dpkg -P, and nothing
   left under /opt, /usr/bin, /usr/share.

Needs: Xvfb and xwininfo (apt install xvfb x11-utils) for the window; ImageMagick's `import` and
xdotool for --screenshot. Exit code 0 when every check passed; a JSON summary with the timings is
written with --json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SAMPLES = REPO / "assets" / "samples"
BARE_PATH = "/usr/local/bin:/usr/bin:/bin"
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"}


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []
        self.figures: dict = {}

    def ok(self, name: str, passed: bool, detail: str = "") -> bool:
        print(f"{'PASS' if passed else 'FAIL'}  {name}" + (f": {detail}" if detail else ""), flush=True)
        if not passed:
            self.failed.append(name)
        return passed


def project_version() -> str:
    text = (REPO / "pyproject.toml").read_text()
    return re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    """What `env -i` leaves, plus a home and a PATH without any Python environment."""
    return {"HOME": str(home), "PATH": BARE_PATH, **extra}


def run(cmd, env=None, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True, timeout=timeout, **kwargs)


def first_output_time(cmd, env, out: Path, timeout: float = 600) -> tuple[float, float, subprocess.CompletedProcess]:
    """(seconds to the first photo written, seconds in all, the finished process)."""
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.monotonic()
    proc = subprocess.Popen([str(c) for c in cmd], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = None
    while proc.poll() is None:
        if first is None and out.is_dir() and any(p.suffix.lower() in PHOTO_SUFFIXES for p in out.iterdir()):
            first = time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            proc.kill()
        time.sleep(0.005)
    total = time.monotonic() - t0
    stdout, stderr = proc.communicate()
    return (first if first is not None else total), total, subprocess.CompletedProcess(proc.args, proc.returncode,
                                                                                       stdout, stderr)


def compare_trees(a: Path, b: Path) -> tuple[list[str], list[str]]:
    """(identical files, differing or missing files), report files left out."""
    same, diff = [], []
    names = {p.relative_to(a) for p in a.rglob("*") if p.is_file()} | {p.relative_to(b) for p in b.rglob("*")
                                                                          if p.is_file()}
    for rel in sorted(names):
        if rel.name.startswith((".colorize", "colorize-report")):
            continue
        pa, pb = a / rel, b / rel
        (same if pa.is_file() and pb.is_file() and pa.read_bytes() == pb.read_bytes() else diff).append(str(rel))
    return same, diff


# --------------------------------------------------------------------------- X display
class Display:
    """The DISPLAY to use: the caller's, or an Xvfb started here (stopped by close())."""

    def __init__(self, size: str = "1600x1000x24") -> None:
        self.proc = None
        self.name = os.environ.get("DISPLAY", "")
        if self.name or not shutil.which("Xvfb"):
            return
        for n in range(90, 140):
            if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
                self.proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", size, "-nolisten", "tcp"],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                self.name = f":{n}"
                deadline = time.monotonic() + 10
                while not Path(f"/tmp/.X11-unix/X{n}").exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
                return

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


def window_viewable(display: str, title: str = "Colorizer") -> bool:
    out = run(["xwininfo", "-display", display, "-name", title], timeout=5)
    return out.returncode == 0 and "IsViewable" in out.stdout


def time_to_window(cmd, env, display: str, timeout: float = 60) -> float | None:
    """Seconds from launch until the window is on screen (xwininfo); the app is then stopped."""
    t0 = time.monotonic()
    proc = subprocess.Popen([str(c) for c in cmd], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = None
    try:
        while time.monotonic() - t0 < timeout and proc.poll() is None:
            if window_viewable(display):
                seen = time.monotonic() - t0
                break
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGINT)  # the app closes its window the normal way
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return seen


# --------------------------------------------------------------------------- the checks
def check_cli(c: Checks, bundle: Path, source_cmd: list[str], tmp: Path, repeats: int) -> None:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    version = project_version()
    for command in ("colorize-batch", "colorizer"):
        out = run([bundle / command, "--version"], env=bare_env(home))
        c.ok(f"{command} --version (env -i)", out.returncode == 0 and out.stdout.strip() == f"{command} {version}",
             out.stdout.strip() or out.stderr.strip()[-300:])
    # color hints: a sidecar beside one sample (the hint model's guidance, the spread), same bytes both ways
    hinted = tmp / "hinted-samples"
    shutil.copytree(SAMPLES, hinted, dirs_exist_ok=True)
    (hinted / "astronaut.jpg.hints.json").write_text(json.dumps(
        {"format": "colorizer-hints", "version": 1, "points": [{"x": 20, "y": 290, "color": "#b22234"},
                                                                {"x": 22, "y": 60, "color": "#3c3b6e"}]}))
    for i, (label, inputs, extra) in enumerate((("as the inputs", SAMPLES, []),
                                                ("--format tiff", SAMPLES, ["--format", "tiff"]),
                                                ("--format png", SAMPLES, ["--format", "png"]),
                                                ("with a hints sidecar", hinted, []))):
        ob, os_ = tmp / f"bundle-{i}", tmp / f"source-{i}"
        rb = run([bundle / "colorize-batch", inputs, "-o", ob, "-q", *extra], env=bare_env(home))
        rs = run([*source_cmd, inputs, "-o", os_, "-q", *extra])
        if not c.ok(f"bundled colorize-batch {label}", rb.returncode == 0, rb.stderr.strip()[-500:]):
            continue
        if not c.ok(f"source colorize-batch {label}", rs.returncode == 0, rs.stderr.strip()[-500:]):
            continue
        same, diff = compare_trees(ob, os_)
        report = json.loads((ob / "colorize-report.json").read_text())
        used = sum(1 for f in report.get("files", []) if f.get("hints"))
        c.ok(f"outputs identical, bundle vs source ({label})",
             bool(same) and not diff and used == (inputs == hinted),
             f"{len(same)} identical, {used} photo(s) with hints in the report" + (f", differ: {diff}" if diff else ""))
    # time to the first output: one photo, fresh processes, median of `repeats`
    photo = sorted(SAMPLES.glob("*.jpg"))[0]
    times = {"bundle": [], "source": []}
    for _ in range(repeats):
        for who, cmd, env in (("bundle", [bundle / "colorize-batch"], bare_env(home)), ("source", source_cmd, None)):
            first, total, proc = first_output_time([*cmd, photo, "-o", tmp / f"first-{who}", "-q"], env,
                                                   tmp / f"first-{who}")
            if proc.returncode == 0:
                times[who].append((first, total))
    for who, values in times.items():
        if values:
            c.figures[f"cli_first_output_s_{who}"] = round(statistics.median(v[0] for v in values), 2)
            c.figures[f"cli_total_s_{who}"] = round(statistics.median(v[1] for v in values), 2)
    print(f"      first output ({photo.name}, median of {repeats}): bundle "
          f"{c.figures.get('cli_first_output_s_bundle')} s, source {c.figures.get('cli_first_output_s_source')} s")


def check_window(c: Checks, bundle: Path, source_gui: list[str] | None, tmp: Path, display: str,
                 repeats: int) -> None:
    home = tmp / "home-gui"
    home.mkdir(exist_ok=True)
    env = bare_env(home, DISPLAY=display, LANG="C.UTF-8")
    out = run([bundle / "colorizer"], env=bare_env(home), timeout=30)
    c.ok("window without a display: says so", out.returncode == 1 and "no display" in out.stderr,
         out.stderr.strip().splitlines()[0] if out.stderr.strip() else f"exit {out.returncode}")
    cursor = run(["sh", "-c", "readlink -f $(/sbin/ldconfig -p | awk '/libxcb-cursor.so.0 /{print $NF; exit}')"])
    lib = cursor.stdout.strip()
    if os.geteuid() == 0 and shutil.which("unshare") and lib and Path(lib).is_file():
        hidden = run(["unshare", "-m", "sh", "-c", f"mount --bind /dev/null {lib} && exec \"$0\"",
                      bundle / "colorizer"], env=env, timeout=60)
        c.ok("window without libxcb-cursor0: says what to install",
             hidden.returncode == 1 and "sudo apt install libxcb-cursor0" in hidden.stderr,
             " / ".join(hidden.stderr.strip().splitlines()[:3]))
    else:
        print("skip  window without libxcb-cursor0 (needs root, unshare and the library installed)")
    if not display:
        c.ok("a display for the window (Xvfb)", False, "no DISPLAY and no Xvfb: apt install xvfb")
        return
    photo = sorted(SAMPLES.glob("*.jpg"))[0]
    t0 = time.monotonic()
    ran = run([bundle / "colorizer", "--run-and-quit", photo], env=env, timeout=300)
    written = home / "Pictures" / "Colorized" / photo.name
    c.ok("bundled window: loads a photo, colorizes it, quits", ran.returncode == 0 and written.is_file(),
         f"{ran.stdout.strip()} ({time.monotonic() - t0:.1f} s)" + ("" if ran.returncode == 0 else ran.stderr[-800:]))
    if shutil.which("xwininfo"):
        for who, cmd, e in (("bundle", [bundle / "colorizer"], env),
                            ("source", source_gui, dict(os.environ, DISPLAY=display, HOME=str(home)))):
            if cmd is None:
                continue
            seen = [t for t in (time_to_window(cmd, e, display) for _ in range(repeats)) if t is not None]
            if c.ok(f"{who} window on screen", bool(seen), f"median {statistics.median(seen):.2f} s" if seen else ""):
                c.figures[f"window_s_{who}"] = round(statistics.median(seen), 2)
    else:
        print("skip  time to the window (no xwininfo: apt install x11-utils)")


def desktop_exec(entry: Path, files: list[Path]) -> list[str]:
    line = next(ln for ln in entry.read_text().splitlines() if ln.startswith("Exec="))
    args = []
    for word in line[len("Exec="):].split():
        if word in ("%F", "%U"):
            args += [str(f) for f in files]
        elif word in ("%f", "%u"):
            args += [str(files[0])] if files else []
        elif not word.startswith("%"):
            args.append(word)
    return args


def screenshot(c: Checks, entry: Path, display: str, tmp: Path, path: Path) -> None:
    """Launch the installed app by its desktop entry's Exec= line in a user's folders, colorize the
    samples (Ctrl+Enter), and save the screen."""
    if not (shutil.which("import") and shutil.which("xdotool")):
        print("skip  screenshot (apt install imagemagick xdotool)")
        return
    home = Path("/home/ada")
    made = not home.exists()
    if not made:
        home = tmp / "ada"
    pictures = home / "Pictures" / "Family scans"
    pictures.mkdir(parents=True, exist_ok=True)
    for p in sorted(SAMPLES.glob("*.jpg")):
        shutil.copy(p, pictures / p.name)
    env = bare_env(home, DISPLAY=display, LANG="C.UTF-8")
    cmd = desktop_exec(entry, [pictures])
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not window_viewable(display) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)
        xenv = dict(os.environ, DISPLAY=display)
        wid = run(["xdotool", "search", "--name", "^Colorizer$"], env=xenv).stdout.split()
        if wid:
            run(["xdotool", "windowmove", wid[0], "0", "0"], env=xenv)
            run(["xdotool", "windowactivate", "--sync", wid[0]], env=xenv)
            run(["xdotool", "windowfocus", "--sync", wid[0]], env=xenv)
            run(["xdotool", "key", "--window", wid[0], "ctrl+Return"], env=xenv)
        out = home / "Pictures" / "Colorized"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (out.is_dir() and list(out.glob("colorize-report-*.json"))):
            time.sleep(0.2)
        time.sleep(3)
        geometry = run(["xwininfo", "-display", display, "-name", "Colorizer"]).stdout
        w = re.search(r"Width: (\d+)", geometry)
        h = re.search(r"Height: (\d+)", geometry)
        crop = ["-crop", f"{w.group(1)}x{h.group(1)}+0+0"] if w and h else []
        path.parent.mkdir(parents=True, exist_ok=True)
        shot = run(["import", "-display", display, "-window", "root", *crop, "+repage", path])
        c.ok("screenshot of the app launched from its desktop entry", shot.returncode == 0 and path.is_file(),
             f"{path} ({' '.join(cmd)})")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if made:
            shutil.rmtree(home, ignore_errors=True)


def check_deb(c: Checks, deb: Path, source_cmd: list[str], tmp: Path, display: str, shot: Path | None) -> None:
    package = run(["dpkg-deb", "-f", deb, "Package"]).stdout.strip()
    if run(["dpkg", "-s", package]).returncode == 0:
        c.ok(f".deb: {package} is not installed before the check", False, "remove it first (dpkg -P)")
        return
    watched = (Path("/opt/colorizer"), Path("/usr/bin/colorizer"), Path("/usr/bin/colorize-batch"),
               Path("/usr/share/applications/colorizer.desktop"))
    before = {p: p.exists() for p in watched}
    inst = run(["dpkg", "-i", deb])
    if not c.ok(f"dpkg -i {deb.name}", inst.returncode == 0, inst.stderr.strip()[-800:]):
        run(["dpkg", "-P", package])
        return
    try:
        files = [Path(p) for p in run(["dpkg", "-L", package]).stdout.split() if p.startswith("/")]
        home = tmp / "home-deb"
        home.mkdir(exist_ok=True)
        version = project_version()
        for command in ("colorize-batch", "colorizer"):
            out = run(["env", "-i", f"HOME={home}", f"PATH={BARE_PATH}", command, "--version"])
            c.ok(f"{command} from the PATH (env -i)", out.stdout.strip() == f"{command} {version}",
                 out.stdout.strip() or out.stderr.strip()[-300:])
        od, os_ = tmp / "deb-out", tmp / "deb-source-out"
        rd = run(["env", "-i", f"HOME={home}", f"PATH={BARE_PATH}", "colorize-batch", SAMPLES, "-o", od, "-q"])
        rs = run([*source_cmd, SAMPLES, "-o", os_, "-q"])
        same, diff = compare_trees(od, os_)
        c.ok("installed colorize-batch: outputs identical to the source tree's",
             rd.returncode == 0 and rs.returncode == 0 and bool(same) and not diff,
             f"{len(same)} identical" + (f", differ: {diff}" if diff else "") + rd.stderr[-300:])
        entry = Path("/usr/share/applications/colorizer.desktop")
        text = entry.read_text() if entry.is_file() else ""
        c.ok("desktop entry with the icon and the photo/video types",
             "Icon=colorizer" in text and "image/jpeg" in text and "video/mp4" in text
             and Path("/usr/share/icons/hicolor/scalable/apps/colorizer.svg").is_file())
        if shutil.which("desktop-file-validate"):
            v = run(["desktop-file-validate", entry])
            c.ok("desktop-file-validate", v.returncode == 0 and not v.stdout.strip(), v.stdout.strip()[-400:])
        if display:
            ran = run(["env", "-i", f"HOME={home}", f"PATH={BARE_PATH}", f"DISPLAY={display}", "LANG=C.UTF-8",
                       *desktop_exec(entry, []), "--run-and-quit", sorted(SAMPLES.glob("*.jpg"))[0]], timeout=300)
            c.ok("installed window (desktop entry's Exec=): runs a photo and quits", ran.returncode == 0,
                 ran.stdout.strip() or ran.stderr[-500:])
            if shot is not None:
                screenshot(c, entry, display, tmp, shot)
    finally:
        rm = run(["dpkg", "-P", package])
        c.ok(f"dpkg -P {package}", rm.returncode == 0, rm.stderr.strip()[-300:])
    left = [str(p) for p in files if p.exists() and not p.is_dir()]
    left += [str(p) for p, existed in before.items() if p.exists() and not existed]
    left += [str(p) for p in files if p.is_dir() and str(p).startswith("/opt/colorizer") and p.exists()]
    c.ok("nothing left behind after dpkg -P (/opt, /usr)", not left, ", ".join(left[:10]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dist", type=Path, default=HERE / "dist", help="where build.py put the packages")
    p.add_argument("--gpu", action="store_true", help="check the GPU edition's packages (on the CPU)")
    p.add_argument("--no-window", action="store_true", help="skip the window checks")
    p.add_argument("--no-deb", action="store_true", help="skip installing the .deb")
    p.add_argument("--screenshot", type=Path, help="save the installed app launched from its desktop entry here")
    p.add_argument("--repeats", type=int, default=3, help="runs per timing (median)")
    p.add_argument("--json", type=Path, help="write the figures and the result here")
    args = p.parse_args(argv)

    for name in ("dist", "screenshot", "json"):
        if getattr(args, name) is not None:
            setattr(args, name, getattr(args, name).resolve())
    version = project_version()
    suffix = "-gpu" if args.gpu else ""
    tarball = args.dist / f"colorizer-{version}-linux-x86_64{suffix}.tar.gz"
    deb = args.dist / f"colorizer{suffix}_{version}_amd64.deb"
    if not tarball.is_file():
        print(f"no {tarball}: run python3 packaging/build.py first", file=sys.stderr)
        return 2
    source_cmd = [sys.executable, "-c", "import sys; from colorizer.desktop.cli import main; sys.exit(main())"]
    source_gui = [sys.executable, "-c", "import sys; from colorizer.desktop.app.main import main; sys.exit(main())"]
    c = Checks()
    where = run([sys.executable, "-c", "import colorizer, os; print(os.path.dirname(colorizer.__file__))"], cwd="/")
    print(f"source tree: colorizer from {where.stdout.strip()} ({sys.executable})")
    tmp = Path(tempfile.mkdtemp(prefix="colorizer-check-"))
    os.chdir(tmp)  # never a checkout, whose colorizer/ folder would shadow the source tree's package
    display = None
    try:
        t0 = time.monotonic()
        with tarfile.open(tarball) as tar:
            tar.extractall(tmp / "unpacked")
        c.figures["unpack_s"] = round(time.monotonic() - t0, 1)
        bundle = next((tmp / "unpacked").iterdir())
        c.figures["unpacked_bytes"] = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file()
                                          and not f.is_symlink())
        c.figures["tarball_bytes"] = tarball.stat().st_size
        if deb.is_file():
            c.figures["deb_bytes"] = deb.stat().st_size
        c.ok("licence file in the bundle", (bundle / "THIRD-PARTY-LICENSES.txt").is_file())
        check_cli(c, bundle, source_cmd, tmp, args.repeats)
        display = None if args.no_window else Display()
        if display is not None:
            check_window(c, bundle, source_gui, tmp, display.name, args.repeats)
        if not args.no_deb:
            if os.geteuid() != 0 or not shutil.which("dpkg"):
                print("skip  .deb (needs root and dpkg)")
            elif not deb.is_file():
                c.ok(f"{deb.name} exists", False)
            else:
                check_deb(c, deb, source_cmd, tmp, display.name if display else "", args.screenshot)
    finally:
        if display is not None:
            display.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(c.figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"failed": c.failed, "figures": c.figures}, indent=2))
    print(("FAILED: " + ", ".join(c.failed)) if c.failed else "all checks passed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())

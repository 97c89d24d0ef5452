#!/usr/bin/env python3
"""Build the Colorizer bundle for Linux: a one-folder PyInstaller freeze of the window (`colorizer`)
and the batch command (`colorize-batch`), as a .tar.gz and a .deb.

    python3 packaging/build.py            # CPU edition -> packaging/dist/
    python3 packaging/build.py --gpu      # GPU edition (onnxruntime-gpu): never run on a GPU, see the README

Needs only the package registries: a virtual environment (default packaging/build/venv-EDITION) gets
a non-editable install of this checkout with the runtime extras (`.[cpu,gui,bundle]`, or `gpu`),
and PyInstaller freezes it with packaging/colorizer.spec. Then, in packaging/dist/:

  colorizer-VERSION-linux-x86_64[-gpu]/          the bundle (runs from wherever it is)
  colorizer-VERSION-linux-x86_64[-gpu].tar.gz    the same, packed
  colorizer[-gpu]_VERSION_amd64.deb              installs it under /opt/colorizer, the commands in
                                                 /usr/bin, a desktop entry with its icon and types
  bundle-info.json                               sizes, versions, the system libraries it loads

The bundle's THIRD-PARTY-LICENSES.txt is generated from the installed distributions' metadata and
licence files (and FFmpeg's own account of its build); the .deb's Depends from the system libraries
the bundled binaries load (dpkg -S on this machine: Debian 12 names; see the README). The build
machine's own libraries are never bundled. No AppImage: see the README ("Install without Python").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
APP_ID = "colorizer"
MIME_TYPES = [
    "image/jpeg", "image/png", "image/tiff", "image/webp", "image/bmp",
    "video/mp4", "video/x-m4v", "video/quicktime", "video/x-matroska", "video/x-msvideo", "video/webm",
    "video/mpeg", "video/mp2t", "video/x-ms-wmv", "video/x-flv", "video/3gpp", "video/ogg", "video/dv",
    "application/mxf",
]
# Distributions in the build environment that are build tools, not part of the bundle.
BUILD_ONLY = {"pip", "setuptools", "wheel", "pyinstaller", "pyinstaller-hooks-contrib", "altgraph", "packaging"}
# Debian 12 library packages renamed with a 't64' suffix in Debian 13 / Ubuntu 24.04 (64-bit time_t).
T64_RENAMED = {"libglib2.0-0", "libssl3", "libasound2", "libpng16-16", "libgtk-3-0", "libcurl4", "libtiff6"}
# Libraries in the wheels' FFmpeg builds whose own licence is the GPL (x264, x265: GPL-2.0-or-later).
GPL_LIBRARIES = ("libx264", "libx265")
# Licence texts Debian keeps (base-files), for licences whose distribution ships no text of its own.
COMMON_LICENSES = {"LGPL-3.0": "LGPL-3", "GPL-2.0": "GPL-2", "GPL-3.0": "GPL-3", "Apache-2.0": "Apache-2.0",
                   "MPL-2.0": "MPL-2.0", "LGPL-2.1": "LGPL-2.1"}


def log(message: str) -> None:
    print(f"[build] {message}", flush=True)


def run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    log(" ".join(str(c) for c in cmd))
    return subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def project_version() -> str:
    text = (REPO / "pyproject.toml").read_text()
    return re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)


# --------------------------------------------------------------------------- environment and freeze
def make_venv(venv: Path, edition: str, python: str, install: bool = True) -> Path:
    py = venv / "bin" / "python"
    if not install and py.exists():
        return py
    if not py.exists():
        run([python, "-m", "venv", venv])
        run([py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    # Non-editable: the freeze takes the installed package (site-packages/colorizer), with its assets.
    # --force-reinstall --no-deps of the project only, so a rebuild always takes this checkout.
    extras = f"{edition},gui,bundle"
    run([py, "-m", "pip", "install", "--quiet", f"{REPO}[{extras}]"])
    run([py, "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(REPO)])
    if edition == "cpu":
        probe = "import importlib.util as u; assert u.find_spec('torch') is None, 'torch in the bundle venv'"
        run([py, "-c", probe])
    return py


def freeze(py: Path, edition: str, work: Path, dist: Path) -> Path:
    env = dict(os.environ, COLORIZER_BUNDLE_EDITION=edition)
    shutil.rmtree(dist / APP_ID, ignore_errors=True)
    work.parent.mkdir(parents=True, exist_ok=True)
    run([py, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN", "--distpath", dist,
         "--workpath", work, HERE / "colorizer.spec"], env=env, cwd=work.parent)  # not the checkout: its
    # colorizer/ folder would shadow the installed package
    return dist / APP_ID


def strip_python(bundle: Path) -> None:
    """libpython from pyenv or a source build carries its symbols (22 MB -> 5.5 MB stripped)."""
    strip = shutil.which("strip")
    for lib in (bundle / "_internal").glob("libpython3*.so*"):
        if strip and not lib.is_symlink():
            run([strip, "--strip-unneeded", lib])


# --------------------------------------------------------------------------- ELF: what the bundle loads
def elf_needed(path: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def glibc_floor(path: Path) -> tuple[int, ...]:
    out = subprocess.run(["readelf", "-V", str(path)], capture_output=True, text=True).stdout
    versions = [tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", out)]
    return max(versions, default=(0,))


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def system_libraries() -> dict[str, str]:
    """soname -> path of the libraries the dynamic linker finds on this machine."""
    out = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"\s+(\S+) \(libc6,x86-64[^)]*\) => (\S+)", line)
        if m:
            found.setdefault(m.group(1), m.group(2))
    return found


def debian_package(path: str) -> str | None:
    for candidate in (path, os.path.realpath(path)):
        for p in (candidate, candidate.replace("/usr/lib/", "/lib/", 1), candidate.replace("/lib/", "/usr/lib/", 1)):
            out = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
            if out.returncode == 0:
                return out.stdout.split(":")[0].strip()
    return None


def dependencies(bundle: Path) -> dict:
    """What the bundle's binaries load from the system: sonames, their Debian packages, glibc floor."""
    files = [p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink() and is_elf(p)]
    inside = {p.name for p in bundle.rglob("*") if p.is_file() or p.is_symlink()}
    needed: dict[str, set[str]] = {}
    floor = (0,)
    for f in files:
        floor = max(floor, glibc_floor(f))
        for soname in elf_needed(f):
            if soname not in inside:
                needed.setdefault(soname, set()).add(str(f.relative_to(bundle)))
    system = system_libraries()
    packages, missing = {}, []
    for soname in sorted(needed):
        path = system.get(soname)
        if path is None:
            missing.append(soname)
            continue
        packages[soname] = debian_package(path) if shutil.which("dpkg") else None
    return {"glibc": ".".join(map(str, floor)), "system_libraries": packages,
            "not_found_here": {s: sorted(needed[s])[:3] for s in missing}}


def depends_line(deps: dict) -> str:
    """The .deb's Depends: each library's package (with its Ubuntu 24.04 / Debian 13 't64' name as an
    alternative, where that rename happened), glibc by version."""
    pkgs = sorted({p.split(":")[0] for p in deps["system_libraries"].values() if p and not p.startswith("libc6")})
    parts = [f"libc6 (>= {deps['glibc']})"]
    for name in pkgs:
        parts.append(f"{name} | {name}t64" if name in T64_RENAMED else name)
    return ", ".join(parts)


# --------------------------------------------------------------------------- licences
LICENCE_SCRIPT = r"""
import ctypes, glob, json, os, sys
from importlib import metadata
out = []
for dist in metadata.distributions():
    name = dist.metadata["Name"]
    files = [str(f) for f in (dist.files or [])]
    texts = []
    for f in dist.files or []:
        base = os.path.basename(str(f)).lower()
        keys = ("license", "licence", "copying", "notice", "thirdparty")
        if any(k in base for k in keys) and not base.endswith(".py"):
            path = dist.locate_file(f)
            if os.path.isfile(path):
                texts.append((str(f), open(path, encoding="utf-8", errors="replace").read()))
    top = set()
    for f in files:
        first = f.split("/")[0]
        if not first.endswith((".dist-info", ".egg-info")) and first not in ("..", "__pycache__"):
            top.add(first.removesuffix(".py"))
    out.append({"name": name, "version": dist.version, "top": sorted(top),
                "license": dist.metadata.get("License-Expression") or dist.metadata.get("License") or "",
                "classifiers": [c for c in dist.metadata.get_all("Classifier") or [] if c.startswith("License")],
                "home": dist.metadata.get("Home-page") or "", "texts": texts})
ffmpeg = {}
site = os.path.dirname(os.path.dirname(metadata.distribution("numpy").locate_file("numpy/__init__.py")))
for libs in ("av.libs", "opencv_python_headless.libs"):
    found = glob.glob(os.path.join(site, libs, "libavutil*"))
    if found:
        lib = ctypes.CDLL(found[0])
        for fn in ("avutil_license", "avutil_configuration"):
            getattr(lib, fn).restype = ctypes.c_char_p
        ffmpeg[libs] = {"license": lib.avutil_license().decode(), "configuration": lib.avutil_configuration().decode(),
                        "libraries": sorted(os.path.basename(p) for p in glob.glob(os.path.join(site, libs, "*")))}
py_licence = os.path.join(sys.base_prefix, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "LICENSE.txt")
json.dump({"dists": out, "ffmpeg": ffmpeg, "python": sys.version.split()[0],
           "python_licence": open(py_licence).read() if os.path.isfile(py_licence) else ""}, sys.stdout)
"""


def model_terms() -> str:
    card = (REPO / "docs" / "model-card.md").read_text()
    m = re.search(r"^## Training data \(and its terms\)\n(.*?)(?=^## )", card, re.S | re.M)
    weights = re.search(r"^### The pretrained weights\n(.*?)(?=^## )", card, re.S | re.M)
    return ("From docs/model-card.md of the Colorizer repository:\n\n"
            + (m.group(1).strip() if m else "(section not found)") + "\n\nThe encoder's starting weights:\n"
            + (weights.group(1).strip() if weights else "(section not found)"))


def spdx_texts(expression: str) -> list[str]:
    return [ident for ident in COMMON_LICENSES if re.search(rf"\b{re.escape(ident)}\b", expression)
            or (ident == "LGPL-3.0" and "LGPL" in expression and "3" in expression)]


def frozen_modules(work: Path) -> set[str]:
    """Top-level names of the Python modules PyInstaller put in the executables' archives."""
    names = set()
    for toc in work.rglob("PYZ-*.toc"):
        names |= set(re.findall(r"\(\s*'([A-Za-z_][\w]*)[\.']", toc.read_text()))
    return names


def write_licences(py: Path, bundle: Path, version: str, work: Path) -> tuple[Path, dict]:
    info = json.loads(subprocess.run([str(py), "-c", LICENCE_SCRIPT], capture_output=True, text=True,
                                     check=True, cwd=work).stdout)  # not the checkout: its egg-info
    internal = bundle / "_internal"
    present = {p.name for p in internal.iterdir()} | frozen_modules(work)
    parts = [f"Colorizer {version}: the software this bundle carries, and its licences.",
             "Generated by packaging/build.py from the installed distributions' metadata and licence files,",
             "FFmpeg's own report of its build (avutil_license, avutil_configuration), and the model card.",
             "", "=" * 100]
    summary, bodies = [], []
    dists = sorted({d["name"].lower(): d for d in info["dists"]}.values(), key=lambda d: d["name"].lower())
    for d in dists:
        key = d["name"].lower().replace("_", "-")
        if key in BUILD_ONLY:
            continue
        bundled = [t for t in d["top"] if t in present or f"{t}.libs" in present]
        if key == "colorizer":
            bundled = ["colorizer"]
        if not bundled:
            continue
        licence = d["license"].splitlines()[0] if d["license"] else "; ".join(d["classifiers"])
        summary.append(f"{d['name']} {d['version']}: {licence}  [{', '.join(bundled)}]")
        body = [f"{d['name']} {d['version']}", f"Licence (from its metadata): {d['license'] or '-'}"]
        if d["classifiers"]:
            body.append("Classifiers: " + "; ".join(d["classifiers"]))
        if d["home"]:
            body.append(f"Home page: {d['home']}")
        for path, text in d["texts"]:
            body += ["", f"--- {path} ---", text.rstrip()]
        if not d["texts"]:
            for ident in spdx_texts(d["license"] + " ".join(d["classifiers"])):
                common = Path("/usr/share/common-licenses") / COMMON_LICENSES[ident]
                if common.is_file():
                    body += ["", f"--- {ident} (the text, as Debian's base-files keeps it) ---",
                             common.read_text().rstrip()]
        bodies.append("\n".join(body))
    parts += ["Python distributions in this bundle (name version: licence [what of it is bundled]):", ""] + summary
    parts += ["", f"Python {info['python']} (the interpreter, libpython): PSF License", "",
              "ONNX model (colorizer/assets/models): the project's own output (MIT, as the project); "
              "see 'The model' below for the terms of the photos it was trained on."]
    parts += ["", "Qt (PySide6/Qt: QtCore, QtGui, QtWidgets, QtDBus, QtSvg, the X11 platform plugin, ICU): under "
              "LGPL-3.0 (the licence PySide6-Essentials states; texts below). The wheel lists no third-party "
              "components of Qt; Qt documents them at https://doc.qt.io/qt-6/licenses-used-in-qt.html. The Qt "
              "libraries are separate files under _internal/PySide6/Qt/lib and may be replaced by the user."]
    parts += ["", "=" * 100, "FFmpeg, as the wheels build it", ""]
    for libs, f in info["ffmpeg"].items():
        owner = "PyAV (av)" if libs == "av.libs" else "OpenCV (cv2)"
        parts += [f"{libs} ({owner}): FFmpeg reports its licence as: {f['license']}",
                  f"configuration: {f['configuration']}", "libraries: " + ", ".join(f["libraries"])]
        gpl = [lib for lib in f["libraries"] if lib.startswith(GPL_LIBRARIES)]
        if gpl:
            parts.append(f"of these, {', '.join(gpl)} are licensed by their authors under GPL-2.0-or-later "
                         "(text below): the FFmpeg that links them is distributed under the GPL's terms")
        parts.append("")
    for ident in ("LGPL-3.0", "GPL-3.0", "LGPL-2.1", "GPL-2.0"):
        common = Path("/usr/share/common-licenses") / COMMON_LICENSES[ident]
        if common.is_file():
            parts += [f"--- {ident} ---", common.read_text().rstrip(), ""]
    parts += ["=" * 100, "The model: training data and its terms", "", model_terms(), ""]
    parts += ["=" * 100, "Each distribution's metadata and licence files", ""]
    parts += [("\n\n" + "-" * 100 + "\n").join(bodies), "", "=" * 100, "Python", "", info["python_licence"]]
    path = bundle / "THIRD-PARTY-LICENSES.txt"
    path.write_text("\n".join(parts))
    versions = {d["name"]: d["version"] for d in dists if d["name"].lower().replace("_", "-") not in BUILD_ONLY}
    versions["python"] = info["python"]
    return path, versions


# --------------------------------------------------------------------------- packages
def desktop_entry(exec_path: str) -> str:
    return "\n".join([
        "[Desktop Entry]", "Type=Application", "Name=Colorizer", "GenericName=Photo and film colorizer",
        "Comment=Bring color back to black-and-white photos and film",
        f"Exec={exec_path} %F", "Icon=colorizer", "Terminal=false", "Categories=Graphics;Photography;",
        "MimeType=" + ";".join(MIME_TYPES) + ";", "Keywords=colorize;black and white;photo;film;restore;",
        "StartupWMClass=colorizer", ""])


def make_tarball(bundle: Path, dist: Path, name: str) -> Path:
    folder = dist / name
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(bundle, folder, symlinks=True)
    path = dist / f"{name}.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=6) as tar:
        tar.add(folder, arcname=name)
    return path


def make_deb(bundle: Path, dist: Path, work: Path, package: str, version: str, depends: str,
             edition: str) -> Path | None:
    if not shutil.which("dpkg-deb"):
        log("dpkg-deb not found: no .deb (sudo apt install dpkg-dev... or build on Debian/Ubuntu)")
        return None
    root = work / "deb" / package
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(bundle, root / "opt" / APP_ID, symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True)
    for command in ("colorizer", "colorize-batch"):
        (root / "usr" / "bin" / command).symlink_to(f"/opt/{APP_ID}/{command}")
    apps = root / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    (apps / f"{APP_ID}.desktop").write_text(desktop_entry(f"/opt/{APP_ID}/colorizer"))
    icons = root / "usr" / "share" / "icons" / "hicolor"
    (icons / "scalable" / "apps").mkdir(parents=True)
    shutil.copy(REPO / "assets" / "icons" / "colorizer.svg", icons / "scalable" / "apps" / "colorizer.svg")
    (icons / "256x256" / "apps").mkdir(parents=True)
    shutil.copy(REPO / "assets" / "icons" / "colorizer.png", icons / "256x256" / "apps" / "colorizer.png")
    doc = root / "usr" / "share" / "doc" / package
    doc.mkdir(parents=True)
    (doc / "copyright").symlink_to(f"/opt/{APP_ID}/THIRD-PARTY-LICENSES.txt")
    size_kb = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink()) // 1024
    (root / "DEBIAN").mkdir()
    conflicts = "colorizer-gpu" if edition == "cpu" else "colorizer"
    (root / "DEBIAN" / "control").write_text("\n".join([
        f"Package: {package}", f"Version: {version}", "Section: graphics", "Priority: optional",
        "Architecture: amd64", f"Installed-Size: {size_kb}", f"Depends: {depends}",
        f"Conflicts: {conflicts}", f"Replaces: {conflicts}",
        "Maintainer: Colorizer project <colorizer@localhost>",
        "Description: colorize black-and-white photos and film" + (" (NVIDIA GPU edition)" if edition == "gpu" else ""),
        " A pix2pix model run by ONNX Runtime: the Colorizer window and the colorize-batch command,",
        " installed under /opt/colorizer with everything they need but the system's libraries.", ""]))
    deb = dist / f"{package}_{version}_amd64.deb"
    run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", root, deb], stdout=subprocess.DEVNULL)
    shutil.rmtree(root)
    return deb


def du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def parts_sizes(bundle: Path) -> dict[str, int]:
    """Bytes of each top-level part of _internal (folders and their '.libs'), largest first."""
    internal = bundle / "_internal"
    sizes: dict[str, int] = {}
    for p in internal.iterdir():
        if p.is_symlink():
            continue
        key = p.name.removesuffix(".libs")
        key = {"opencv_python_headless": "cv2"}.get(key, key)
        if p.is_file():
            key = "python (libpython, stdlib)" if p.name.startswith(("libpython", "base_library")) else "other files"
        if p.name == "python3.11" or p.name.startswith("python3."):
            key = "python (libpython, stdlib)"
        sizes[key] = sizes.get(key, 0) + du(p)
    models = internal / "colorizer" / "assets" / "models"
    if models.is_dir():
        sizes["model (ONNX)"] = du(models)
        sizes["colorizer"] = sizes.get("colorizer", 0) - sizes["model (ONNX)"]
    sizes["executables (2)"] = sum(du(bundle / n) for n in ("colorizer", "colorize-batch"))
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpu", action="store_true", help="GPU edition (onnxruntime-gpu): never run on a GPU")
    p.add_argument("--venv", type=Path, help="virtual environment to build in (default packaging/build/venv-EDITION)")
    p.add_argument("--python", default=sys.executable, help="Python that makes the venv (3.10+; default this one)")
    p.add_argument("--dist", type=Path, default=HERE / "dist", help="where the packages go (default packaging/dist)")
    p.add_argument("--no-deb", action="store_true", help="skip the .deb")
    p.add_argument("--no-install", action="store_true",
                   help="freeze what the venv holds (no pip run; the venv must have been made by this script)")
    args = p.parse_args(argv)

    edition = "gpu" if args.gpu else "cpu"
    version = project_version()
    work = HERE / "build" / edition
    venv = args.venv or HERE / "build" / f"venv-{edition}"
    args.dist.mkdir(parents=True, exist_ok=True)
    suffix = "-gpu" if args.gpu else ""
    name = f"{APP_ID}-{version}-linux-x86_64{suffix}"
    t0 = time.monotonic()

    py = make_venv(venv, edition, args.python, install=not args.no_install)
    bundle = freeze(py, edition, work / "pyinstaller", work / "frozen")
    t_freeze = time.monotonic() - t0
    strip_python(bundle)
    _, versions = write_licences(py, bundle, version, work / "pyinstaller")
    deps = dependencies(bundle)
    if deps["not_found_here"]:
        log(f"libraries the bundle needs that this machine lacks: {deps['not_found_here']}")
    depends = depends_line(deps)
    tarball = make_tarball(bundle, args.dist, name)
    deb = None if args.no_deb else make_deb(bundle, args.dist, work, f"{APP_ID}{suffix}", version, depends, edition)

    info = {
        "version": version, "edition": edition, "bundle": str(args.dist / name), "tarball": str(tarball),
        "deb": str(deb) if deb else None, "unpacked_bytes": du(bundle), "tarball_bytes": tarball.stat().st_size,
        "deb_bytes": deb.stat().st_size if deb else None, "parts_bytes": parts_sizes(bundle),
        "freeze_seconds": round(t_freeze, 1), "total_seconds": round(time.monotonic() - t0, 1),
        "depends": depends, "glibc": deps["glibc"], "system_libraries": deps["system_libraries"],
        "not_found_here": deps["not_found_here"], "versions": versions,
    }
    (args.dist / f"bundle-info{suffix}.json").write_text(json.dumps(info, indent=2))
    mb = 1 << 20
    log(f"bundle  {args.dist / name}: {info['unpacked_bytes'] / mb:.0f} MiB unpacked")
    log(f"tarball {tarball}: {info['tarball_bytes'] / mb:.0f} MiB")
    if deb:
        log(f"deb     {deb}: {info['deb_bytes'] / mb:.0f} MiB")
    log(f"done in {info['total_seconds']:.0f} s; details in {args.dist / f'bundle-info{suffix}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The four parts depend on each other one way (docs/architecture.md, "Parts and their dependencies").

    core (colorizer/*.py)   imports no part
    trainer  (trainer/)     imports core
    desktop  (desktop/)     imports core: the runtime, colorize-batch and the app ship without torch,
                            ONNX tooling or the exporter (packaging/colorizer.spec leaves both parts out)
    exporter (exporter/)    imports core, trainer and desktop: the bridge from a checkpoint to the runtime

Every import is read from the source (ast), those inside functions included (a lazy import is still a
dependency: PyInstaller follows it, and it breaks when the other part is missing), as are the module names
given as strings to ``importlib.import_module`` and ``LazyModule``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# part -> (folder, the package it installs as); pyproject.toml's [tool.setuptools] package-dir
PARTS = {
    "core": ("colorizer", "colorizer"),
    "trainer": ("trainer", "colorizer.trainer"),
    "exporter": ("exporter", "colorizer.exporter"),
    "desktop": ("desktop", "colorizer.desktop"),
}
ALLOWED = {
    "core": {"core"},
    "trainer": {"core", "trainer"},
    "desktop": {"core", "desktop"},
    "exporter": {"core", "trainer", "desktop", "exporter"},
}
DATA_PACKAGES = {"colorizer.assets"}  # files only (the model, icons): any part may read them


def part_files(part: str) -> list[Path]:
    folder = ROOT / PARTS[part][0]
    # core is the flat colorizer/ folder; the others are packages with subpackages
    return sorted(folder.glob("*.py") if part == "core" else folder.rglob("*.py"))


def module_name(part: str, path: Path) -> str:
    folder, package = PARTS[part]
    rel = path.relative_to(ROOT / folder).with_suffix("").parts
    if rel[-1] == "__init__":
        rel = rel[:-1]
    return ".".join((package, *rel))


def part_of(module: str) -> str | None:
    """The part a module name belongs to (None: not Colorizer's, or a data package)."""
    if module != "colorizer" and not module.startswith("colorizer."):
        return None
    if any(module == d or module.startswith(d + ".") for d in DATA_PACKAGES):
        return None
    for part in ("trainer", "exporter", "desktop"):
        package = PARTS[part][1]
        if module == package or module.startswith(package + "."):
            return part
    return "core"


def imported_modules(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, module name) of every import in a file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from colorizer import trainer` names a part as `import colorizer.trainer` does
            found += [(node.lineno, f"{source}.{alias.name}" if source == "colorizer" else source)
                      for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "LazyModule"):
                found.append((node.lineno, node.args[0].value))
    return sorted(set(found))


def violations(part: str) -> list[str]:
    bad = []
    for path in part_files(part):
        for line, imported in imported_modules(path, module_name(part, path)):
            other = part_of(imported)
            if other is not None and other not in ALLOWED[part]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {imported} ({part} -> {other}; "
                           f"{part} may import only {', '.join(sorted(ALLOWED[part]))})")
    return bad


@pytest.mark.parametrize("part", list(PARTS))
def test_each_part_imports_only_the_parts_below_it(part: str) -> None:
    assert part_files(part), f"no modules found for {part} under {PARTS[part][0]}/"
    bad = violations(part)
    assert not bad, "imports against the layering:\n  " + "\n  ".join(bad)


def test_the_rule_is_one_way() -> None:
    for part, allowed in ALLOWED.items():
        for other in allowed - {part}:
            assert part not in ALLOWED[other], f"{part} and {other} may import each other"


def test_the_reader_sees_every_kind_of_import(tmp_path: Path) -> None:
    folder = tmp_path / "desktop" / "pipeline"
    folder.mkdir(parents=True)
    source = folder / "probe.py"
    source.write_text(
        "import colorizer.trainer.data\n"
        "from colorizer import exporter\n"
        "from colorizer.contract import rgb_to_l\n"
        "from ..backends import base\n"
        "from ... import hints\n"
        "def lazy():\n"
        "    from colorizer.exporter.onnx_export import model_inputs\n"
        "    importlib.import_module('colorizer.trainer.checkpoint')\n"
        "torch = LazyModule('torch')\n", encoding="utf-8")
    found = [name for _, name in imported_modules(source, "colorizer.desktop.pipeline.probe")]
    assert found == ["colorizer.trainer.data", "colorizer.exporter", "colorizer.contract",
                     "colorizer.desktop.backends", "colorizer.hints", "colorizer.exporter.onnx_export",
                     "colorizer.trainer.checkpoint", "torch"]
    assert [part_of(name) for name in found] == ["trainer", "exporter", "core", "desktop", "core", "exporter",
                                                 "trainer", None]

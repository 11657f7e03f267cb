"""README's "How it is built" table matches the tree: every module is named in the row of its folder,
and every module the table names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from fixture_sites import REPO

PACKAGE = REPO / "condaqa"


def rows() -> list[tuple[str, str]]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## How it is built\n", 1)[1].split("\n## ", 1)[0]
    cells = [line.split(" | ", 1) for line in section.splitlines() if line.startswith("| `")]
    return [(first.lstrip("| "), rest) for first, rest in cells]


def test_the_module_table_names_every_module_in_its_folders_row() -> None:
    table = rows()
    unnamed = []
    for module in sorted(PACKAGE.rglob("*.py")):
        relative = module.relative_to(PACKAGE)
        if module.name == "__init__.py":
            continue
        if len(relative.parts) == 1:
            named = any(f"`{module.name}`" in first for first, _ in table)
        else:
            named = any(f"`{relative.parts[0]}/`" in first and f"`{module.name}`" in rest for first, rest in table)
        if not named:
            unnamed.append(str(relative))
    assert not unnamed, f"README.md's module table does not name {unnamed}"


def test_every_module_the_table_names_exists() -> None:
    missing = []
    for first, rest in rows():
        folders = re.findall(r"`([a-z_]+)/`", first)
        for name in re.findall(r"`([a-z_]+\.py)`", first):
            if not (PACKAGE / name).is_file():
                missing.append(name)
        for folder in folders:
            for name in re.findall(r"`([a-z_]+\.py)`", rest):
                if not any((PACKAGE / f / name).is_file() for f in folders):
                    missing.append(f"{folder}/{name}")
    assert not missing, f"README.md's module table names modules that do not exist: {sorted(set(missing))}"


def _rank() -> dict[str, tuple[int, int]]:
    """Each top-level module or folder of the package: (its row in the table, its place in that row)."""
    return {name.removesuffix(".py").removesuffix("/"): (row, place)
            for row, (first, _) in enumerate(rows())
            for place, name in enumerate(re.findall(r"`([a-z_]+(?:\.py|/))`", first))}


def _imports(module: Path) -> set[str]:
    """The top-level modules and folders of condaqa that `module` imports, lazily or not."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("condaqa"):
            found |= ({node.module.split(".")[1]} if "." in node.module else {a.name for a in node.names})
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("condaqa.")}
    return found


def test_each_module_imports_only_what_lies_before_it_in_the_flow() -> None:
    rank, against = _rank(), []
    for module in sorted(PACKAGE.rglob("*.py")):
        unit = module.relative_to(PACKAGE).with_suffix("").parts[0]
        if unit == "__init__":
            continue
        for other in sorted(_imports(module) - {unit, "__version__"}):
            if rank.get(other, (-1, -1)) >= rank[unit]:
                against.append(f"{module.relative_to(PACKAGE)} imports {other}")
    assert not against, "imports against the flow of README's table: " + "; ".join(against)

"""Read one environment prefix without conda: conda-meta records, history and pip distributions.

The old installation's conda is what is being migrated away from, so nothing here runs it.
Formats follow conda 4.3 to 26.x (see reference/conda-formats.md): records are plain JSON
named name-version-build.json; pip distributions are the *.dist-info / *.egg-info anchors in
site-packages that no conda record lists among its files.
"""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

from condaqa.errors import PrefixError


@dataclass(frozen=True)
class CondaPackage:
    name: str
    version: str
    build: str
    channel: str
    subdir: str
    noarch: str = ""


@dataclass(frozen=True)
class PipDistribution:
    name: str
    version: str
    anchor: Path
    direct_url: dict | None = None

    @property
    def key(self) -> str:
        return normalize(self.name)


@dataclass(frozen=True)
class Revision:
    """One block of conda-meta/history."""

    date: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    specs: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class PrefixContents:
    path: Path
    conda: tuple[CondaPackage, ...]
    pip: tuple[PipDistribution, ...]
    site_packages: Path | None

    def versions(self) -> dict[str, str]:
        """name -> version for conda packages and (normalised) pip distributions."""
        out = {p.name: p.version for p in self.conda}
        out.update({f"pip:{d.key}": d.version for d in self.pip})
        return out


def normalize(name: str) -> str:
    """PEP 503 name normalisation: PyYAML == pyyaml, foo_bar == foo.bar == foo-bar."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_environment(path: Path) -> bool:
    return (path / "conda-meta" / "history").is_file()


def read_records(prefix: Path) -> list[dict]:
    """Every conda-meta record as conda loads them (skipping `._*` files)."""
    return [_load_record(path) for path in _record_files(prefix)]


def _record_files(prefix: Path) -> list[Path]:
    meta = prefix / "conda-meta"
    if not meta.is_dir():
        raise PrefixError(f"{prefix}: not a conda environment (no conda-meta folder)")
    return [meta / name for name in sorted(os.listdir(meta)) if name.endswith(".json") and not name.startswith("._")]


def _load_record(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise PrefixError(f"{path}: unreadable conda-meta record: {exc}") from None


def _channel_and_subdir(record: dict) -> tuple[str, str]:
    channel = record.get("channel") or record.get("schannel") or ""
    subdir = record.get("subdir") or ""
    if not subdir and channel:
        subdir = channel.rstrip("/").rsplit("/", 1)[-1]
    channel = channel.rstrip("/")
    if subdir and channel.endswith("/" + subdir):
        channel = channel[: -len(subdir) - 1]
    return channel, subdir


def _site_packages(prefix: Path, python_site_packages_path: str | None) -> Path | None:
    """The python record's python_site_packages_path (conda 24.11+), else lib/python*/site-packages."""
    if python_site_packages_path:
        return prefix / python_site_packages_path
    found = sorted(prefix.glob("lib/python*/site-packages"))
    return found[-1] if found else None


def _owned_anchors(records: list[dict]) -> set[str]:
    owned: set[str] = set()
    for record in records:
        _add_owned(owned, record.get("files") or ())
    return owned


def _add_owned(owned: set[str], files: list[str]) -> None:
    """Add the dist-info/egg-info names that `files` lists: per path, the first occurrence of each marker.

    A record lists up to thousands of paths and only its site-packages ones can hold a marker, so
    the paths are searched as one text (str.find runs in C) rather than one by one.
    """
    try:
        text = "\n".join(files)
    except TypeError:  # not a list of strings: nothing conda would read as an anchor either
        return
    for marker in (".dist-info/", ".egg-info"):
        index = text.find(marker)
        while index >= 0:
            start = text.rfind("\n", 0, index) + 1
            owned.add(text[start:index + len(marker)].rstrip("/").rsplit("/", 1)[-1])
            end = text.find("\n", index)
            index = -1 if end < 0 else text.find(marker, end)


def _read_metadata(anchor: Path) -> tuple[str, str] | None:
    meta = anchor / "METADATA" if anchor.suffix == ".dist-info" else anchor
    if anchor.suffix == ".egg-info" and anchor.is_dir():
        meta = anchor / "PKG-INFO"
    try:
        headers = HeaderParser().parsestr(meta.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    if not headers.get("Name") or not headers.get("Version"):
        return None
    return headers["Name"], headers["Version"]


def _direct_url(anchor: Path) -> dict | None:
    path = anchor / "direct_url.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {"url": "", "invalid": True}


def read_pip(site_packages: Path | None, records: list[dict]) -> list[PipDistribution]:
    return _pip_distributions(site_packages, _owned_anchors(records))


_ANCHOR_SUFFIXES = (".dist-info", ".egg-info")  # Path.suffix of an anchor; a bare ".dist-info" has none


def _pip_distributions(site_packages: Path | None, owned: set[str]) -> list[PipDistribution]:
    if site_packages is None or not site_packages.is_dir():
        return []
    dists = []
    for name in sorted(os.listdir(site_packages)):  # names: sorting Paths costs more than reading them
        if not name.endswith(_ANCHOR_SUFFIXES) or name in _ANCHOR_SUFFIXES or name in owned:
            continue
        anchor = site_packages / name
        meta = _read_metadata(anchor)
        if meta is None:
            continue
        dists.append(PipDistribution(meta[0], meta[1], anchor, _direct_url(anchor)))
    return dists


def read_prefix(prefix: Path) -> PrefixContents:
    # One record at a time, keeping only what is used: a record's files and paths_data run to
    # megabytes, and holding a whole environment's of them costs more than parsing them.
    conda = []
    owned: set[str] = set()
    python_site_packages: str | None = None
    for path in _record_files(prefix):
        record = _load_record(path)
        try:
            channel, subdir = _channel_and_subdir(record)
            noarch = record.get("noarch") or ""
            conda.append(
                CondaPackage(record["name"], record["version"], record["build"], channel, subdir, str(noarch))
            )
        except KeyError as exc:
            raise PrefixError(f"{prefix}/conda-meta: a record lacks {exc}") from None
        _add_owned(owned, record.get("files") or ())
        if python_site_packages is None and record["name"] == "python" and record.get("python_site_packages_path"):
            python_site_packages = record["python_site_packages_path"]
    site_packages = _site_packages(prefix, python_site_packages)
    conda.sort(key=lambda p: p.name)
    return PrefixContents(prefix, tuple(conda), tuple(_pip_distributions(site_packages, owned)), site_packages)


_BLOCK = re.compile(r"^==>\s*(.+?)\s*<==")
_SPECS = re.compile(r"^#\s*(\w+)\s*specs:\s*(.+)?")


def read_history(prefix: Path) -> list[Revision]:
    """Parse conda-meta/history as conda/history.py does, old comma format included."""
    path = prefix / "conda-meta" / "history"
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    revisions: list[dict] = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        block = _BLOCK.match(line)
        if block:
            revisions.append({"date": block.group(1), "added": [], "removed": [], "specs": {}})
            continue
        if not revisions:
            revisions.append({"date": "", "added": [], "removed": [], "specs": {}})
        current = revisions[-1]
        if line.startswith("#"):
            specs = _SPECS.match(line)
            if specs:
                current["specs"].setdefault(specs.group(1), []).extend(_parse_specs(specs.group(2) or ""))
        elif line.startswith("-"):
            current["removed"].append(line[1:])
        else:
            current["added"].append(line.lstrip("+"))
    return [
        Revision(r["date"], tuple(r["added"]), tuple(r["removed"]), {k: tuple(v) for k, v in r["specs"].items()})
        for r in revisions
    ]


def _parse_specs(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("["):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return []
        return [str(v) for v in value]
    # conda 4.3: comma-joined, where a spec may itself hold commas ("numpy >=1.0,<2").
    specs: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        if specs and re.match(r"^[<>=!~]", piece):
            specs[-1] += "," + piece
        else:
            specs.append(piece)
    return specs


def requested_specs(revisions: list[Revision], installed: set[str]) -> dict[str, str]:
    """name -> spec the users asked for, as `conda env export --from-history` derives it."""
    wanted: dict[str, str] = {}
    for revision in revisions:
        for kind, specs in revision.specs.items():
            for spec in specs:
                name = re.split(r"[\s=<>!~\[]", spec.split("::")[-1], maxsplit=1)[0]
                if kind == "remove":
                    wanted.pop(name, None)
                elif kind in ("update", "install", "create", "neutered"):
                    wanted[name] = spec.split("::")[-1]
    return {name: spec for name, spec in sorted(wanted.items()) if name in installed}


def top_level_modules(contents: PrefixContents) -> list[str]:
    """Importable top-level names in site-packages: packages and modules, private ones excluded."""
    sp = contents.site_packages
    if sp is None or not sp.is_dir():
        return []
    names = set()
    for entry in sp.iterdir():
        name = entry.name
        if name.startswith(("_", ".")) or "-" in name or name.endswith((".dist-info", ".egg-info", ".pth")):
            continue
        if entry.is_dir() and (entry / "__init__.py").is_file():
            names.add(name)
        elif entry.suffix == ".py":
            names.add(entry.stem)
    return sorted(names)

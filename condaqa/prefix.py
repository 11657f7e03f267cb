"""Read one environment prefix without conda: conda-meta records, history and pip distributions.

The old installation's conda is what is being migrated away from, so nothing here runs it.
Formats follow conda 4.3 to 26.x (see reference/conda-formats.md): records are plain JSON
named name-version-build.json; pip distributions are every anchor conda's own prefix scan
finds in site-packages that no conda record lists among its files (`*.dist-info`, `*.egg-info`
folders and files, `*.egg` folders and zipped eggs, `*.egg-link` develop eggs), plus the eggs
and develop folders that `easy-install.pth` puts on sys.path.
"""

from __future__ import annotations

import ast
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

import msgspec
from packaging.utils import canonicalize_name

from condaqa.errors import PrefixError
from condaqa.inputs import (
    DIRECT_URL,
    HISTORY,
    METADATA,
    PATH_FILE,
    RECORD,
    inside,
    open_regular,
    read_bytes,
    read_json,
    read_json_as,
    read_text,
    size,
)


@dataclass(frozen=True)
class CondaPackage:
    name: str
    version: str
    build: str
    channel: str
    subdir: str
    noarch: str = ""
    url: str = ""  # the package archive's URL, as `conda list --explicit` prints it


@dataclass(frozen=True)
class PipDistribution:
    """An installed distribution no conda record owns.

    `direct_url` is its PEP 610 record; a develop egg (`setup.py develop`, `pip install -e` of a
    setup.py project) gets the same shape, `dir_info.editable`, because its source folder is the
    only copy there is, and the direct-url rule treats both alike.
    """

    name: str
    version: str
    anchor: Path
    direct_url: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)


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
    path_entries: tuple[Path, ...] = ()  # what easy-install.pth adds to sys.path: eggs, develop folders

    def versions(self) -> dict[str, str]:
        """name -> version for conda packages and (normalised) pip distributions."""
        out = {p.name: p.version for p in self.conda}
        out.update({f"pip:{d.key}": d.version for d in self.pip})
        return out


def is_environment(path: Path) -> bool:
    return (path / "conda-meta" / "history").is_file()



def _record_files(prefix: Path) -> list[tuple[Path, bool]]:
    """conda-meta's records by name, each with whether the folder lists it as a regular file, not a link."""
    meta = prefix / "conda-meta"
    if not meta.is_dir():
        raise PrefixError(f"{prefix}: not a conda environment (no conda-meta folder)")
    with os.scandir(meta) as listing:
        found = sorted((entry.name, entry.is_file(follow_symlinks=False)) for entry in listing
                       if entry.name.endswith(".json") and not entry.name.startswith("._"))
    return [(meta / name, regular) for name, regular in found]


def record_paths(prefix: Path) -> list[Path]:
    """conda-meta's records by name, as every reader of a prefix lists them (`._` files that macOS copies
    leave beside them are not records)."""
    return [path for path, _ in _record_files(prefix)]


class _Record(msgspec.Struct):
    """The fields of a conda-meta record that condaqa reads, of the types conda writes; the rest is
    skipped unbuilt (paths_data alone is most of a record's bytes)."""

    name: str
    version: str
    build: str
    channel: str | None = None
    schannel: str | None = None  # conda 4.3
    subdir: str | None = None
    url: str | None = None
    noarch: Any = None  # "python", "generic"; nothing reads more than its text
    python_site_packages_path: str | None = None  # conda 24.11+
    files: list[str] | None = None


_RECORD = msgspec.json.Decoder(_Record)


def _load_record(path: Path, listed_regular: bool) -> _Record:
    """A record, read with the input policy."""
    try:
        return read_json_as(path, RECORD, PrefixError, _RECORD, listed_regular=listed_regular)
    except FileNotFoundError:  # removed since the folder was listed, or a dangling link
        raise PrefixError(f"{path}: unreadable conda-meta record: no such file") from None


def _channel_and_subdir(record: _Record) -> tuple[str, str]:
    channel = record.channel or record.schannel or ""
    subdir = record.subdir or ""
    if not subdir and channel:
        subdir = channel.rstrip("/").rsplit("/", 1)[-1]
    channel = channel.rstrip("/")
    if subdir and channel.endswith("/" + subdir):
        channel = channel[: -len(subdir) - 1]
    return channel, subdir


def _site_packages(prefix: Path, declared: tuple[Path, str] | None) -> Path | None:
    """The python record's python_site_packages_path (conda 24.11+), else lib/python*/site-packages.

    Either must lie in the prefix, links resolved: a path planted in a record (or a link planted in
    lib/) would otherwise make the export read another folder's distributions as the environment's.
    """
    if declared is not None:
        record, value = declared
        if not inside(prefix / value, [prefix]):
            raise PrefixError(f"{record}: python_site_packages_path {value[:200]!r} leads out of the prefix "
                              f"{prefix}; refusing to read distributions there")
        return prefix / value
    found = sorted(prefix.glob("lib/python*/site-packages"))
    if found and not inside(found[-1], [prefix]):
        raise PrefixError(f"{found[-1]} leads out of the prefix (to {os.path.realpath(found[-1])}); refusing to read "
                          "distributions there")
    return found[-1] if found else None


# What marks a distribution's anchor in a record's file list: the name in front of each, up to the
# marker, is what the site-packages listing shows (a zipped egg is a file, so its path ends there).
_DIST_INFO = (".dist-info/",)
_EGG = (".egg-info", ".egg/", ".egg\n", ".egg-link")  # each holds ".egg", which most records never list


def _add_owned(owned: set[str], files: list[str]) -> None:
    """Add the anchor names that `files` lists: per path, the first occurrence of each marker.

    A record lists up to thousands of paths and only its site-packages ones can hold a marker, so
    the paths are searched as one text (str.find runs in C) rather than one by one.
    """
    text = "\n".join(files) + "\n"
    for marker in _DIST_INFO + _EGG if ".egg" in text else _DIST_INFO:
        index = text.find(marker)
        while index >= 0:
            start = text.rfind("\n", 0, index) + 1
            owned.add(text[start:index + len(marker)].rstrip("/\n").rsplit("/", 1)[-1])
            end = text.find("\n", index)
            index = -1 if end < 0 else text.find(marker, end)


def _headers(text: str) -> tuple[str, str] | None:
    """Name and Version of a METADATA / PKG-INFO text, or None when it lacks either."""
    headers = HeaderParser().parsestr(text)
    name, version = headers.get("Name"), headers.get("Version")
    return (str(name), str(version)) if name and version else None


def _metadata_file(path: Path) -> tuple[str, str] | None:
    try:
        return _headers(read_text(path, METADATA, PrefixError))
    except FileNotFoundError:
        return None


def _zip_member(archive: Path, member: str) -> str | None:
    """One member of a zipped egg as text, read with the same limits as any metadata file."""
    try:
        with open_regular(archive, "a zipped egg", PrefixError) as handle, zipfile.ZipFile(handle) as egg:
            try:
                info = egg.getinfo(member)
            except KeyError:
                return None
            if info.file_size > METADATA.limit:
                raise PrefixError(f"{archive}: {member} is larger than {size(METADATA.limit)}; refusing to read it")
            data = egg.read(info)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
        raise PrefixError(f"{archive}: not a readable zipped egg: {exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PrefixError(f"{archive}: {member} is not UTF-8 text") from None


def _egg_metadata(egg: Path) -> tuple[str, str] | None:
    """An easy_install egg: a folder or a zip file, either with EGG-INFO/PKG-INFO."""
    if egg.is_dir():
        return _metadata_file(egg / "EGG-INFO" / "PKG-INFO")
    text = _zip_member(egg, "EGG-INFO/PKG-INFO")
    return _headers(text) if text is not None else None


def _direct_url(anchor: Path) -> dict[str, Any] | None:
    path = anchor / "direct_url.json"
    if not path.is_file():
        return None
    try:
        data = read_json(path, DIRECT_URL, PrefixError)
    except (PrefixError, FileNotFoundError):
        return {"url": "", "invalid": True}
    return data if isinstance(data, dict) else {"url": "", "invalid": True}


def _editable(folder: Path) -> dict[str, Any]:
    """The PEP 610 record pip would have written for an editable install from `folder`."""
    return {"url": folder.as_uri(), "dir_info": {"editable": True}}


def _develop_infos(folder: Path) -> list[Path]:
    """The `*.egg-info` folders `setup.py develop` left in a source folder."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [folder / n for n in names if n.endswith(".egg-info") and (folder / n / "PKG-INFO").is_file()]


def _egg_link(link: Path, site_packages: Path) -> tuple[PipDistribution, Path]:
    """A develop egg: `NAME.egg-link` holds the source folder (first line) that easy-install.pth lists."""
    lines = read_text(link, PATH_FILE, PrefixError).splitlines()
    if not lines or not lines[0].strip():
        raise PrefixError(f"{link}: an empty .egg-link names no source folder")
    folder = Path(os.path.normpath(site_packages / lines[0].strip()))
    stem = canonicalize_name(link.name[: -len(".egg-link")])
    infos = [i for i in _develop_infos(folder) if canonicalize_name(i.name[: -len(".egg-info")]) == stem] or \
        _develop_infos(folder)[:1]
    meta = _metadata_file(infos[0] / "PKG-INFO") if infos else None
    name, version = meta or (link.name[: -len(".egg-link")], "")  # its source is gone: no version to read
    return PipDistribution(name, version, link, _editable(folder)), folder


def _anchor(anchor: Path, site_packages: Path) -> tuple[PipDistribution | None, Path]:
    """The distribution behind one site-packages anchor, and the path it stands for on sys.path."""
    name = anchor.name
    if name.endswith(".egg-link"):
        return _egg_link(anchor, site_packages)
    if name.endswith(".egg"):
        meta = _egg_metadata(anchor)
    elif name.endswith(".dist-info"):
        meta = _metadata_file(anchor / "METADATA")
    else:  # .egg-info: a folder (setuptools) or a single PKG-INFO file (distutils)
        meta = _metadata_file(anchor / "PKG-INFO" if anchor.is_dir() else anchor)
    if meta is None:
        return None, anchor
    return PipDistribution(meta[0], meta[1], anchor, _direct_url(anchor)), anchor


def _easy_install_entries(site_packages: Path) -> list[Path]:
    """The folders and eggs easy-install.pth puts on sys.path, as site.py reads it: one path a line,
    relative to site-packages, `import` lines run rather than read, paths that do not exist skipped."""
    try:
        text = read_text(site_packages / "easy-install.pth", PATH_FILE, PrefixError)
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        line = line.rstrip()
        if not line or line.startswith("#") or line.startswith(("import ", "import\t")):
            continue
        path = Path(os.path.normpath(site_packages / line))
        if path.exists() and path not in entries:
            entries.append(path)
    return entries


def _entry_distributions(entry: Path) -> list[PipDistribution]:
    """The distributions behind one easy-install.pth entry: an egg, or a develop source folder."""
    if entry.name.endswith(".egg"):
        meta = _egg_metadata(entry)
        return [PipDistribution(meta[0], meta[1], entry)] if meta else []
    found = []
    for info in _develop_infos(entry) if entry.is_dir() else []:
        meta = _metadata_file(info / "PKG-INFO")
        if meta is not None:
            found.append(PipDistribution(meta[0], meta[1], info, _editable(entry)))
    return found


_ANCHOR_SUFFIXES = (".dist-info", ".egg-info", ".egg", ".egg-link")  # a bare ".egg" names nothing


def _pip_distributions(site_packages: Path | None, owned: set[str]) -> tuple[list[PipDistribution], list[Path]]:
    """The distributions no conda record owns, and the easy-install.pth entries on sys.path."""
    if site_packages is None or not site_packages.is_dir():
        return [], []
    dists, read = [], []
    for name in sorted(os.listdir(site_packages)):  # names: sorting Paths costs more than reading them
        if not name.endswith(_ANCHOR_SUFFIXES) or name in _ANCHOR_SUFFIXES or name in owned:
            continue
        dist, stands_for = _anchor(site_packages / name, site_packages)
        read.append(stands_for)
        if dist is not None:
            dists.append(dist)
    entries = _easy_install_entries(site_packages)
    # real paths already read: an egg listed in easy-install.pth, a develop folder (resolved only if any is listed)
    seen = {os.path.realpath(path) for path in read} if entries else set()
    for entry in entries:
        if os.path.realpath(entry) not in seen and entry.name not in owned:
            seen.add(os.path.realpath(entry))
            dists += _entry_distributions(entry)
    return dists, entries


def read_prefix(prefix: Path) -> PrefixContents:
    # One record at a time, keeping only what is used: a record's files and paths_data run to
    # megabytes, and holding a whole environment's of them costs more than parsing them.
    conda = []
    owned: set[str] = set()
    python_site_packages: tuple[Path, str] | None = None
    for path, listed_regular in _record_files(prefix):
        record = _load_record(path, listed_regular)
        channel, subdir = _channel_and_subdir(record)
        conda.append(CondaPackage(record.name, record.version, record.build, channel, subdir, str(record.noarch or ""),
                                  record.url or ""))
        _add_owned(owned, record.files or [])
        if python_site_packages is None and record.name == "python" and record.python_site_packages_path:
            python_site_packages = path, record.python_site_packages_path
    site_packages = _site_packages(prefix, python_site_packages)
    conda.sort(key=lambda p: p.name)
    dists, entries = _pip_distributions(site_packages, owned)
    return PrefixContents(prefix, tuple(conda), tuple(dists), site_packages, tuple(entries))


_BLOCK = re.compile(r"^==>\s*(.+?)\s*<==")
_SPECS = re.compile(r"^#\s*(\w+)\s*specs:\s*(.+)?")


def read_history(prefix: Path) -> list[Revision]:
    """Parse conda-meta/history as conda/history.py does, old comma format included."""
    path = prefix / "conda-meta" / "history"
    try:
        lines = read_bytes(path, HISTORY, PrefixError).decode("utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    revisions: list[dict[str, Any]] = []
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
        except (ValueError, SyntaxError, TypeError, RecursionError):  # not a list of strings, or nested too deep
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
    """Importable top-level names, private ones excluded: site-packages' own packages and modules,
    and those of the eggs and develop folders that easy-install.pth puts on sys.path."""
    names: set[str] = set()
    if contents.site_packages is not None and contents.site_packages.is_dir():
        names |= _modules_in(contents.site_packages)
    for entry in contents.path_entries:
        names |= _entry_modules(entry)
    return sorted(names)


def _public(name: str) -> bool:
    return name.isidentifier() and not name.startswith("_")


def _modules_in(folder: Path, skip: frozenset[str] = frozenset()) -> set[str]:
    """Packages (folders with __init__.py) and modules (*.py) directly in `folder`."""
    names = set()
    for entry in os.scandir(folder):
        if entry.is_dir() and os.path.isfile(os.path.join(entry.path, "__init__.py")):
            name = entry.name
        elif entry.name.endswith(".py"):
            name = entry.name[:-3]
        else:
            continue
        if _public(name) and name not in skip:
            names.add(name)
    return names


def _listed(text: str) -> set[str]:
    """The names of a top_level.txt, as setuptools writes it: one a line."""
    return {line.strip() for line in text.splitlines() if _public(line.strip())}


def _entry_modules(entry: Path) -> set[str]:
    """What one easy-install.pth entry makes importable: its top_level.txt, else what it holds."""
    if entry.is_file():  # a zipped egg
        top_level = _zip_member(entry, "EGG-INFO/top_level.txt")
        if top_level is not None:
            return _listed(top_level)
        try:
            with zipfile.ZipFile(entry) as egg:
                members = egg.namelist()
        except (OSError, zipfile.BadZipFile) as exc:
            raise PrefixError(f"{entry}: not a readable zipped egg: {exc}") from None
        tops = {m.split("/")[0] for m in members if m.endswith("/__init__.py") and m.count("/") == 1}
        return {n for n in tops | {m[:-3] for m in members if "/" not in m and m.endswith(".py")} if _public(n)}
    infos = [entry / "EGG-INFO"] if entry.name.endswith(".egg") else _develop_infos(entry)
    listed: set[str] = set()
    for info in infos:
        try:
            listed |= _listed(read_text(info / "top_level.txt", PATH_FILE, PrefixError))
        except FileNotFoundError:
            continue
    return listed or _modules_in(entry, skip=frozenset({"setup"}))  # a source folder's setup.py is no module

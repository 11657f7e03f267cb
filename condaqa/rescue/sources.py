"""Where production still holds a package the channels lost, tried in order:

1. the package file in the installation's cache (`pkgs/<dist>.tar.bz2`, `.conda`), checked
   against the record's sha256 (else md5);
2. the extracted folder in the cache (`pkgs/<dist>/`, py-rattler's `pkgs/.rattler/<dist>/`),
   re-packed, every file checked against its `info/paths.json`;
3. the environment itself, re-packed from the record's `paths_data`, each file's prefix put back
   to its placeholder and checked against the package's own sha256 of it.

Each source that has the package but cannot be trusted says why; the next one is tried.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from condaqa.errors import PrefixError
from condaqa.inputs import RECORD, inside, read_json
from condaqa.rescue.repack import Member, pack

CACHE_FILE, CACHE_FOLDER, PREFIX = "package cache file", "package cache folder", "environment prefix"
_LINKED_ONLY = ("pyc_file", "unix_python_entry_point", "windows_python_entry_point_script",
                "windows_python_entry_point_exe", "directory")
_ADDED_BY_CONDA = ("info/repodata_record.json",)  # conda writes it into extracted folders; no package holds it


@dataclass(frozen=True)
class Rescued:
    source: str  # CACHE_FILE, CACHE_FOLDER or PREFIX
    origin: Path
    archive: Path


@dataclass
class Attempt:
    """What each source said: the package, or why not."""

    dist: str
    rescued: Rescued | None = None
    refused: list[str] = field(default_factory=list)

    def why(self) -> str:
        return "; ".join(self.refused) or "no source in production holds it"


def dist_of(record: dict[str, Any]) -> str:
    return f"{record['name']}-{record['version']}-{record['build']}"


def subdir_of(record: dict[str, Any]) -> str:
    return str(record.get("subdir") or "noarch")


def load_record(path: Path) -> dict[str, Any]:
    record = read_json(path, RECORD, PrefixError)
    if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in ("name", "version", "build")):
        raise PrefixError(f"{path}: not a conda-meta record")
    return record


def rescue(installation: Path, prefix: Path, record: dict[str, Any], channel: Path) -> Attempt:
    """Write the package of `record` into `channel/<subdir>/`, from the first source that holds it intact."""
    attempt = Attempt(dist_of(record))
    subdir = subdir_of(record)
    for source in (_from_file, _from_folder, _from_prefix):
        found = source(installation, prefix, record, channel / subdir, attempt)
        if found is not None:
            attempt.rescued = found
            return attempt
    return attempt


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pkgs(installation: Path) -> Path:
    return installation / "pkgs"


def _from_file(installation: Path, prefix: Path, record: dict[str, Any], target: Path,
               attempt: Attempt) -> Rescued | None:
    dist, pkgs = attempt.dist, _pkgs(installation)
    names = [str(record.get("fn") or ""), f"{dist}.conda", f"{dist}.tar.bz2"]
    candidates = [pkgs / n for n in dict.fromkeys(names) if n and "/" not in n]
    full = record.get("package_tarball_full_path")
    if isinstance(full, str) and full.endswith((".conda", ".tar.bz2")):
        candidates.append(Path(full))
    for path in candidates:
        if not path.is_file() or path.is_symlink() or not inside(path, [pkgs]):
            continue
        wanted = [(a, str(record[a])) for a in ("sha256", "md5") if record.get(a)]
        if not wanted:
            attempt.refused.append(f"{path}: the record has no sha256 or md5 to check it against")
            continue
        algorithm, expected = wanted[0]
        got = file_digest(path, algorithm)
        if got != expected:
            attempt.refused.append(f"{path}: {algorithm} {got[:12]}... is not the record's {expected[:12]}... "
                                   "(a damaged or different file): refused")
            continue
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / path.name)
        return Rescued(CACHE_FILE, path, target / path.name)
    return None


def _from_folder(installation: Path, prefix: Path, record: dict[str, Any], target: Path,
                 attempt: Attempt) -> Rescued | None:
    pkgs = _pkgs(installation)
    folders = [pkgs / attempt.dist, pkgs / ".rattler" / attempt.dist]
    extracted = record.get("extracted_package_dir")
    if isinstance(extracted, str) and extracted:
        folders.append(Path(extracted))
    for folder in dict.fromkeys(folders):
        if not (folder / "info" / "index.json").is_file() or not inside(folder, [pkgs]):
            continue
        why = _folder_problem(folder, record)
        if why:
            attempt.refused.append(f"{folder}: {why}: refused")
            continue
        return Rescued(CACHE_FOLDER, folder, pack(target / f"{attempt.dist}.tar.bz2", _folder_members(folder)))
    return None


def _folder_problem(folder: Path, record: dict[str, Any]) -> str:
    """Why the extracted folder is not the package of `record` as it was published ("" when it is)."""
    try:
        index = json.loads((folder / "info" / "index.json").read_text(encoding="utf-8"))
        paths = json.loads((folder / "info" / "paths.json").read_text(encoding="utf-8"))["paths"]
    except FileNotFoundError:
        return "no info/paths.json to check its files against"
    except (OSError, ValueError, KeyError, TypeError):
        return "its info/index.json or info/paths.json is unreadable"
    if [index.get(k) for k in ("name", "version", "build")] != [record[k] for k in ("name", "version", "build")]:
        return "its info/index.json names another package"
    for entry in paths:
        path = folder / entry["_path"]
        if entry.get("path_type") == "softlink":
            if not path.is_symlink():
                return f"{entry['_path']} is not the symlink info/paths.json lists"
        elif entry.get("path_type", "hardlink") == "hardlink":
            if not path.is_file() or path.is_symlink():
                return f"{entry['_path']} is missing"
            if entry.get("sha256") and _sha256(path.read_bytes()) != entry["sha256"]:
                return f"{entry['_path']} differs from its sha256 in info/paths.json"
    return ""


def _folder_members(folder: Path) -> list[Member]:
    members = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if relative in _ADDED_BY_CONDA or (path.is_dir() and not path.is_symlink()):
            continue
        if path.is_symlink():
            members.append(Member(relative, symlink=os.readlink(path)))
        else:
            members.append(Member(relative, path.read_bytes(), executable=os.access(path, os.X_OK)))
    return members


def _from_prefix(installation: Path, prefix: Path, record: dict[str, Any], target: Path,
                 attempt: Attempt) -> Rescued | None:
    members, why = prefix_members(prefix, record)
    if why:
        attempt.refused.append(f"{prefix}: {why}")
        return None
    return Rescued(PREFIX, prefix, pack(target / f"{attempt.dist}.tar.bz2", members))


def prefix_members(prefix: Path, record: dict[str, Any]) -> tuple[list[Member], str]:
    """The package's members rebuilt from the environment, or why the record does not allow it."""
    data = record.get("paths_data")
    if not isinstance(data, dict) or not isinstance(data.get("paths"), list):
        return [], ("its record has no paths_data (conda before 4.4 kept none), so the files' published contents "
                    "and prefix placeholders are unknown: not re-packed")
    noarch = record.get("noarch") == "python" or (isinstance(record.get("noarch"), dict)
                                                  and record["noarch"].get("type") == "python")
    entries = [e for e in data["paths"] if isinstance(e, dict) and e.get("path_type") not in _LINKED_ONLY]
    if noarch and any(e.get("path_type") == "unix_python_entry_point" for e in data["paths"]):
        return [], "a noarch python package with entry points: its record does not keep them: not re-packed"
    members, paths = [], []
    for entry in entries:
        member, why = _member(prefix, entry, noarch)
        if why:
            return [], why
        members.append(member)
        paths.append({k: v for k, v in entry.items() if k not in ("sha256_in_prefix", "size_in_bytes_in_prefix")}
                     | {"_path": member.path})
    members += _info(record, paths, noarch)
    return members, ""


def _member(prefix: Path, entry: dict[str, Any], noarch: bool) -> tuple[Member, str]:
    installed = str(entry["_path"])
    path = prefix / installed
    published = _published_path(installed) if noarch else installed
    if entry.get("path_type") == "softlink":
        if not path.is_symlink():
            return Member(published), f"{installed} is no longer the symlink the record lists: not re-packed"
        return Member(published, symlink=os.readlink(path)), ""
    if not path.is_file() or path.is_symlink():
        return Member(published), f"{installed} is gone from the environment: not re-packed"
    if not entry.get("sha256"):
        return Member(published), f"its record keeps no sha256 of {installed}: not re-packed"
    data = path.read_bytes()
    placeholder = entry.get("prefix_placeholder")
    if placeholder:
        data = _unreplaced(data, str(prefix), str(placeholder), entry.get("file_mode") == "binary")
    if _sha256(data) != entry["sha256"]:
        return Member(published), f"{installed} changed since it was installed (its sha256 is not the package's): " \
                                  "not re-packed"
    return Member(published, data, executable=os.access(path, os.X_OK)), ""


def _unreplaced(data: bytes, prefix: str, placeholder: str, binary: bool) -> bytes:
    """The file as packaged: conda wrote the prefix over the placeholder (binary: padded with NULs at the
    end of each C string)."""
    old, new = prefix.encode(), placeholder.encode()
    if not binary:
        return data.replace(old, new)
    pad = len(new) - len(old)
    out, start = bytearray(), 0
    while (found := data.find(old, start)) >= 0:
        end = data.find(b"\0", found)
        end = len(data) if end < 0 else end
        out += data[start:found] + new + data[found + len(old):end]
        start = min(len(data), end + pad)  # the NULs conda padded the string with
    return bytes(out + data[start:])


def _published_path(installed: str) -> str:
    """Where a noarch python package holds a linked file: site-packages/ and python-scripts/."""
    parts = installed.split("/")
    if len(parts) > 3 and parts[0] == "lib" and parts[2] == "site-packages":
        return "/".join(["site-packages", *parts[3:]])
    if parts[0] == "bin":
        return "/".join(["python-scripts", *parts[1:]])
    return installed


_INDEX_KEYS = ("name", "version", "build", "build_number", "depends", "constrains", "license", "license_family",
               "subdir", "noarch", "timestamp", "arch", "platform", "features", "track_features")


def _info(record: dict[str, Any], paths: list[dict[str, Any]], noarch: bool) -> list[Member]:
    index = {k: record[k] for k in _INDEX_KEYS if record.get(k) is not None}
    index.setdefault("build_number", 0)
    index.setdefault("depends", [])
    members = [Member("info/index.json", json.dumps(index, indent=2, sort_keys=True).encode()),
               Member("info/paths.json", json.dumps({"paths": paths, "paths_version": 1}, indent=2).encode()),
               Member("info/files", "".join(p["_path"] + "\n" for p in paths).encode())]
    if noarch:
        link = {"noarch": {"type": "python", "entry_points": []}, "package_metadata_version": 1}
        members.append(Member("info/link.json", json.dumps(link).encode()))
    return members

"""What a built environment says about its build, and a fingerprint that tells if it changed since.

condaqa writes conda-meta/condaqa-build into each environment it builds (not *.json: conda
loads every conda-meta/*.json as a package record). It holds the plan's digest (an unchanged
plan is not rebuilt), a build id unique to that build, and the fingerprint of the prefix as
the build left it. The fingerprint covers every path, its type, size and modification time
(bytecode caches aside; permissions are readiness.py's business at the cutover), so a
rebuild, a failed rebuild, a deletion, a `conda install` or a `pip install` into the
environment afterwards all change it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from condaqa import atomic

STAMP = Path("conda-meta") / "condaqa-build"
ABSENT = "absent"


@dataclass(frozen=True)
class Stamp:
    digest: str
    build_id: str
    fingerprint: str
    built: float
    env: str


def read_stamp(prefix: Path) -> Stamp | None:
    try:
        data = json.loads((prefix / STAMP).read_text(encoding="utf-8"))
        return Stamp(str(data["digest"]), str(data["build_id"]), str(data["fingerprint"]), float(data["built"]),
                     str(data["env"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_stamp(prefix: Path, env: str, digest: str) -> Stamp:
    stamp = Stamp(digest, uuid.uuid4().hex, fingerprint(prefix), time.time(), env)
    atomic.write_text(prefix / STAMP, json.dumps(asdict(stamp)) + "\n")
    return stamp


def fingerprint(prefix: Path) -> str:
    """A digest of every path under `prefix` with its type, size and mtime (folders: their name);
    "absent" without conda-meta."""
    if not (prefix / "conda-meta").is_dir():
        return ABSENT
    stamp = str(prefix / STAMP)
    lines: list[str] = []
    folders = [str(prefix)]
    while folders:
        folder = folders.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            lines.append(f"unreadable {folder}\n")
            continue
        for entry in entries:
            if entry.name == "__pycache__" or entry.path == stamp:
                continue
            if entry.is_dir(follow_symlinks=False):  # its entries are listed below; its mtime only says that
                lines.append(f"{entry.path}/\n")
                folders.append(entry.path)
                continue
            st = entry.stat(follow_symlinks=False)
            target = os.readlink(entry.path) if entry.is_symlink() else ""
            lines.append(f"{entry.path}\0{stat.S_IFMT(st.st_mode)}\0{st.st_size}\0{st.st_mtime_ns}\0{target}\n")
    digest = hashlib.sha256("".join(lines).encode())
    return digest.hexdigest()[:24]


"""What a built environment says about its build, and a fingerprint that tells if it changed since.

condaqa writes conda-meta/condaqa-build into each environment it builds (not *.json: conda
loads every conda-meta/*.json as a package record). It holds the plan's digest (an unchanged
plan is not rebuilt), a build id unique to that build, and the fingerprint of the prefix as
the build left it. The fingerprint (fingerprint.py) covers every path, its type, size and
content, bytecode included (permissions are readiness.py's business at the cutover), so a
rebuild, a failed rebuild, a deletion, a `conda install` or a `pip install` into the
environment afterwards, or a same-size edit with its mtime put back, all change it.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from condaqa import atomic
from condaqa.fingerprint import ABSENT, cache_file, fingerprint

STAMP = Path("conda-meta") / "condaqa-build"


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


def write_stamp(prefix: Path, env: str, digest: str, state_dir: Path) -> Stamp:
    stamp = Stamp(digest, uuid.uuid4().hex, env_fingerprint(prefix, state_dir), time.time(), env)
    atomic.write_text(prefix / STAMP, json.dumps(asdict(stamp)) + "\n")
    return stamp


def env_fingerprint(prefix: Path, state_dir: Path) -> str:
    """The fingerprint of environment `prefix` without the stamp that holds it; "absent" without conda-meta.
    File digests are kept under `state_dir` (the site's .condaqa)."""
    if not (prefix / "conda-meta").is_dir():
        return ABSENT
    return fingerprint(prefix, cache_file(state_dir, prefix), skip=frozenset({STAMP.as_posix()}))

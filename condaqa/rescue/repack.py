"""Write a conda package (.tar.bz2) from members: what a re-packed cache folder or prefix holds.

py-rattler 0.28 reads and extracts packages but writes none, so the archive is written with
tarfile as conda-build lays it out: the payload first, then info/.
"""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

MTIME = 1_700_000_000


@dataclass(frozen=True)
class Member:
    """One entry of a package: bytes, or a symlink target when `symlink` is set."""

    path: str
    data: bytes = b""
    symlink: str | None = None
    executable: bool = False


def pack(target: Path, members: list[Member]) -> Path:
    """Write `members` (info/ after the payload) to `target` through a temporary file in its folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    ordered = sorted(members, key=lambda m: (m.path.startswith("info/"), m.path))
    try:
        with tarfile.open(partial, "w:bz2", compresslevel=1) as tar:
            for member in ordered:
                info = tarfile.TarInfo(member.path)
                info.mtime = MTIME
                if member.symlink is not None:
                    info.type, info.linkname = tarfile.SYMTYPE, member.symlink
                    tar.addfile(info)
                    continue
                info.size, info.mode = len(member.data), 0o755 if member.executable else 0o644
                tar.addfile(info, io.BytesIO(member.data))
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target

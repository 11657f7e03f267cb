"""conda-meta/history entries in conda's own format, which py-rattler leaves empty."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Dist:
    channel: str
    subdir: str
    name: str
    version: str
    build: str

    def __str__(self) -> str:
        return f"{self.channel}/{self.subdir}::{self.name}-{self.version}-{self.build}"


def history_entry(cmd: str, added: Iterable[Dist], specs: Iterable[str], conda_version: str | None) -> str:
    """One block as conda/history.py writes it: header, cmd, version, +dists, update specs."""
    lines = [f"==> {time.strftime('%Y-%m-%d %H:%M:%S')} <==", f"# cmd: {cmd}"]
    if conda_version:
        lines.append(f"# conda version: {'.'.join(conda_version.split('.')[:3])}")
    lines += [f"+{d}" for d in sorted(added, key=str)]
    lines.append(f"# update specs: {list(specs)!r}")
    return "\n".join(lines) + "\n"


def append_history(prefix: Path, entry: str) -> None:
    with open(prefix / "conda-meta" / "history", "a", encoding="utf-8") as handle:
        handle.write(entry)

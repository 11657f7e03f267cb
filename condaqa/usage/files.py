"""What an environment's files say about its use, each with its weakness stated.

- access times of the programs in its `bin/`, where the mount records them: the mount's options
  come from /proc/self/mountinfo (`noatime`: none; `relatime`, Linux's default: at most once a
  day; otherwise every read), and any reader sets them, condaqa's own probes and backups included;
- conda-meta/history: the last install or removal, by the file's owner; it changes only when
  the environment changes, never when it is used;
- users' ~/.conda/environments.txt lines naming it: conda adds one when that user creates or
  changes an environment; the file's date is its last change, not a use.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from condaqa import inputs
from condaqa.errors import CondaqaError
from condaqa.inputs import read_text
from condaqa.kernels.users import ENVIRONMENTS_TXT
from condaqa.prefix import read_history
from condaqa.usage.processes import user_name

MOUNTINFO = Path("/proc/self/mountinfo")
MAX_BIN = 2000  # entries of bin/ whose times are read


@dataclass(frozen=True)
class Mount:
    point: str
    options: tuple[str, ...]

    @property
    def atime(self) -> str:
        """How this mount records access times, in words."""
        if "noatime" in self.options:
            return f"not recorded ({self.point} is mounted noatime)"
        if "relatime" in self.options:
            return (f"updated at most once a day ({self.point} is mounted relatime), and by any reader, condaqa's "
                    "own probes and backups included")
        return f"updated on every read ({self.point} records every access), by any reader, condaqa's probes included"


@dataclass(frozen=True)
class FileFact:
    env: str
    source: str  # atime, history, environments.txt
    time: float
    user: str
    what: str
    weakness: str


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mounts(mountinfo: Path = MOUNTINFO) -> list[Mount]:
    found = []
    try:
        text = mountinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 6:
            found.append(Mount(_unescape(fields[4]), tuple(fields[5].split(","))))
    return found


def mount_of(path: Path, known: Sequence[Mount]) -> Mount | None:
    """The mount holding `path`: the longest mount point it lies under (the last one mounted, if stacked)."""
    text, best = str(path), None
    for mount in known:
        point = mount.point.rstrip("/") or "/"
        if (text == point or text.startswith(point.rstrip("/") + "/")) and (
                best is None or len(point) >= len(best.point.rstrip("/") or "/")):
            best = mount
    return best


def access_time(env: str, prefix: Path, known: Sequence[Mount]) -> FileFact | None:
    """The newest access time among the regular files of bin/ (links are not followed: a link's own time
    says nothing), unless the mount does not record them."""
    mount = mount_of(prefix, known)
    if mount is not None and "noatime" in mount.options:
        return None
    newest: tuple[float, str] | None = None
    try:
        with os.scandir(prefix / "bin") as entries:
            for number, entry in enumerate(entries):
                if number >= MAX_BIN:
                    break
                if entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    if newest is None or st.st_atime > newest[0]:
                        newest = (st.st_atime, entry.name)
    except OSError:
        return None
    if newest is None:
        return None
    how = mount.atime if mount else "recorded as the kernel's default does (no mount found for it)"
    return FileFact(env, "atime", newest[0], "-", f"bin/{newest[1]} was last read or run",
                    f"an access time carries no user; {how}")


def history(env: str, prefix: Path) -> FileFact | None:
    path = prefix / "conda-meta" / "history"
    try:
        st = path.stat()
        revisions = read_history(prefix)
    except (OSError, CondaqaError):
        return None
    dated = [r.date for r in revisions if r.date]
    what = f"last changed {dated[-1]}" if dated else "changed"
    return FileFact(env, "history", st.st_mtime, user_name(st.st_uid), f"conda-meta/history: {what}",
                    "changes only (installs and removals), never a use")


def environments_txt(prefixes: dict[str, Path], homes: Sequence[Path]) -> tuple[list[FileFact], list[str]]:
    """Lines of users' ~/.conda/environments.txt naming an environment (its real path, `prefixes`) by any of its
    paths (through `current`, `envs` or its folder); and the files that could not be read."""
    real = {str(path): env for env, path in prefixes.items()}
    facts, unreadable = [], []
    for home in homes:
        path = home / ENVIRONMENTS_TXT
        try:
            if not path.is_file():
                continue
            st = path.stat()
            lines = read_text(path, inputs.ENVIRONMENTS_TXT, CondaqaError).splitlines()
        except (OSError, CondaqaError) as exc:
            unreadable.append(f"{path}: {getattr(exc, 'strerror', None) or exc}")
            continue
        owner = _owner(home, st.st_uid)
        for line in lines:
            env = real.get(os.path.realpath(line.strip())) if line.strip() else None
            if env is not None:
                facts.append(FileFact(env, "environments.txt", st.st_mtime, owner, f"{path} lists {line.strip()}",
                                      "conda adds the line when the user creates or changes an environment; its "
                                      "date is the file's last change, not a use"))
    return facts, unreadable


def _owner(home: Path, uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return home.name

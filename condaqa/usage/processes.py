"""Processes running from an environment now, read from /proc.

A process runs from an environment when its executable (`/proc/<pid>/exe`), its working folder
(`cwd`), a file it has mapped (`maps`: shared libraries, extension modules) or a path its
command line names (`ROOT/envs/x/bin/python script.py`, whose python may be a link to an
interpreter elsewhere) lies under the environment's real path. The command line and owner of
every process are readable by everyone; exe, cwd and maps of another user's process are not,
unless condaqa runs as root: what could not be read is kept, per process, and said.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from condaqa.inputs import redact

PROC = Path("/proc")
MAPS_CAP = 4 * 1024 * 1024  # bytes of /proc/<pid>/maps read: a python with every library mapped has far fewer
COMMAND_CAP = 200  # characters of a command line kept


@dataclass(frozen=True)
class Process:
    pid: int
    uid: int
    user: str
    argv: tuple[str, ...]
    started: float  # seconds since the epoch
    paths: tuple[tuple[str, str], ...]  # (how, real path): exe, cwd, mapped file, command line
    unreadable: tuple[str, ...]  # what of exe, cwd, maps could not be read, with why

    @property
    def command(self) -> str:
        """The command line on one line (a newline in an argument must not start a line in a manifest's comment),
        credentials masked, cut at COMMAND_CAP."""
        text = redact("".join(c if c.isprintable() else "?" for c in " ".join(self.argv))) or "?"
        return text if len(text) <= COMMAND_CAP else text[: COMMAND_CAP - 3] + "..."


@dataclass(frozen=True)
class Sighting:
    """One process running from one environment, and the first path that says so."""

    env: str
    process: Process
    how: str  # exe, cwd, mapped file, command line
    path: str


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _boot_time(proc: Path) -> float:
    try:
        for line in (proc / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def _started(folder: Path, boot: float) -> float:
    """When the process started: field 22 of /proc/<pid>/stat, in clock ticks since boot."""
    stat = (folder / "stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # the command in parentheses may hold spaces
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _real(path: str) -> str:
    """A command-line word's real folder with its own name kept: `envs/x/bin/python` may link to another
    interpreter, and it is the environment's path that was run."""
    folder, name = os.path.split(path)
    return os.path.join(os.path.realpath(folder), name)


def _mapped(folder: Path) -> list[str]:
    with open(folder / "maps", "rb") as handle:
        text = handle.read(MAPS_CAP).decode("utf-8", errors="replace")
    seen: dict[str, None] = {}
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/"):
            seen[parts[5].removesuffix(" (deleted)")] = None
    return list(seen)


def read_process(folder: Path, boot: float) -> Process:
    """One /proc/<pid>; OSError when the process is gone (it may end while it is read)."""
    pid = int(folder.name)
    uid = folder.stat().st_uid
    raw = (folder / "cmdline").read_bytes()
    argv = tuple(w.decode("utf-8", errors="replace") for w in raw.split(b"\0") if w)
    started = _started(folder, boot)
    paths: list[tuple[str, str]] = []
    unreadable: list[str] = []
    for how in ("exe", "cwd", "mapped file"):
        try:
            read = _mapped(folder) if how == "mapped file" else [os.readlink(folder / how)]
            paths += [(how, p.removesuffix(" (deleted)")) for p in read]
        except PermissionError as exc:
            unreadable.append(f"{how} ({exc.strerror})")
        except FileNotFoundError:  # a kernel thread has no exe; or the process ended meanwhile
            continue
    cwd = next((path for how, path in paths if how == "cwd"), "")  # a relative path is the process's cwd's
    words = [w for w in argv if w.startswith("/") or (cwd and "/" in w and not w.startswith("-"))]
    paths += [("command line", _real(os.path.join(cwd, word))) for word in words]
    return Process(pid, uid, user_name(uid), argv, started, tuple(paths), tuple(unreadable))


def processes(proc: Path = PROC) -> list[Process]:
    """Every process but this one, as far as it can be read; those that end while read are left out."""
    boot, found = _boot_time(proc), []
    for folder in proc.iterdir():
        if not folder.name.isdigit() or int(folder.name) == os.getpid():
            continue
        try:
            found.append(read_process(folder, boot))
        except (OSError, ValueError, IndexError):
            continue
    return sorted(found, key=lambda p: p.pid)


def sightings(found: Iterable[Process], prefixes: Mapping[str, Sequence[Path]]) -> list[Sighting]:
    """Each process running from one of `prefixes` (environment -> its real path, then the paths it is reached
    by: a reader that cannot pass through a folder cannot resolve a command line's links), once per environment."""
    roots = [(env, [str(p) for p in paths]) for env, paths in prefixes.items()]
    out = []
    for process in found:
        for env, spellings in roots:
            hit = next(((how, p) for how, p in process.paths for root in spellings
                        if p == root or p.startswith(root + "/")), None)
            if hit is not None:
                out.append(Sighting(env, process, *hit))
    return out


def unreadable_words(found: Iterable[Process]) -> list[str]:
    """What could not be read, per user: `5 processes of alice (exe, cwd, mapped file: Permission denied)`."""
    found = list(found)
    by_user: dict[str, set[str]] = {}
    for process in found:
        if process.unreadable:
            by_user.setdefault(process.user, set()).update(process.unreadable)
    counts = {user: sum(1 for p in found if p.user == user and p.unreadable) for user in by_user}
    remedy = ("protected from root too (another namespace's or the init process)" if os.geteuid() == 0 else
              "run as root to see their executables, folders and mapped files")
    return [f"{counts[user]} process(es) of {user}: {', '.join(sorted(what))} not readable; only their command "
            f"lines were matched ({remedy})" for user, what in sorted(by_user.items())]

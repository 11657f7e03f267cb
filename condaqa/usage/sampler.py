"""The sampler log: what `condaqa usage --sample` saw, for the weeks before a migration.

Cron runs it every few minutes. Each run appends one JSON line to
ROOT/.condaqa/usage/<UTC date>.jsonl, in a single write to a file opened for appending, so
samplers on several hosts never interleave a line; a sample that saw nothing is written too, so
the log says how long the sampler has watched. A line is bounded (at most MAX_SEEN sightings,
commands cut), a day's file is read only when the window asks for it, and files older than
KEEP_DAYS are removed by the sampler itself. A line that does not parse (a disk that filled up
mid-line) is skipped and counted.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from condaqa.inputs import guard
from condaqa.site import Site
from condaqa.usage.processes import Sighting

MAX_SEEN = 500
KEEP_DAYS = 400
_SUFFIX = ".jsonl"


@dataclass(frozen=True)
class Seen:
    """One environment seen in use by one sample."""

    env: str
    time: str  # ISO 8601, UTC
    user: str
    command: str
    pid: int
    how: str
    kernel: str = ""
    host: str = ""


@dataclass
class Log:
    """What the sampler log holds within a window."""

    seen: list[Seen] = field(default_factory=list)
    samples: int = 0
    first: str = ""
    last: str = ""
    skipped: int = 0  # lines that did not parse
    folder: str = ""

    def last_seen(self) -> dict[str, Seen]:
        """Each environment's newest sighting."""
        newest: dict[str, Seen] = {}
        for seen in self.seen:
            if seen.env not in newest or seen.time > newest[seen.env].time:
                newest[seen.env] = seen
        return newest

    def times_seen(self, env: str) -> int:
        """In how many samples the environment was seen."""
        return len({s.time for s in self.seen if s.env == env})


def folder(site: Site) -> Path:
    return site.state_dir / "usage"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def append(site: Site, found: Sequence[Sighting], kernels: dict[int, str], unreadable: int,
           when: datetime.datetime | None = None) -> Path:
    """Append one sample: every sighting (at most MAX_SEEN) with its user and command, in one write."""
    when = when or _now()
    where = folder(site)
    where.mkdir(parents=True, exist_ok=True, mode=0o750)
    path = guard(where / f"{when.date().isoformat()}{_SUFFIX}", [site.state_dir], "append a usage sample to")
    seen = [{"env": s.env, "pid": s.process.pid, "user": s.process.user, "command": s.process.command, "how": s.how,
             "kernel": kernels.get(s.process.pid, "")} for s in found[:MAX_SEEN]]
    line = {"time": when.isoformat(timespec="seconds"), "host": socket.gethostname(), "seen": seen,
            "cut": max(0, len(found) - MAX_SEEN), "unreadable": unreadable}
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o640)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode("utf-8"))
    finally:
        os.close(fd)
    _prune(where, when.date())
    return path


def _prune(where: Path, today: datetime.date) -> None:
    oldest = today - datetime.timedelta(days=KEEP_DAYS)
    for path in where.glob(f"*{_SUFFIX}"):
        day = _day(path)
        if day is not None and day < oldest:
            path.unlink(missing_ok=True)


def _day(path: Path) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(path.name.removesuffix(_SUFFIX))
    except ValueError:
        return None


def read(site: Site, since_seconds: int, now: datetime.datetime | None = None) -> Log:
    """The samples of the last `since_seconds`, from the day files that window covers."""
    now = now or _now()
    start = now - datetime.timedelta(seconds=since_seconds)
    log = Log(folder=str(folder(site)))
    where = folder(site)
    if not where.is_dir():
        return log
    files = sorted(p for p in where.glob(f"*{_SUFFIX}") if (d := _day(p)) is not None and d >= start.date())
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for text in handle:
                    _take(log, text, start)
        except OSError:
            log.skipped += 1
    return log


def _take(log: Log, text: str, start: datetime.datetime) -> None:
    try:
        line = json.loads(text)
        when = datetime.datetime.fromisoformat(line["time"])
        seen = [Seen(str(s["env"]), line["time"], str(s["user"]), str(s["command"]), int(s["pid"]), str(s["how"]),
                     str(s.get("kernel", "")), str(line.get("host", ""))) for s in line["seen"]]
    except (ValueError, KeyError, TypeError):
        log.skipped += 1
        return
    if when < start:
        return
    log.samples += 1
    log.first = min(log.first or line["time"], line["time"])
    log.last = max(log.last, line["time"])
    log.seen += seen

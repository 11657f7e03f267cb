"""The log of qualification runs, one JSON line per finished run, for the overview's "over time".

condaqa keeps each check's latest record only (store.py), which says where every environment stands
but not how the nightly runs went; each run's counts are appended here when it finishes, by the
controller, under the state folder only condaqa writes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from condaqa import locks
from condaqa.site import Site
from condaqa.vocab import Verdict


@dataclass(frozen=True)
class Run:
    at: str  # when it finished, local time, to the second
    host: str
    installation: str
    shard: str  # "2/3", or "" for a whole run
    environments: int  # the environments it ran tests of
    qualified: int  # of those, passed or exported when it finished
    failed: int
    pending: int  # neither: a test was deselected, skipped or interrupted
    exit: int  # pytest's exit status
    seconds: float


def log_file(site: Site, installation: str) -> Path:
    return site.state_dir / "runs" / f"{installation}.jsonl"


def finished(installation: str, shard: str, verdicts: list[str], exit_status: int, seconds: float) -> Run:
    """The run that just finished, from the verdicts of the environments it ran."""
    qualified = sum(v in (Verdict.PASSED, Verdict.EXPORTED) for v in verdicts)
    failed = sum(v == Verdict.FAILED for v in verdicts)
    return Run(time.strftime("%Y-%m-%d %H:%M:%S"), locks.host(), installation, shard, len(verdicts), qualified,
               failed, len(verdicts) - qualified - failed, exit_status, round(seconds, 1))


def record(site: Site, run: Run) -> None:
    """Append `run`: one write of one line, which concurrent shards on other hosts cannot interleave; on a
    line of its own after a write that a full disk cut."""
    path = log_file(site, run.installation)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(asdict(run)) + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        size = os.fstat(fd).st_size
        cut = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        os.write(fd, b"\n" * cut + line)
    finally:
        os.close(fd)


def last(site: Site, installation: str, count: int) -> list[Run]:
    """The last `count` runs, oldest first; a line that is not a run (cut by a full disk) is passed over."""
    path = log_file(site, installation)
    if not path.is_file():
        return []
    names = {f.name for f in fields(Run)}
    found = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and set(data) == names:
            found.append(Run(**data))
    return found[-count:]

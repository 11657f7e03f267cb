"""The audit log: one JSON line per lifecycle action in ROOT/.condaqa/audit.log.

It is also the memory of the lifecycle: a rollback returns to the installation that `current`
pointed to before the last cutover, unless a `finalize` line closed that cutover since, and
those facts live only here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from condaqa.errors import SiteError
from condaqa.locks import identity, now
from condaqa.site import Site
from condaqa.vocab import Action


def log_file(site: Site) -> Path:
    return site.state_dir / "audit.log"


def append(site: Site, record: dict[str, object]) -> dict[str, object]:
    """Add one line with time, user and host; a single write, flushed to disk before returning."""
    line = {"time": now(), **identity(), **record}
    site.state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_file(site), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o664)
    try:
        os.write(fd, (json.dumps(line, sort_keys=False) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return line


def records(site: Site) -> list[dict[str, Any]]:
    """Every readable line, oldest first; a line cut short by a power loss is skipped."""
    try:
        lines = log_file(site).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise SiteError(f"{log_file(site)}: cannot read the audit log: {exc.strerror}") from None
    return [r for r in map(_parse, lines) if r is not None]


def has_id(site: Site, action_id: str) -> bool:
    return any(r.get("id") == action_id for r in records(site))


def last_cutover(site: Site) -> dict[str, Any] | None:
    """The newest completed cutover record, read from the end of the log."""
    try:
        lines = log_file(site).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        record = _parse(line)
        if record is not None and record.get("action") == Action.CUTOVER:
            return record
    return None


def finalized(site: Site) -> dict[str, Any] | None:
    """The `finalize` line that closed the last cutover, or None while that cutover can still be rolled back."""
    closing = [r for r in records(site) if r.get("action") in (Action.CUTOVER, Action.FINALIZE)]
    return closing[-1] if closing and closing[-1]["action"] == Action.FINALIZE else None


def rollback_target(site: Site) -> str | None:
    """Where `condaqa rollback` would switch `current`: before the last cutover, unless already there
    or that cutover was finalized."""
    record = last_cutover(site)
    if record is None or record["from"] == site.link_target(site.current_name) or finalized(site) is not None:
        return None
    return str(record["from"])


def _parse(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None

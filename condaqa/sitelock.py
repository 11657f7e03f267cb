"""One lifecycle action at a time per site: an OS lock on ROOT/.condaqa/lock.

flock is released by the kernel when its holder dies, so a lock can never outlive its process;
the holder's pid, user, host, command and start time are written inside the file only to tell
the next person who is busy, or whose crashed action left it behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from condaqa import audit
from condaqa.errors import CutoverError
from condaqa.site import Site


class LockHeld(CutoverError):
    """Another cutover, rollback, retire or new-installation is running on this site."""


def lock_file(site: Site) -> Path:
    return site.state_dir / "lock"


@contextlib.contextmanager
def site_lock(site: Site, command: str) -> Iterator[str]:
    """Hold the site lock; yields a note about a stale holder it took over ("" if none)."""
    path = lock_file(site)
    try:
        site.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
    except OSError as exc:
        raise CutoverError(f"{path}: cannot open the site lock ({exc.strerror}); run as a site administrator") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_holder(fd))
            raise LockHeld(f"{path}: the site is locked by {holder}; try again when it is done") from None
        stale = _read(fd)
        _write(fd, {**audit.identity(), "command": command, "since": audit.now()})
        try:
            yield f"recovered a stale lock left by {_describe(stale)}, which is no longer running" if stale else ""
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_status(site: Site) -> str:
    """For `condaqa status`: who holds the lock, a stale holder, or "" when the site is free.

    It only reads the file: taking the lock, even for an instant, could refuse a real cutover.
    """
    try:
        fd = os.open(lock_file(site), os.O_RDONLY)
    except FileNotFoundError:
        return ""
    try:
        holder = _read(fd)
    finally:
        os.close(fd)
    if not holder:
        return ""
    if holder.get("host") == socket.gethostname() and not _alive(int(holder.get("pid", 0))):
        return f"stale lock left by {_describe(holder)} (the next command takes it over)"
    return f"locked by {_describe(holder)}"


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(fd: int) -> dict:
    """The holder's record, waiting a moment for a holder that has just taken the lock to write it."""
    for _ in range(20):
        holder = _read(fd)
        if holder:
            return holder
        time.sleep(0.02)
    return holder


def _read(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    try:
        holder = json.loads(raw) if raw.strip() else {}
    except ValueError:
        holder = {"command": raw[:80].decode("utf-8", "replace")}
    return holder if isinstance(holder, dict) else {}


def _write(fd: int, holder: dict) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(holder).encode("utf-8"))


def _describe(holder: dict) -> str:
    if not holder:
        return "another process (it has not written its name yet)"
    return (
        f"{holder.get('command', '?')!r} (pid {holder.get('pid', '?')}, user {holder.get('user', '?')}, "
        f"host {holder.get('host', '?')}, since {holder.get('since', '?')})"
    )

"""The OS locks that keep condaqa's actions on one site from overlapping.

All are `flock` locks under ROOT/.condaqa/, so the kernel frees them when their holder dies,
whatever the reason; the JSON written beside them only says who holds them.

- the **site lock**: one lifecycle action at a time (cutover, rollback, retire, new-installation, qa);
- the **qualification lock** of an installation: shared by every qualification (a pytest
  run, `condaqa replicate`) that builds in it or runs its python; a cutover, rollback or
  retire takes it exclusively, so neither can start while the other runs;
- the **build lock** of one environment in one installation, and the **cache lock** of an
  installation's package cache (conda cannot extract into one cache twice at a time).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import getpass
import json
import os
import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from condaqa.errors import LockHeld, SiteError
from condaqa.site import Installation, Site


class QualificationRunning(LockHeld):
    """A cutover, rollback or retire refused because the installation is being qualified right now."""

    exit_code = 1


def identity() -> dict[str, object]:
    """Who acts: the login behind sudo as well, so a shared admin account still names a person."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    sudo = os.environ.get("SUDO_USER")
    if sudo and sudo != user:
        user = f"{sudo} (as {user})"
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid()}


def now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def lock_file(site: Site) -> Path:
    return site.state_dir / "lock"


def _state_dir(site: Site) -> Path:
    """ROOT/.condaqa, created on demand, but never for a site whose root does not exist."""
    if not site.root.is_dir():
        raise SiteError(f"{site.root}: the site root does not exist (site file {site.file})")
    site.state_dir.mkdir(exist_ok=True)
    return site.state_dir


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
    except OSError as exc:
        raise LockHeld(f"{path}: cannot open the lock ({exc.strerror}); run as a site administrator") from None


@contextlib.contextmanager
def site_lock(site: Site, command: str) -> Iterator[str]:
    """Hold the site lock; yields a note about a stale holder it took over ("" if none)."""
    _state_dir(site)
    path = lock_file(site)
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = describe(_holder(fd))
            raise LockHeld(f"{path}: the site is locked by {holder}; try again when it is done") from None
        stale = _read(fd)
        _write(fd, {**identity(), "command": command, "since": now()})
        try:
            yield f"recovered a stale lock left by {describe(stale)}, which is no longer running" if stale else ""
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_status(site: Site) -> str:
    """For `condaqa status`: who holds the site lock, a stale holder, or "" when the site is free.

    It only reads the file: taking the lock, even for an instant, could refuse a real cutover.
    """
    try:
        fd = os.open(lock_file(site), os.O_RDONLY)
    except OSError:
        return ""
    try:
        holder = _read(fd)
    finally:
        os.close(fd)
    if not holder:
        return ""
    if holder.get("host") == socket.gethostname() and not _alive(int(str(holder.get("pid", 0)))):
        return f"stale lock left by {describe(holder)} (the next command takes it over)"
    return f"locked by {describe(holder)}"


def _qualification_path(site: Site, installation: str) -> Path:
    return site.state_dir / "locks" / f"qualify-{installation}.lock"


@contextlib.contextmanager
def qualifying(site: Site, installations: Iterable[str], command: str) -> Iterator[None]:
    """Hold the qualification lock of `installations`, shared: refused while a cutover holds one."""
    _state_dir(site)
    held: list[tuple[int, Path]] = []
    try:
        for name in sorted(set(installations)):
            path = _qualification_path(site, name)
            fd = _open(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                busy = describe(_read_path(lock_file(site))) if lock_file(site).exists() else "a lifecycle action"
                raise LockHeld(f"{name} is being switched by {busy}; qualify it when that is done") from None
            card = path.with_suffix(".d") / f"{socket.gethostname()}-{os.getpid()}.json"
            card.parent.mkdir(exist_ok=True)
            card.write_text(json.dumps({**identity(), "command": command, "since": now()}), encoding="utf-8")
            held.append((fd, card))
        yield
    finally:
        for fd, card in held:
            with contextlib.suppress(OSError):
                card.unlink()
            os.close(fd)


@contextlib.contextmanager
def no_qualification(site: Site, installations: Iterable[str], action: str) -> Iterator[None]:
    """Hold the qualification locks of `installations` exclusively for a lifecycle action, or refuse,
    naming each qualification that is running."""
    held: list[int] = []
    try:
        for name in sorted(set(installations)):
            path = _qualification_path(site, name)
            fd = _open(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                holders = ", ".join(_qualifiers(path)) or "a qualification that has not said who it is yet"
                raise QualificationRunning(f"refusing to {action}: {name} is being qualified by {holders}; "
                                           "wait for it to finish (or stop it)") from None
            held.append(fd)
        yield
    finally:
        for fd in held:
            os.close(fd)


def _qualifiers(path: Path) -> list[str]:
    found = []
    for card in sorted(path.with_suffix(".d").glob("*.json")):
        holder = _read_path(card)
        if holder.get("host") == socket.gethostname() and not _alive(int(str(holder.get("pid", 0)))):
            continue
        found.append(describe(holder))
    return found


@contextlib.contextmanager
def building(site: Site, installation: Installation, env: str) -> Iterator[None]:
    """One build of an environment at a time, whether from the CLI or a pytest worker."""
    fd = _open(_state_dir(site) / "locks" / installation.name / f"{env}.lock")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def package_cache(site: Site, installation: Installation) -> Iterator[None]:
    """One writer at a time into an installation's package cache (conda #13037, #9484)."""
    fd = _open(_state_dir(site) / "locks" / installation.name / "pkgs.lock")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def rescue_channel(site: Site) -> Iterator[None]:
    """One writer at a time into ROOT/rescue and its index, whether from the CLI or a pytest worker."""
    fd = _open(_state_dir(site) / "locks" / "rescue.lock")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


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


def _holder(fd: int) -> dict[str, object]:
    """The holder's record, waiting a moment for a holder that has just taken the lock to write it."""
    holder: dict[str, object] = {}
    for _ in range(20):
        holder = _read(fd)
        if holder:
            return holder
        time.sleep(0.02)
    return holder


def _read(fd: int) -> dict[str, object]:
    os.lseek(fd, 0, os.SEEK_SET)
    return _parse(os.read(fd, 4096))


def _read_path(path: Path) -> dict[str, object]:
    try:
        return _parse(path.read_bytes()[:4096])
    except OSError:
        return {}


def _parse(raw: bytes) -> dict[str, object]:
    try:
        holder = json.loads(raw) if raw.strip() else {}
    except ValueError:
        holder = {"command": raw[:80].decode("utf-8", "replace")}
    return holder if isinstance(holder, dict) else {}


def _write(fd: int, holder: dict[str, object]) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(holder).encode("utf-8"))


def describe(holder: dict[str, object]) -> str:
    if not holder:
        return "another process (it has not written its name yet)"
    return (
        f"{holder.get('command', '?')!r} (pid {holder.get('pid', '?')}, user {holder.get('user', '?')}, "
        f"host {holder.get('host', '?')}, since {holder.get('since', '?')})"
    )

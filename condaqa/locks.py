"""The OS locks that keep condaqa's actions on one site from overlapping.

All are `flock` locks under ROOT/.condaqa/, so the kernel frees them when their holder dies,
whatever the reason; the JSON written beside them only says who holds them.

- the **site lock**: one lifecycle action at a time (cutover, rollback, retire, new-installation, qa);
- the **qualification lock** of an installation: shared by every qualification (a pytest
  run, `condaqa replicate`) that builds in it or runs its python; a cutover, rollback or
  retire takes it exclusively, so neither can start while the other runs;
- the **build lock** of one environment in one installation, and the **cache lock** of an
  installation's package cache (conda cannot extract into one cache twice at a time; a cache kept per
  host has a lock per host).

Every card names its host (the UTS host name, so two containers on one machine are two hosts). A
`flock` holds across hosts only where the file system says so: `lock_reach` reads the mount of the
site's state from /proc/self/mountinfo, and a sharded run or a shared package cache is refused where
it does not hold (NFS with `local_lock=flock|all` or `nolock`, Lustre without `flock`, FUSE). Whether a
holder on another host still runs cannot be seen from here: its card stays until the lock is free and
`condaqa unlock --stale` clears it, saying whose it was.
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
from dataclasses import dataclass
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
    return {"user": user, "host": host(), "pid": os.getpid()}


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


def host() -> str:
    """This host's name as every card, result and log line records it."""
    return socket.gethostname()


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
    if _dead_here(holder):
        return f"stale lock left by {describe(holder)} (the next command takes it over)"
    if holder.get("host") != host():
        return (f"locked by {describe(holder)}, on another host: whether it still runs there is seen by its lock "
                "(the next command takes over a lock that is free)")
    return f"locked by {describe(holder)}"


def _dead_here(holder: dict[str, object]) -> bool:
    """A holder on this host whose process is gone (a holder elsewhere cannot be seen from here)."""
    return holder.get("host") == host() and not alive(int(str(holder.get("pid", 0))))


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
            card = path.with_suffix(".d") / f"{host()}-{os.getpid()}.json"
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
    return [describe(holder) for _, holder in _cards(path) if not _dead_here(holder)]


def _cards(path: Path) -> list[tuple[Path, dict[str, object]]]:
    return [(card, _read_path(card)) for card in sorted(path.with_suffix(".d").glob("*.json"))]


def qualifications(site: Site, installation: str) -> list[str]:
    """Who qualifies `installation` now, on any host, in words (for the gate): every card but those of a
    process gone from this host. A card from another host stays until `condaqa unlock --stale` clears it."""
    return [f"{describe(holder)}{'' if holder.get('host') == host() else _ELSEWHERE}"
            for _, holder in _cards(_qualification_path(site, installation)) if not _dead_here(holder)]


_ELSEWHERE = " on another host (if it is no longer running there: condaqa unlock --stale)"


@dataclass(frozen=True)
class Unlocked:
    cleared: list[str]  # the stale cards removed, in words
    held: list[str]  # cards whose lock is still held: their holders run


def unlock_stale(site: Site) -> Unlocked:
    """Clear the cards of qualifications that no longer run, on any host: a card is stale when its lock is free
    (taken here for an instant) or its process is gone from this host. Results are left alone: what a killed
    run did not finish stays `pending` until it runs again."""
    cleared, held = [], []
    for path in sorted((site.state_dir / "locks").glob("qualify-*.lock")):
        cards = _cards(path)
        if not cards:
            continue
        fd = _open(path)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                free = True
            except BlockingIOError:
                free = False
            for card, holder in cards:
                if free or _dead_here(holder):
                    card.unlink(missing_ok=True)
                    cleared.append(f"{path.stem.removeprefix('qualify-')}: {describe(holder)}")
                else:
                    held.append(f"{path.stem.removeprefix('qualify-')}: {describe(holder)}")
        finally:
            os.close(fd)
    return Unlocked(cleared, held)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (made if missing) for the block; closing the file releases it."""
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def building(site: Site, installation: Installation, env: str) -> contextlib.AbstractContextManager[None]:
    """One build of an environment at a time, whether from the CLI or a pytest worker."""
    return _exclusive(_state_dir(site) / "locks" / installation.name / f"{env}.lock")


def package_cache(site: Site, installation: Installation) -> contextlib.AbstractContextManager[None]:
    """One writer at a time into an installation's package cache (conda #13037, #9484): per host when the
    cache is (site.package_cache), else one for every host, which needs `lock_reach` to hold."""
    name = "pkgs.lock" if site.package_cache(installation) == installation.path / "pkgs" else f"pkgs-{host()}.lock"
    return _exclusive(_state_dir(site) / "locks" / installation.name / name)


def merging(site: Site) -> contextlib.AbstractContextManager[None]:
    """One merge of shard reports at a time (two shards that end together both try)."""
    return _exclusive(site.reports_dir / ".merge.lock")


def rescue_channel(site: Site) -> contextlib.AbstractContextManager[None]:
    """One writer at a time into ROOT/rescue and its index, whether from the CLI or a pytest worker."""
    return _exclusive(_state_dir(site) / "locks" / "rescue.lock")


def alive(pid: int) -> bool:
    """Whether process `pid` runs on this host."""
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


@dataclass(frozen=True)
class Reach:
    """Whether a `flock` on a folder excludes a holder on another host, and the mount that decides it."""

    path: Path
    mount_point: str
    fstype: str
    options: str
    holds: bool
    why: str

    def words(self) -> str:
        return (f"{self.path} lies on {self.mount_point} ({self.fstype}, {self.options}): {self.why}")


_NETWORK = {"nfs", "nfs4", "lustre", "cifs", "smb3", "9p", "ceph", "gpfs", "beegfs", "glusterfs", "afs"}


def lock_reach(path: Path, mountinfo: str | None = None) -> Reach:
    """Decide from the mount table (/proc/self/mountinfo) whether locks under `path` hold across hosts."""
    text = Path("/proc/self/mountinfo").read_text(encoding="utf-8") if mountinfo is None else mountinfo
    target = os.path.realpath(path)
    best: tuple[str, str, str] = ("/", "?", "")
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, after = left.split(), right.split()
        if len(fields) < 6 or len(after) < 3:
            continue
        point = fields[4].replace("\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, after[0], ",".join(dict.fromkeys([*fields[5].split(","), *after[2].split(",")])))
    point, fstype, options = best
    opts = set(options.split(","))
    base = fstype.split(".", 1)[0]
    if base in ("nfs", "nfs4"):
        local = next((o for o in opts if o in ("local_lock=flock", "local_lock=all", "nolock")), "")
        if local:
            return Reach(Path(path), point, fstype, options, False, f"{local}: its locks are local to each host; "
                         "mount it without that (local_lock=none, or posix for locks of fcntl only)")
        return Reach(Path(path), point, fstype, options, True, "NFS locks, held by the server for every host")
    if base == "lustre":
        if "flock" in opts:
            return Reach(Path(path), point, fstype, options, True, "Lustre with flock: coherent on every client")
        return Reach(Path(path), point, fstype, options, False, "Lustre without the flock option "
                     "(localflock or noflock): mount it with -o flock")
    if base == "fuse" or base in _NETWORK - {"gpfs", "ceph"}:
        return Reach(Path(path), point, fstype, options, False, f"{fstype} gives no lock that another host sees")
    if base in ("gpfs", "ceph"):
        return Reach(Path(path), point, fstype, options, True, f"{fstype} keeps flock coherent across its clients")
    return Reach(Path(path), point, fstype, options, True, "a local file system: every process that sees it runs on "
                 "this kernel, so its locks exclude one another (containers included)")

"""A fingerprint of a folder tree that no edit can dodge: every path, its type, size and content.

Size and modification time alone miss a same-size edit whose mtime was put back, and the
bytecode in `__pycache__` is code too. So every regular file counts by a digest of its
content. Hashing a whole environment on every look would make a warm re-run slow, so each
file's digest is kept in a cache under the site's state, keyed by what an edit cannot
preserve: inode, size, mtime and ctime (which only the kernel sets). A file whose ctime moved
without its content changing (another environment hard-linked the same package file, or
changed its group) is hashed again and counts the same.

That moved ctime is why a re-run after building many environments used to read each of them
whole: every build links the same package files (and the shared bytecode) into its prefix,
which moves the ctime of files the earlier environments hold too. Within one process a digest
is therefore also kept by device and inode, so a file linked into sixty environments is read
once, not sixty times.

Both keep a digest only for a file whose last change was over a second old when it was read
(`settled`): where the kernel's ctime ticks coarsely (before multigrain timestamps, Linux 6.13;
NFS), a same-size edit in the tick the file was hashed in, its mtime put back, would leave the
key as it was. A file hashed younger than that is hashed again on the next look.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import time
from pathlib import Path

import msgspec

from condaqa import atomic

ABSENT = "absent"
_CHUNK = 1 << 20
_SETTLED_NS = 1_000_000_000  # a file last changed longer ago than this is kept by what it is (settled)
_BY_INODE_MAX = 250_000  # about 60 MiB of digests; past it the process starts over
_by_inode: dict[tuple[int, int, int, int, int], str] = {}


def fingerprint(prefix: Path, cache: Path | None, *, skip: frozenset[str] = frozenset(),
                skip_names: frozenset[str] = frozenset()) -> str:
    """A digest of every path under `prefix` (relative paths in `skip`, and entries named as in
    `skip_names`, left out); "absent" if `prefix` is not a folder. `cache` keeps file digests between
    calls, and this process's by inode (None: hash every file)."""
    if not prefix.is_dir():
        return ABSENT
    found = listing(prefix, cache, skip=skip, skip_names=skip_names)
    text = "".join(f"{path}\0{found[path]}\n" for path in sorted(found))
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:24]


def listing(prefix: Path, cache: Path | None, *, skip: frozenset[str] = frozenset(),
            skip_names: frozenset[str] = frozenset()) -> dict[str, str]:
    """relative path -> what it is (folder, link and target, or size and content digest), for every path
    under `prefix`."""
    known = _load(cache)
    seen: dict[str, list[object]] = {}
    found: dict[str, str] = {}
    top = os.fspath(prefix)
    folders = [""]
    while folders:
        relative = folders.pop()
        try:
            entries = list(os.scandir(f"{top}/{relative}" if relative else top))
        except OSError:
            found[relative or "."] = "unreadable"
            continue
        base = f"{relative}/" if relative else ""
        for entry in entries:
            path = base + entry.name
            if path not in skip and entry.name not in skip_names:
                found[path] = _describe(entry, path, known.get(path), seen, folders, shared=cache is not None)
    if cache is not None and seen != known:
        with contextlib.suppress(OSError):  # a cache that cannot be written costs time, never correctness
            atomic.write_bytes(cache, msgspec.json.encode(seen))
    return found


def _describe(entry: os.DirEntry[str], path: str, old: object, seen: dict[str, list[object]], folders: list[str],
              *, shared: bool) -> str:
    """What `entry` is; a regular file's digest comes from `old` (its cache entry) while inode, size, mtime
    and ctime are still the ones it was hashed with; it is entered in `seen` only once settled. Every path
    of every environment passes here on each look, so the common case (a known regular file) is tested
    first and builds nothing it can reuse."""
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        return "vanished"
    if stat.S_ISREG(st.st_mode):
        if (isinstance(old, list) and len(old) == 5 and old[0] == st.st_ino and old[1] == st.st_size
                and old[2] == st.st_mtime_ns and old[3] == st.st_ctime_ns):
            digest = old[4]
            seen[path] = old
        else:
            key = settled(st)
            digest = _shared_digest(entry.path, key) if shared else _digest(entry.path)
            if key is not None:
                seen[path] = [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, digest]
        return f"{st.st_size}\0{digest}"
    if stat.S_ISDIR(st.st_mode):
        folders.append(path)
        return "folder"
    if stat.S_ISLNK(st.st_mode):
        return f"link\0{os.readlink(entry.path)}"
    return f"type {stat.S_IFMT(st.st_mode)}"


def settled(st: os.stat_result) -> tuple[int, int, int, int, int] | None:
    """What no edit of the file can keep (device, inode, size, mtime, ctime), once its last change is over
    a second old; None before, since the kernel's ctime ticks coarsely and an edit in the same tick would
    keep it. Take it before reading the file: what is read then is what it names, or a newer edit moved it."""
    if st.st_ctime_ns >= time.time_ns() - _SETTLED_NS:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _shared_digest(path: str, key: tuple[int, int, int, int, int] | None) -> str:
    """The digest of a file this process has hashed under another path (a hard link), else its content's;
    `key` is the file's `settled` identity, taken before it is read."""
    if key is not None and (digest := _by_inode.get(key)) is not None:
        return digest
    digest = _digest(path)
    if key is not None:
        if len(_by_inode) >= _BY_INODE_MAX:
            _by_inode.clear()
        _by_inode[key] = digest
    return digest


def _digest(path: str) -> str:
    """The content's digest, read with bare `os.read`: most files of an environment are a few KiB, where a
    buffered file object costs more than the hash (about 22 against 13 microseconds a file). A path that is
    no longer a readable regular file (swapped for a FIFO since its stat) counts as unreadable."""
    sha = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            while chunk := os.read(fd, _CHUNK):
                sha.update(chunk)
        finally:
            os.close(fd)
    except OSError as exc:
        return f"unreadable:{exc.errno}"
    return sha.hexdigest()[:32]


def _load(cache: Path | None) -> dict[str, list[object]]:
    if cache is None:
        return {}
    try:
        data = msgspec.json.decode(cache.read_bytes())
    except (OSError, msgspec.DecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def cache_file(state_dir: Path, prefix: Path) -> Path:
    """Where the digests of `prefix`'s files are kept: one file per real path, under condaqa's state."""
    real = os.path.realpath(prefix)
    return state_dir / "digests" / f"{hashlib.sha256(real.encode()).hexdigest()[:16]}-{Path(real).name}.json"

"""What a sandboxed process sees: the whole file system read-only, a private /tmp and /dev/shm, condaqa's
state hidden, and read-write only the folders a run names (its scratch; pip's prefix and cache).

A pure plan of mount steps, rendered for bubblewrap's options or for the unshare script
(unshare.py). A folder the run needs but the sandbox user could not reach (under /tmp, which
the sandbox replaces, or below a folder closed to that user, such as a home the interpreter
of a venv-style environment lives in) is mounted back at its own path through private,
otherwise empty folders, so nothing else of what hides it becomes visible.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from condaqa.sandbox.identity import Identity

TMPFS, MASK, DIR, RO, RW = "tmpfs", "mask", "dir", "ro", "rw"
PRIVATE = ("/tmp", "/dev/shm")  # fresh and writable for each run


@dataclass(frozen=True)
class Step:
    kind: str
    path: str
    mode: str = ""


def plan(visible: Iterable[str], writable: Iterable[str], masked: Iterable[str], who: Identity,
         reachable: Callable[[str, Identity], bool] | None = None) -> list[Step]:
    """The mount steps, in the order they must be made (a folder before what lies in it)."""
    reachable = reachable or searchable
    steps = {p: Step(TMPFS, p, "1777") for p in PRIVATE}
    wanted = [(p, RW) for p in writable] + [(p, MASK) for p in masked] + [(p, RO) for p in visible]
    for path, kind in sorted(dict.fromkeys(wanted), key=lambda item: _depth(item[0])):
        synthetic = _chain(path, steps, who, reachable)
        if kind == RO and not synthetic:
            continue  # the read-only view of / already holds it at this path
        if path not in steps or steps[path].kind == DIR:
            steps[path] = Step(kind, path, "0755" if kind == MASK else "")
    return sorted(steps.values(), key=lambda s: (_depth(s.path), s.kind != TMPFS and s.kind != MASK))


def _chain(path: str, steps: dict[str, Step], who: Identity, reachable: Callable[[str, Identity], bool]) -> bool:
    """Make every folder above `path` reachable; True when `path` lies in a private folder."""
    synthetic = False
    for folder in _ancestors(path):
        made = steps.get(folder)
        if made is not None:
            synthetic = made.kind in (TMPFS, MASK, DIR)
        elif synthetic:
            steps[folder] = Step(DIR, folder, "0755")
        elif not reachable(folder, who):
            steps[folder] = Step(TMPFS, folder, "0755")
            synthetic = True
    return synthetic


def _ancestors(path: str) -> list[str]:
    parents = [str(p) for p in PurePosixPath(path).parents if str(p) != "/"]
    return parents[::-1]


def _depth(path: str) -> int:
    return len(PurePosixPath(path).parts)


def searchable(folder: str, who: Identity) -> bool:
    """Whether `who` may pass through `folder` by its mode bits (an unreadable one is not)."""
    try:
        st = os.stat(folder)
    except OSError:
        return False
    if st.st_uid == who.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == who.gid or st.st_gid in who.groups:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def bwrap_options(steps: list[Step]) -> list[str]:
    options = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for step in steps:
        if step.kind in (TMPFS, MASK):
            options += ["--perms", step.mode, "--tmpfs", step.path]
        elif step.kind == DIR:
            options += ["--perms", step.mode, "--dir", step.path]
        else:
            options += ["--ro-bind" if step.kind == RO else "--bind", step.path, step.path]
    for step in steps:
        if step.kind == MASK:
            options += ["--remount-ro", step.path]
    return options


def script_words(steps: list[Step]) -> list[str]:
    """The steps as the unshare script (unshare.py) reads them."""
    words: list[str] = []
    for step in steps:
        words += [step.kind, step.path, *([step.mode] if step.kind in (TMPFS, DIR) else [])]
    return words

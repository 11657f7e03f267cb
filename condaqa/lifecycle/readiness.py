"""Can an installation become `current` without hurting users: who can read it, its group
permissions, and files that name paths which will stop existing.

Only mode bits and a bounded set of files are read (each environment's top two levels,
site-packages, scripts), because a full walk of hundreds of environments on NFS would
make the cutover wait for minutes.
"""

from __future__ import annotations

import grp
import pwd
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from condaqa.errors import CutoverError
from condaqa.inputs import open_regular
from condaqa.site import Installation, Site

_RANK = {"nobody": 0, "owner": 1, "group": 2, "everyone": 3}


@dataclass(frozen=True)
class Audience:
    """Who may read a path by its mode bits: everyone, one group, one owner, or nobody."""

    kind: str
    ident: int = -1

    def __str__(self) -> str:
        if self.kind == "group":
            return f"group {_group_name(self.ident)}"
        if self.kind == "owner":
            return f"owner {_user_name(self.ident)} only"
        return self.kind

    def covers(self, wanted: Audience) -> bool:
        """Whether everyone in `wanted` is also in this audience (as far as mode bits tell)."""
        if self.kind == "everyone" or wanted.kind == "nobody":
            return True
        if wanted.kind in ("everyone", "group"):
            return self == wanted
        return self.kind == "group" or self == wanted


def audience(path: Path) -> Audience:
    """Readers of `path` (a symlink is judged by its target): directories need r and x."""
    st = path.stat()
    need = 0o5 if stat.S_ISDIR(st.st_mode) else 0o4
    if st.st_mode & need == need:
        return Audience("everyone")
    if (st.st_mode >> 3) & need == need:
        return Audience("group", st.st_gid)
    if (st.st_mode >> 6) & need == need:
        return Audience("owner", st.st_uid)
    return Audience("nobody")


def readability_problems(old: Installation, new: Installation) -> list[str]:
    """One line per environment of `new` that fewer users could read than its twin in `old`."""
    problems = []
    for env in new.environments():
        reference = [old.path, old.envs_dir, old.env_prefix(env)]
        wanted = _narrowest(audience(p) for p in reference if p.exists())
        for path in _sampled(new, env):
            try:
                have = audience(path)
            except OSError:  # a dangling link is the build checks' business
                continue
            if not have.covers(wanted):
                problems.append(f"{path}: readable by {have}, but {old.name}'s {env} is readable by {wanted}")
                break
    return problems


def group_warnings(old: Installation, new: Installation) -> list[str]:
    """Environments of `new` that lost the group, group-write or setgid that `old` has."""
    warnings = []
    for env in new.environments():
        twin = old.env_prefix(env) if old.env_prefix(env).is_dir() else old.envs_dir
        ref, got = twin.stat(), new.env_prefix(env).stat()
        lost = []
        if got.st_gid != ref.st_gid:
            lost.append(f"group {_group_name(got.st_gid)} instead of {_group_name(ref.st_gid)}")
        if ref.st_mode & stat.S_IWGRP and not got.st_mode & stat.S_IWGRP:
            lost.append("not group-writable")
        if ref.st_mode & stat.S_ISGID and not got.st_mode & stat.S_ISGID:
            lost.append("no setgid bit")
        if lost:
            warnings.append(f"{new.env_prefix(env)}: {', '.join(lost)}, unlike {twin}")
    return warnings


def prefix_references(site: Site, old: Installation, new: Installation, *, qa_goes: bool) -> list[str]:
    """Files in `new`'s environments naming `old`'s versioned path (or `qa`, when it is removed)."""
    needles = {f"{old.path}/".encode(): f"{old.path} (breaks when {old.name} is retired)"}
    if qa_goes:
        needles[f"{site.qa_link}/".encode()] = f"{site.qa_link} (removed by this cutover; --keep-qa keeps it)"
    found: list[str] = []
    for env in new.environments():
        for kind, path, text in _scanned(new.env_prefix(env)):
            found.extend(f"{path}: {kind} names {why}" for needle, why in needles.items() if needle in text)
    return found


def _scanned(prefix: Path) -> Iterator[tuple[str, Path, bytes]]:
    """(kind, file, text) for the files of a prefix that commonly hard-code paths."""
    for path in _children(prefix / "bin"):
        head = _head(path)
        if head.startswith(b"#!"):
            yield "shebang", path, head.split(b"\n", 1)[0]
    for pattern, kind in (
        ("lib/python*/site-packages/*.pth", ".pth file"),
        ("lib/python*/site-packages/*.egg-link", ".egg-link file"),
        ("share/jupyter/kernels/*/kernel.json", "kernel spec"),
        ("etc/conda/activate.d/*", "activation script"),
        ("etc/conda/deactivate.d/*", "deactivation script"),
    ):
        for path in sorted(prefix.glob(pattern)):
            if path.is_file():
                yield kind, path, _head(path, 1 << 20)


def _head(path: Path, size: int = 512) -> bytes:
    """The first bytes of a regular file; nothing of a FIFO or device, which would block or never end."""
    try:
        with open_regular(path, "a file of the environment", CutoverError) as handle:
            return handle.read(size)
    except (OSError, CutoverError):
        return b""


def _sampled(inst: Installation, env: str) -> Iterator[Path]:
    prefix = inst.env_prefix(env)
    yield from (inst.path, inst.envs_dir, prefix)
    yield from _children(prefix)
    yield from _children(prefix / "bin")
    for site_packages in sorted(prefix.glob("lib/python*/site-packages")):
        yield from _children(site_packages)


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def _narrowest(audiences: Iterable[Audience]) -> Audience:
    return min(audiences, key=lambda a: _RANK[a.kind], default=Audience("everyone"))


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)

"""Group ownership and group permissions: new environments match those of current."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from condaqa.errors import SiteError
from condaqa.site import Installation, Site


def inherit_permissions(site: Site, installation: Installation, env: str) -> None:
    """Give a freshly built environment the group permissions of its twin in current (or of current's envs/).

    Call it after building `env` in `installation`, so the users who manage and read current's
    environments can do the same with the new ones.
    """
    current = site.installation(site.current_name)
    twin = current.env_prefix(env)
    match_group(twin if twin.is_dir() else current.envs_dir, installation.env_prefix(env))


def match_group(reference: Path, tree: Path) -> None:
    """Give `tree` and all below it `reference`'s group, its group bits (within each owner's bits), its setgid."""
    ref = reference.stat()
    _give_group(os.fspath(tree), os.lstat(tree), ref, reference)
    # One lstat per entry (scandir's) and a syscall only where something changes: an
    # environment has tens of thousands of files, most of them already right.
    folders = [os.fspath(tree)]
    while folders:
        try:
            entries = list(os.scandir(folders.pop()))
        except OSError:  # as os.walk: an unreadable folder is skipped
            continue
        for entry in entries:
            if entry.is_symlink():
                continue
            _give_group(entry.path, entry.stat(follow_symlinks=False), ref, reference)
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)


def _give_group(path: str, st: os.stat_result, ref: os.stat_result, reference: Path) -> None:
    if stat.S_ISLNK(st.st_mode):
        return
    mode = (st.st_mode & 0o7707) | ((st.st_mode >> 3) & ref.st_mode & 0o070)
    if stat.S_ISDIR(st.st_mode):
        mode |= ref.st_mode & stat.S_ISGID
    try:
        if st.st_gid != ref.st_gid:
            os.chown(path, -1, ref.st_gid)
            os.chmod(path, mode)  # after chown, which may clear setuid and setgid bits
        elif stat.S_IMODE(st.st_mode) != mode:
            os.chmod(path, mode)
    except OSError as exc:
        raise SiteError(f"{path}: cannot give it the group and permissions of {reference}: {exc}") from None

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
    _give_group(tree, ref, reference)
    for folder, dirs, files in os.walk(tree):
        for name in dirs + files:
            _give_group(Path(folder) / name, ref, reference)


def _give_group(path: Path, ref: os.stat_result, reference: Path) -> None:
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        return
    mode = (st.st_mode & 0o7707) | ((st.st_mode >> 3) & ref.st_mode & 0o070)
    if stat.S_ISDIR(st.st_mode):
        mode |= ref.st_mode & stat.S_ISGID
    try:
        if st.st_gid != ref.st_gid:
            os.chown(path, -1, ref.st_gid)
        os.chmod(path, mode)
    except OSError as exc:
        raise SiteError(f"{path}: cannot give it the group and permissions of {reference}: {exc}") from None

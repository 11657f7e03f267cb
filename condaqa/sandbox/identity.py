"""Who foreign code runs as: never root.

Owner checks, probes, kernels and pip of an environment run as the owner of the environment's
prefix in current, so they read what its users read; when root owns it (or it does not exist
yet), as the site's `sandbox_user` (default `nobody`), with the prefix's group as a
supplementary group so a group-only environment stays readable. condaqa run by another user
cannot switch users: foreign code then runs as that user, and the sandbox is what holds.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from condaqa.errors import ConfigError
from condaqa.site import Site


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...]
    name: str

    def __str__(self) -> str:
        return f"{self.name} (uid {self.uid})"


def invoker() -> Identity:
    """Whoever runs condaqa."""
    try:
        name = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        name = str(os.getuid())
    return Identity(os.getuid(), os.getgid(), tuple(os.getgroups()), name)


def sandbox_user(site: Site) -> Identity:
    """The site's `sandbox_user`: must exist here and must not be root."""
    try:
        entry = pwd.getpwnam(site.sandbox_user)
    except KeyError:
        raise ConfigError(f"{site.file}: [site] sandbox_user = {site.sandbox_user!r} is not a user on this "
                          "host; name an unprivileged user that may read the site") from None
    if entry.pw_uid == 0:
        raise ConfigError(f"{site.file}: [site] sandbox_user = {site.sandbox_user!r} is root; foreign code "
                          "never runs as root")
    return Identity(entry.pw_uid, entry.pw_gid, (), entry.pw_name)


def for_prefix(site: Site, prefix: Path | None) -> Identity:
    """Who runs the foreign code of the environment whose prefix in current is `prefix` (None: none)."""
    if os.geteuid() != 0:
        return invoker()
    try:
        st = os.stat(prefix) if prefix is not None else None
    except OSError:
        st = None
    if st is None:
        return sandbox_user(site)
    group = (st.st_gid,) if st.st_gid != 0 else ()
    if st.st_uid == 0:
        chosen = sandbox_user(site)
        return Identity(chosen.uid, chosen.gid, group, chosen.name)
    try:
        entry = pwd.getpwuid(st.st_uid)
    except KeyError:  # an owner without a passwd entry: its uid and the prefix's group
        return Identity(st.st_uid, st.st_gid, group, str(st.st_uid))
    groups = tuple(dict.fromkeys([*os.getgrouplist(entry.pw_name, entry.pw_gid), *group]))
    return Identity(st.st_uid, entry.pw_gid, groups, entry.pw_name)

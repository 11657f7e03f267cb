"""Foreign code runs fenced in: owner checks, import probes and kernels never change `current`.

Two layers. Where the OS allows it, each such process runs in its own mount namespace in
which the site root (and the installation `current` points to) is mounted read-only: any
write there fails with "Read-only file system", whatever the code tries. Root gets a plain
mount namespace (`unshare --mount`); other users an unprivileged user namespace that maps
them back to themselves (`unshare --user --map-root-user`, then again with their own ids), so
files keep their owners and checks keep their access. Where that is not possible (no
util-linux `unshare`, user namespaces disabled, a container without the rights), `mode` says
"detect" and only the second layer holds: before and after each process condaqa lists the
environment's twin in current (conda-meta, site-packages, bin) and where `current` points,
and any difference fails the qualification, naming the path. `condaqa status` and the
pytest header say which mode a site gets.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from condaqa import proc
from condaqa.errors import SiteError
from condaqa.site import Site

NAMESPACE, DETECT = "namespace", "detect"
_MOUNTS = """
while [ "$1" != -- ]; do mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 125; shift; done
shift
"""
_AS_ROOT = _MOUNTS + 'exec "$@"\n'
_AS_USER = 'uid=$1 gid=$2; shift 2\n' + _MOUNTS + 'exec unshare --user --map-user="$uid" --map-group="$gid" -- "$@"\n'


class CurrentChanged(SiteError):
    """A process run during qualification changed something under `current`."""


@dataclass(frozen=True)
class Fence:
    site: Site
    readonly: tuple[Path, ...]
    mode: str

    def run(self, argv: Sequence[str], *, env: str, what: str, timeout: float, environ: Mapping[str, str],
            cwd: Path | None = None) -> proc.Finished:
        """Run foreign code for environment `env`: fenced, and CurrentChanged if current changed anyway."""
        with watching(self.site, env, what):
            return proc.run(self.wrap(argv), environ=environ, timeout=timeout, cwd=cwd)

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """`argv`, run with the fenced paths read-only when the mode is "namespace"."""
        if self.mode != NAMESPACE:
            return list(argv)
        return [*_prefix(self.readonly), *argv]

    def describe(self) -> str:
        paths = ", ".join(str(p) for p in self.readonly)
        if self.mode == NAMESPACE:
            return f"read-only mount namespace over {paths}"
        return f"change detection only (no read-only mount namespace here) over {paths}"


def _prefix(paths: Sequence[Path]) -> list[str]:
    folders = [str(p) for p in paths]
    if os.geteuid() == 0:
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _AS_ROOT, "condaqa-fence",
                *folders, "--"]
    return ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private", "--", "sh", "-c", _AS_USER,
            "condaqa-fence", str(os.getuid()), str(os.getgid()), *folders, "--"]


def fence_for(site: Site) -> Fence:
    """The fence of `site`: its root and current's installation, read-only if a probe shows it works."""
    paths = [Path(os.path.realpath(site.root))]
    current = Path(os.path.realpath(site.current_link))
    if not any(current == p or p in current.parents for p in paths):
        paths.append(current)
    return Fence(site, tuple(paths), _mode(tuple(paths)))


@functools.lru_cache(maxsize=8)
def _mode(paths: tuple[Path, ...]) -> str:
    if shutil.which("unshare") is None or os.environ.get("CONDAQA_FENCE") == DETECT:
        return DETECT
    probe = [*_prefix(paths), "sh", "-c", 'for p; do [ -w "$p" ] && exit 1; done; exit 0', "probe", *map(str, paths)]
    done = proc.run(probe, environ=proc.foreign_environ(), timeout=30)
    return NAMESPACE if done.ok else DETECT


def _listing(prefix: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of what the records, site-packages and bin of an environment hold."""
    found: dict[str, tuple[int, int]] = {}
    folders = [prefix / "conda-meta", prefix / "bin", *prefix.glob("lib/python*/site-packages")]
    for folder in folders:
        with contextlib.suppress(OSError):
            st = folder.stat()
            found[str(folder)] = (0, st.st_mtime_ns)
            for entry in os.scandir(folder):
                st = entry.stat(follow_symlinks=False)
                found[entry.path] = (st.st_size, st.st_mtime_ns)
    return found


@contextlib.contextmanager
def watching(site: Site, env: str, what: str) -> Iterator[None]:
    """Fail with CurrentChanged, naming the path, if `what` changes `current` or env's twin in it."""
    link = os.readlink(site.current_link) if site.current_link.is_symlink() else ""
    twin = site.current_installation().env_prefix(env)
    before = _listing(twin)
    yield
    after_link = os.readlink(site.current_link) if site.current_link.is_symlink() else ""
    if after_link != link:
        raise CurrentChanged(f"{site.current_link} pointed to {link} and now points to {after_link} after {what}")
    after = _listing(twin)
    folders = {str(twin / "conda-meta"), str(twin / "bin"), *(str(p) for p in twin.glob("lib/python*/site-packages"))}
    for path in sorted(set(before) | set(after), key=lambda p: (p in folders, p)):  # the file, before its folder
        if before.get(path) != after.get(path):
            change = "appeared" if path not in before else "vanished" if path not in after else "changed"
            raise CurrentChanged(f"{path} {change} while {what} ran: qualification must leave current as it is")

"""The sandbox every foreign process runs in: owner checks, import probes, kernels, pip.

Three modes, the strongest this host allows, tried in this order when a site is first used:

- **bwrap** (bubblewrap, as Flatpak uses it): new PID, IPC and UTS namespaces; the whole file
  system read-only but a private /tmp, /dev/shm and the run's scratch folder; condaqa's
  state hidden. As root, bubblewrap makes the mounts and `setpriv` then drops to the sandbox
  user (identity.py) with no capabilities and `no_new_privs`; as another user, bubblewrap
  runs unprivileged in a user namespace.
- **unshare**: the same with util-linux `unshare` and `setpriv` (unshare.py).
- **none**: neither works (no user namespaces, and not root): foreign code runs as whoever
  runs condaqa, and only a check that `current`'s environment is unchanged after each
  process (the whole tree, by content) guards production.

Helpers are resolved by absolute path from condaqa's own PATH and started with a clean
environment; the foreign process gets its variables (a kernel spec's `env` among them) only
at its own exec, inside. Each run has a scratch folder of its own (its HOME), removed after.
`CONDAQA_SANDBOX=bwrap|unshare|none` asks for one mode, and fails if that mode does not work.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from condaqa import proc
from condaqa.errors import ConfigError, SiteError
from condaqa.fingerprint import cache_file, listing
from condaqa.sandbox import layout, unshare
from condaqa.sandbox.identity import Identity, for_prefix, invoker
from condaqa.site import Site

BWRAP, UNSHARE, NONE = "bwrap", "unshare", "none"
MODE_VARIABLE = "CONDAQA_SANDBOX"
HELPERS = ("bwrap", "unshare", "setpriv", "sh", "env")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROBE_TIMEOUT = 60.0
_OK = "condaqa-sandbox-ok"


class CurrentChanged(SiteError):
    """A process run during qualification changed something under `current` (seen where nothing isolates)."""


@dataclass(frozen=True)
class Sandbox:
    site: Site
    mode: str
    tools: dict[str, str] = field(hash=False)
    note: str = ""  # why not a stronger mode

    @contextlib.contextmanager
    def room(self, env: str, *, python: Path | None = None, writable: Sequence[Path] = (),
             home: Path | None = None) -> Iterator[Room]:
        """A scratch folder for one foreign run of `env` (with `python`), removed afterwards."""
        who = for_prefix(self.site, self._current_prefix(env))
        base = Path(tempfile.mkdtemp(prefix="condaqa-sandbox-"))
        try:
            base.chmod(0o711)
            scratch, stage = base / "scratch", base / "stage"
            scratch.mkdir(mode=0o700)
            stage.mkdir(mode=0o700)
            room = Room(self, env, who, scratch, stage, _visible(self.site, python),
                        tuple(str(p) for p in writable), home or scratch)
            room.give(scratch)
            yield room
        finally:
            shutil.rmtree(base, ignore_errors=True)

    def _current_prefix(self, env: str) -> Path | None:
        try:
            return self.site.current_installation().env_prefix(env) if env else None
        except SiteError:
            return None

    def run(self, argv: Sequence[str], *, env: str, what: str, timeout: float, environ: Mapping[str, str],
            python: Path | None = None, cwd: Path | None = None) -> proc.Finished:
        """Run foreign code for environment `env` to completion (or `timeout`), in the sandbox."""
        with self.room(env, python=python) as room:
            return room.run(argv, what=what, timeout=timeout, environ=environ, cwd=cwd)

    @contextlib.contextmanager
    def watching(self, env: str, what: str) -> Iterator[None]:
        """Where nothing isolates: CurrentChanged, naming it, if `what` changed `current` or env's prefix there
        (a site without current yet, as the demo while it builds production, has nothing to guard)."""
        twin = self._current_prefix(env) if self.mode == NONE else None
        if twin is None:
            yield
            return
        link = _link(self.site.current_link)
        before = _tree(self.site, twin)
        yield
        if _link(self.site.current_link) != link:
            raise CurrentChanged(f"{self.site.current_link} pointed to {link} and now points to "
                                 f"{_link(self.site.current_link)} after {what}")
        after = _tree(self.site, twin)
        for path in sorted(set(before) | set(after)):
            if before.get(path) != after.get(path):
                change = "appeared" if path not in before else "vanished" if path not in after else "changed"
                raise CurrentChanged(f"{twin / path} {change} while {what} ran: qualification must leave current "
                                     "as it is")

    def describe(self) -> str:
        if self.mode == NONE:
            who = invoker()
            return (f"none: foreign code runs as {who}, not isolated; only changes to current's environments are "
                    f"detected ({self.note})")
        tool = "bubblewrap" if self.mode == BWRAP else "unshare + setpriv"
        user = f"the environment's owner, else {self.site.sandbox_user}" if os.geteuid() == 0 else str(invoker())
        return (f"{self.mode}: {tool}; foreign code runs as {user}, without capabilities, in its own PID namespace, "
                "everything read-only but its scratch folder and /tmp" + (f" ({self.note})" if self.note else ""))


@dataclass(frozen=True)
class Room:
    """One run's place in the sandbox: who runs, its scratch folder, what it sees and may write."""

    sandbox: Sandbox
    env: str
    who: Identity
    scratch: Path
    stage: Path
    visible: tuple[str, ...]
    writable: tuple[str, ...]
    home: Path

    def give(self, path: Path) -> None:
        """Let the sandbox user own `path` and what it holds (made here for it to read or write)."""
        if os.geteuid() != 0:
            return
        for found in [path, *(path.rglob("*") if path.is_dir() and not path.is_symlink() else ())]:
            os.chown(found, self.who.uid, self.who.gid, follow_symlinks=False)

    def run(self, argv: Sequence[str], *, what: str, timeout: float, environ: Mapping[str, str],
            cwd: Path | None = None) -> proc.Finished:
        """Run `argv` here to completion (or `timeout`)."""
        with self.sandbox.watching(self.env, what):
            command, helper_environ = self.command(argv, environ, cwd)
            return proc.run(command, environ=helper_environ, timeout=timeout, cwd=cwd or self.scratch)

    def command(self, argv: Sequence[str], environ: Mapping[str, str],
                cwd: Path | None = None) -> tuple[list[str], dict[str, str]]:
        """(argv to start, its environment): `argv` with `environ` inside the sandbox, from `cwd` (the scratch)."""
        inside = {**environ, "HOME": str(self.home)}
        final = [self.sandbox.tools["env"], "-i", *(f"{k}={v}" for k, v in inside.items() if "=" not in k), *argv]
        mode, tools, where = self.sandbox.mode, self.sandbox.tools, str(cwd or self.scratch)
        if mode == NONE:
            return [*argv], {**inside}
        root = os.geteuid() == 0
        state = self.sandbox.site.state_dir
        steps = layout.plan(self.visible, [str(self.scratch), *self.writable], [str(state)] if state.is_dir() else [],
                            self.who, layout.searchable if root else (lambda _path, _who: True))
        helper = {"PATH": SYSTEM_PATH}
        if mode == UNSHARE:
            return unshare.command(tools, root=root, stage=str(self.stage), words=layout.script_words(steps),
                                   cwd=where, uid=self.who.uid, gid=self.who.gid, groups=self.who.groups,
                                   final=final), helper
        isolation = ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent",
                     "--new-session", "--clearenv", "--setenv", "PATH", SYSTEM_PATH, "--chdir", where]
        if not root:
            return [tools["bwrap"], "--unshare-user", "--disable-userns", *layout.bwrap_options(steps), *isolation,
                    "--", *final], helper
        groups = ["--groups", ",".join(map(str, self.who.groups))] if self.who.groups else ["--clear-groups"]
        drop = [tools["setpriv"], "--reuid", str(self.who.uid), "--regid", str(self.who.gid), *groups,
                "--no-new-privs", "--bounding-set", "-all", "--inh-caps", "-all", "--"]
        return [tools["bwrap"], *layout.bwrap_options(steps), *isolation, "--", *drop, *final], helper


def _visible(site: Site, python: Path | None) -> tuple[str, ...]:
    """What a run must be able to reach: the site (as named and as it really is), and the environment of
    `python` with the interpreter installation it links to (a venv-style environment's base python)."""
    paths = [str(site.root), os.path.realpath(site.root)]
    if python is not None:
        prefix = python.parent.parent
        paths += [os.path.realpath(prefix), str(Path(os.path.realpath(python)).parent.parent)]
    return tuple(dict.fromkeys(p for p in paths if os.path.exists(p)))


def _link(path: Path) -> str:
    return os.readlink(path) if path.is_symlink() else ""


def _tree(site: Site, prefix: Path) -> dict[str, str]:
    real = Path(os.path.realpath(prefix))
    return listing(real, cache_file(site.state_dir, prefix)) if real.is_dir() else {}


def tools() -> dict[str, str]:
    """The helpers found on condaqa's own PATH (then the system's), by absolute path."""
    search = os.pathsep.join(p for p in (os.environ.get("PATH", ""), SYSTEM_PATH) if p)
    found = {name: shutil.which(name, path=search) for name in HELPERS}
    return {name: os.path.realpath(path) for name, path in found.items() if path}


_NEEDS = {BWRAP: ("bwrap", "setpriv", "env", "sh"), UNSHARE: ("unshare", "setpriv", "env", "sh")}


@functools.lru_cache(maxsize=8)
def sandbox_for(site: Site) -> Sandbox:
    """The strongest sandbox that works for `site` here (or the one $CONDAQA_SANDBOX names)."""
    asked = os.environ.get(MODE_VARIABLE, "")
    if asked and asked not in (BWRAP, UNSHARE, NONE):
        raise ConfigError(f"${MODE_VARIABLE} = {asked!r}: use {BWRAP}, {UNSHARE} or {NONE}")
    found, why = tools(), list[str]()
    for mode in [asked] if asked else [BWRAP, UNSHARE]:
        if mode == NONE:
            return Sandbox(site, NONE, found, f"${MODE_VARIABLE}={NONE}")
        missing = [name for name in _NEEDS[mode] if name not in found]
        problem = f"{', '.join(missing)} not found" if missing else _probe(Sandbox(site, mode, found))
        if not problem:
            return Sandbox(site, mode, found, "; ".join(why))
        if asked:
            raise ConfigError(f"${MODE_VARIABLE}={asked}, but that sandbox does not work here: {problem}")
        why.append(f"{mode}: {problem}")
    return Sandbox(site, NONE, found, "; ".join(why))


def _probe(sandbox: Sandbox) -> str:
    """Why `sandbox` does not isolate here ("" when it does): not root, site read-only, its own PID namespace."""
    script = f'[ "$(id -u)" != 0 ] && [ ! -w "$1" ] && [ $$ -le 3 ] && echo {_OK}'
    try:
        done = sandbox.run([sandbox.tools["sh"], "-c", script, "probe", str(sandbox.site.root)], env="",
                           what="the sandbox probe", timeout=PROBE_TIMEOUT, environ={"PATH": SYSTEM_PATH})
    except OSError as exc:
        return str(exc)
    if _OK in done.stdout:
        return ""
    words = done.output.strip().splitlines()
    return words[-1][:200] if words else f"the probe exited with {done.returncode}"

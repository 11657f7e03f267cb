"""The pip part of a build, run with the new environment's own pip, in the sandbox, fenced off from the invoker's.

`conda env create` runs the pip section the same way (`python -m pip install -r FILE`). pip
runs `--isolated` with PIP_CONFIG_FILE=/dev/null and a HOME of its own for the environment
(its cache): no user, global or environment configuration and no PIP_* variables, so the only
indexes and options it sees are the site's pip_args and the environment's own, whoever
qualifies. pip builds what it installs from source by running the package's own build code,
so it runs in the sandbox (sandbox/box.py) as the sandbox user, with only the environment's
prefix and its HOME writable: while it runs, that user owns the prefix's folders (never the
prefix itself, conda-meta, or any file, which other environments may share as hard links),
and afterwards everything it owns there goes back to the prefix's owner.
pip quotes lines of the requirement files it reads when it fails; lines quoting a file other
than condaqa's own are left out of the log and the error, so a file named by `-r` never ends
up in a report.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from condaqa import atomic, proc
from condaqa.errors import BuildError
from condaqa.inputs import control_character
from condaqa.sandbox.box import Sandbox
from condaqa.sandbox.identity import Identity
from condaqa.vocab import Stage

PIP_TIMEOUT = 1800.0
REQUIREMENTS = Path("conda-meta") / "condaqa-requirements.txt"
# git refuses to read a repository another user owns (safe.directory, honoured only in a global git config)
# lest its configuration run code as the reader; the reader here is the sandbox user, with nothing to lose.
_READ_ANY_REPOSITORY = "[safe]\n\tdirectory = *\n"
_QUOTES_FILE = re.compile(r"\(from -[rc] (?P<a>\S+)|line \d+ of (?P<b>[^)]+)\)|\(from (?P<c>\S+) \(line \d+\)\)")


def pip_install(sandbox: Sandbox, env: str, python: Path, requirements: Sequence[str], args: Sequence[str],
                log: TextIO, stage: Stage, home: Path) -> None:
    """Install `requirements` with the environment's `python -m pip`, `args` (the site's pip_args) given,
    `home` as its HOME (its cache and whatever else pip's tools keep go there, not to the invoker's)."""
    if not python.exists():
        raise BuildError(f"{python} does not exist: the pip section needs python in the environment", stage=stage)
    for line in requirements:
        bad = control_character(line)
        if bad is not None:
            raise BuildError(f"refusing the requirement {line[:80]!r}: it holds the control character {bad}",
                             stage=stage)
    prefix = python.parent.parent
    req_file = prefix / REQUIREMENTS
    req_file.write_text("\n".join(requirements) + "\n", encoding="utf-8")
    argv = [str(python), "-m", "pip", "--isolated", "install", "--no-input", "--disable-pip-version-check", *args,
            "-r", str(req_file)]
    log.write("$ " + " ".join(argv) + "\n")
    log.flush()
    home.mkdir(parents=True, exist_ok=True)
    environ = proc.foreign_environ({"PIP_CONFIG_FILE": os.devnull, "PYTHONNOUSERSITE": "1",
                                    "XDG_CACHE_HOME": str(home / ".cache")})
    atomic.write_text(home / ".gitconfig", _READ_ANY_REPOSITORY)
    try:
        with sandbox.room(env, python=python, writable=(prefix, home), home=home) as room:
            room.give(home)
            with lent(prefix, room.who):
                done = room.run(argv, what="pip", timeout=PIP_TIMEOUT, environ=environ)
    finally:
        req_file.unlink(missing_ok=True)
    output = _without_foreign_lines(done.output, req_file)
    log.write(output + f"[exit code {done.returncode} after {done.seconds:.1f}s]\n")
    if done.timed_out:
        raise BuildError(done.problem("pip"), stage=stage)
    if done.returncode != 0:
        tail = [line for line in output.splitlines() if line.startswith("ERROR")] or output.splitlines()[-5:]
        raise BuildError("pip failed:\n" + "\n".join(tail), stage=stage)


@contextlib.contextmanager
def lent(prefix: Path, who: Identity) -> Iterator[None]:
    """The folders under `prefix` (not the prefix, not conda-meta) owned by `who` while the block runs;
    then whatever `who` owns under `prefix` goes back to its owner (a folder to the owner it had)."""
    if os.geteuid() != 0 or who.uid == os.geteuid():
        yield
        return
    top = prefix.stat()
    owners = {}
    for folder, dirs, _files in os.walk(prefix):
        dirs[:] = [d for d in dirs if not (folder == str(prefix) and d == "conda-meta")]
        for name in dirs:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            owners[path] = (st.st_uid, st.st_gid)
            os.chown(path, who.uid, who.gid, follow_symlinks=False)
    try:
        yield
    finally:
        for folder, dirs, files in os.walk(prefix):
            for name in [*dirs, *files]:
                path = os.path.join(folder, name)
                if os.lstat(path).st_uid == who.uid:
                    os.chown(path, *owners.get(path, (top.st_uid, top.st_gid)), follow_symlinks=False)


def _without_foreign_lines(output: str, own: Path) -> str:
    kept = []
    for line in output.splitlines(keepends=True):
        match = _QUOTES_FILE.search(line)
        named = next((g for g in match.groups() if g), "") if match else ""
        if named and Path(named.strip()) != own:
            kept.append(f"[a line of pip's output quoting {named.strip()} is left out]\n")
        else:
            kept.append(line)
    return "".join(kept)

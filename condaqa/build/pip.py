"""The pip part of a build, run with the new environment's own pip, fenced off from the invoker's.

`conda env create` runs the pip section the same way (`python -m pip install -r FILE`). pip
runs `--isolated` with PIP_CONFIG_FILE=/dev/null and condaqa's private HOME: no user, global
or environment configuration and no PIP_* variables, so the only indexes and options it sees
are the site's pip_args and the environment's own, whoever qualifies. pip quotes lines of the requirement
files it reads when it fails; lines quoting a file other than condaqa's own are left out of
the log and the error, so a file named by `-r` never ends up in a report.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from condaqa import proc
from condaqa.errors import BuildError
from condaqa.inputs import control_character
from condaqa.vocab import Stage

PIP_TIMEOUT = 1800.0
REQUIREMENTS = Path("conda-meta") / "condaqa-requirements.txt"
_QUOTES_FILE = re.compile(r"\(from -[rc] (?P<a>\S+)|line \d+ of (?P<b>[^)]+)\)|\(from (?P<c>\S+) \(line \d+\)\)")


def pip_install(python: Path, requirements: Sequence[str], args: Sequence[str], log: TextIO, stage: Stage,
                home: Path) -> None:
    """Install `requirements` with the environment's `python -m pip`, `args` (the site's pip_args) given,
    `home` as its HOME (its cache and whatever else pip's tools keep go there, not to the invoker's)."""
    if not python.exists():
        raise BuildError(f"{python} does not exist: the pip section needs python in the environment", stage=stage)
    for line in requirements:
        bad = control_character(line)
        if bad is not None:
            raise BuildError(f"refusing the requirement {line[:80]!r}: it holds the control character {bad}",
                             stage=stage)
    req_file = python.parent.parent / REQUIREMENTS
    req_file.write_text("\n".join(requirements) + "\n", encoding="utf-8")
    argv = [str(python), "-m", "pip", "--isolated", "install", "--no-input", "--disable-pip-version-check", *args,
            "-r", str(req_file)]
    log.write("$ " + " ".join(argv) + "\n")
    log.flush()
    home.mkdir(parents=True, exist_ok=True)
    environ = proc.foreign_environ({"PIP_CONFIG_FILE": os.devnull, "PYTHONNOUSERSITE": "1", "HOME": str(home),
                                    "XDG_CACHE_HOME": str(home / ".cache")})
    try:
        done = proc.run(argv, environ=environ, timeout=PIP_TIMEOUT)
    finally:
        req_file.unlink(missing_ok=True)
    output = _without_foreign_lines(done.output, req_file)
    log.write(output + f"[exit code {done.returncode} after {done.seconds:.1f}s]\n")
    if done.timed_out:
        raise BuildError(done.problem("pip"), stage=stage)
    if done.returncode != 0:
        tail = [line for line in output.splitlines() if line.startswith("ERROR")] or output.splitlines()[-5:]
        raise BuildError("pip failed:\n" + "\n".join(tail), stage=stage)


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

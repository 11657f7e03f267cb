"""The old interpreters a machine has, for the demo's python 2.7 and 3.6 environments and the selftests.

Sites migrating off conda 4.3 hold environments on python 2.7 and 3.6. Where this machine has
such an interpreter (pythonX.Y on PATH, or in pyenv's versions), the demo packages it as
conda's `python` and builds an environment on it; where it has none, the environment is left
out of the demo and the reason is said once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Interpreter:
    """A python found on this machine: its executable (resolved) and its full version."""

    executable: Path
    version: str  # "2.7.18"

    @property
    def short(self) -> str:
        return ".".join(self.version.split(".")[:2])


# Asked of the interpreter itself, so that a pyenv shim on PATH resolves to the interpreter it runs.
_ASK = "import sys; print('%d.%d.%d %s' % (sys.version_info[:3] + (sys.executable,)))"


def find(short: str) -> Interpreter | None:
    """python`short` (e.g. "2.7") on PATH, else the newest of pyenv's versions; None when there is none that runs."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    pyenv = sorted(root.glob(f"{short}.*/bin/python{short}"), key=lambda p: _number(p.parent.parent.name))
    for candidate in [shutil.which(f"python{short}"), *reversed(pyenv)]:
        if candidate is None:
            continue
        try:
            done = subprocess.run([candidate, "-E", "-s", "-c", _ASK], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        version, _, executable = done.stdout.strip().partition(" ")
        if done.returncode == 0 and version.startswith(short + ".") and executable:
            return Interpreter(Path(os.path.realpath(executable)), version)
    return None


def _number(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


def missing_reason(short: str) -> str:
    """Why an environment on python `short` cannot be had here, in one line."""
    return f"no python {short} on this machine (neither python{short} on PATH nor in pyenv's versions)"

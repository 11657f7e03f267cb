"""One run of foreign code with an environment's python: a fresh process in the sandbox, its outcome kept.

Every run uses -E -s -B (no PYTHON* variables, no user site-packages, no bytecode written)
and runs in the sandbox (sandbox/box.py): as an unprivileged user, in its own PID namespace,
with everything but its scratch folder read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from condaqa import proc
from condaqa.sandbox.box import CurrentChanged, Sandbox

FLAGS = ("-E", "-s", "-B")


@dataclass(frozen=True)
class CheckRun:
    """One process's outcome: an import of one module, or one owner check."""

    name: str
    returncode: int
    output: str
    timed_out: bool = False
    current_changed: str = ""  # what the run changed under current (box.CurrentChanged), if anything
    code: str = ""  # an owner check's signature as it ran (checks/owner.py)

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.current_changed

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.output.strip().splitlines()[-lines:])


def run_python(sandbox: Sandbox, env: str, name: str, python: Path, args: list[str], timeout: float, *,
               extra_env: Mapping[str, str] | None = None, cwd: Path | None = None) -> CheckRun:
    """`python args` for environment `env`, as CheckRun `name`."""
    try:
        done = sandbox.run([str(python), *FLAGS, *args], env=env, what=name, timeout=timeout,
                           environ=proc.foreign_environ(extra_env), python=python, cwd=cwd)
    except CurrentChanged as exc:
        return CheckRun(name, -1, str(exc), current_changed=str(exc))
    return finished(name, done)


def finished(name: str, done: proc.Finished) -> CheckRun:
    """A finished process as CheckRun `name`."""
    if done.timed_out:
        return CheckRun(name, -1, done.output + f"\n{done.problem(name)}", timed_out=True)
    return CheckRun(name, done.returncode, done.output)

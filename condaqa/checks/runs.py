"""One run of foreign code with an environment's python: a fresh process, fenced, its outcome kept.

Every run uses -E -s -B (no PYTHON* variables, no user site-packages, no bytecode written), so
nothing untracked appears in qa and nothing at all under current, and runs inside the fence
(fence.py) with the process group killed when it ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from condaqa import proc
from condaqa.fence import CurrentChanged, Fence

FLAGS = ("-E", "-s", "-B")


@dataclass(frozen=True)
class CheckRun:
    """One process's outcome: an import of one module, or one owner check."""

    name: str
    returncode: int
    output: str
    timed_out: bool = False
    current_changed: str = ""  # what the run changed under current (fence.CurrentChanged), if anything

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.current_changed

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.output.strip().splitlines()[-lines:])


def run_python(fence: Fence, env: str, name: str, python: Path, args: list[str], timeout: float, *,
               extra_env: Mapping[str, str] | None = None, cwd: Path | None = None) -> CheckRun:
    """`python args` for environment `env`, as CheckRun `name`."""
    try:
        done = fence.run([str(python), *FLAGS, *args], env=env, what=name, timeout=timeout,
                         environ=proc.foreign_environ(extra_env), cwd=cwd)
    except CurrentChanged as exc:
        return CheckRun(name, -1, str(exc), current_changed=str(exc))
    if done.timed_out:
        return CheckRun(name, -1, done.output + f"\n{done.problem(name)}", timed_out=True)
    return CheckRun(name, done.returncode, done.output)

"""`condaqa-qualify` and `condaqa-cutover`: the pytest runs of cron and CI, installed with the package, so a site
project made from a wheel needs no copy of scripts/ (which call these).

Each replaces itself with `python -m pytest` (the interpreter condaqa is installed in), so the exit code, the
output and signals are pytest's own: 0 every environment qualified, 1 some failed or were left unqualified,
2 interrupted, 4 a bad site or bad arguments, 5 nothing selected.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn


def qualify_args(extra: Sequence[str], here: Path) -> list[str]:
    """The shipped suite and the project's ./tests, on every core; `extra` (`--lf`, `-k ENV`) last."""
    own = ["./tests"] if (here / "tests").is_dir() else []
    return ["--pyargs", "condaqa.suite", *own, "-n", "auto", *extra]


def cutover_args(extra: Sequence[str]) -> list[str]:
    """The cutover fixture and its smoke tests, in one process; its JUnit goes to reports/cutover.xml."""
    return ["--pyargs", "condaqa.suite", "-m", "cutover", "-n", "0", "-p", "no:cacheprovider", *extra]


def _pytest(args: list[str]) -> NoReturn:
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "pytest", *args])


def qualify() -> NoReturn:
    """Entry point of `condaqa-qualify [PYTEST ARGS]`."""
    _pytest(qualify_args(sys.argv[1:], Path.cwd()))


def cutover() -> NoReturn:
    """Entry point of `condaqa-cutover [PYTEST ARGS]`."""
    _pytest(cutover_args(sys.argv[1:]))

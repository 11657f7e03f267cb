"""Run py-rattler's async calls in a short-lived child interpreter.

py-rattler 0.28's tokio threads can crash the interpreter while it finalizes (a
"PyGILState_Release" abort or a segfault at exit, in roughly one run in fifteen here), which
would turn a green run's exit code into 134 or 139. A child that does the work and leaves
through os._exit never finalizes with those threads alive, and the parent never starts them.
A plain subprocess (not multiprocessing) keeps this independent of the caller's __main__.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from condaqa.errors import BuildError

T = TypeVar("T")


def call(func: Callable[..., T], *args: Any) -> T:
    """`func(*args)` in a child; a BuildError (or any error) in the child is raised here."""
    proc = subprocess.run(
        [sys.executable, "-c", "from condaqa.engines.isolated import _child; _child()"],
        input=pickle.dumps((func, args)),
        capture_output=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    try:
        kind, value = pickle.loads(proc.stdout)
    except Exception:  # no complete answer: the child died before sending it
        stderr = proc.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise BuildError(
            f"the engine process died (exit code {proc.returncode}): " + " | ".join(stderr), stage="engine"
        ) from None
    if kind == "error":
        message, stage = value
        raise BuildError(message, stage=stage)
    return value


def _child() -> None:
    func, args = pickle.loads(sys.stdin.buffer.read())
    try:
        answer: tuple = ("ok", func(*args))
    except BuildError as exc:
        answer = ("error", (str(exc), exc.stage))
    except Exception as exc:  # anything py-rattler raises: report it, the parent decides
        answer = ("error", (f"{type(exc).__name__}: {exc}", "engine"))
    sys.stdout.buffer.write(pickle.dumps(answer))
    sys.stdout.flush()
    os._exit(0)

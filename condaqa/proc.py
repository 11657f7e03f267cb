"""Every process condaqa runs to completion is started here, one way.

One environment policy (`foreign_environ`), output captured to files instead of pipes (a
grandchild that keeps a pipe open can never hold the caller up), its own process group that
is killed when the process ends, so nothing it started outlives it, and one way of saying a
timeout. The engine worker (worker.py) and Jupyter kernels (kernels/launch.py) live
longer than one call and are managed where they are defined.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

# Variables that make a python, pip, conda or jupyter behave differently from one person to the next.
_SCRUBBED = ("PYTHON", "PIP_", "CONDA", "MAMBA", "_CE_", "VIRTUAL_ENV", "JUPYTER", "JPY_", "IPYTHON", "XDG_CONFIG_HOME",
             "PYDEVD", "DEBUGPY")
OUTPUT_LIMIT = 1 << 20  # bytes of each stream kept; a process that prints more keeps its tail


def foreign_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a process run on someone else's behalf: the invoker's, minus what leaks."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
    environ.update(extra or {})
    return environ


@dataclass(frozen=True)
class Finished:
    """A process that ran: exit code (-9 and `timed_out` after a timeout), output, duration."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timeout: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.output.strip().splitlines()[-lines:])

    def problem(self, what: str) -> str:
        """`what` did not finish in time, or failed with its exit code: the start of an error message."""
        if self.timed_out:
            return f"{what} did not finish within {self.timeout:.0f}s"
        return f"{what} failed (exit code {self.returncode})"


def run(argv: Sequence[str], *, environ: Mapping[str, str], timeout: float, cwd: Path | None = None,
        log: TextIO | None = None, stdin: bytes | None = None) -> Finished:
    """Run `argv` to completion (or `timeout` seconds), in its own process group, killed afterwards."""
    if log is not None:
        log.write("$ " + " ".join(argv) + "\n")
        log.flush()
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                stdout=out, stderr=err, env=dict(environ), cwd=cwd, start_new_session=True)
        try:
            if stdin is not None and proc.stdin is not None:
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.write(stdin)
                proc.stdin.close()
            timed_out = not _exited_within(proc, timeout)
        finally:
            _kill_group(proc)
        done = Finished(tuple(argv), proc.returncode if not timed_out else -signal.SIGKILL, _read(out), _read(err),
                        time.monotonic() - started, timeout, timed_out)
    if log is not None:
        log.write(done.output if done.output.endswith("\n") or not done.output else done.output + "\n")
        ending = "timed out" if timed_out else f"exit code {done.returncode}"
        log.write(f"[{ending} after {done.seconds:.1f}s]\n")
        log.flush()
    return done


def _exited_within(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait for the process to exit without reaping it, so its group id stays reserved for the kill."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd (Linux before 5.3): reaping first is the best left
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        return bool(select.select([pidfd], [], [], timeout)[0])
    finally:
        os.close(pidfd)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill whatever is left of the process's group (its children too), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _read(handle: BinaryIO) -> str:
    size = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, size - OUTPUT_LIMIT))
    text = handle.read().decode("utf-8", "replace")
    return text if size <= OUTPUT_LIMIT else f"[... {size - OUTPUT_LIMIT} bytes of output left out]\n" + text

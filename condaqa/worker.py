"""py-rattler's calls, run in one long-lived child interpreter per process that builds or reads repodata.

py-rattler 0.28's tokio threads can crash the interpreter while it finalizes (a
"PyGILState_Release" abort or a segfault at exit, in roughly one run in fifteen here), which
would turn a green run's exit code into 134 or 139. So py-rattler never runs in condaqa's own
process: a child does the work and leaves through os._exit, never finalizing with those
threads alive. One child serves every call of a command (or of an xdist worker): starting a
child and importing the engine cost 83 ms a build when each build had its own. A call that
does not answer in time, or a Ctrl-C, kills the child; the next call starts a new one.

What py-rattler raises and what the disk refuses are the environment's failure (a BuildError);
anything else raised in the child is a bug of condaqa's, raised here as EngineBug with the child's
traceback, never turned into a verdict on an environment.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, TypeVar

from condaqa.errors import BuildError
from condaqa.vocab import Stage

T = TypeVar("T")
TIMEOUT = 3600.0  # seconds for one solve or link; a real one takes seconds to minutes
_HEADER = struct.Struct("!Q")


@dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    stderr: IO[bytes]
    owner: int  # the pid that started it: a forked copy of this process must start its own


_child: _Child | None = None


def call(func: Callable[..., T], *args: Any, timeout: float = TIMEOUT) -> T:
    """`func(*args)` in the child; a BuildError (or any error) in the child is raised here."""
    child = _running()
    try:
        _send(child.proc, pickle.dumps((func, args)))
        answer = _receive(child.proc, timeout)
    except TimeoutError:
        stop()
        late = f"the engine did not answer within {timeout:.0f}s and was stopped"
        raise BuildError(late, stage=Stage.ENGINE) from None
    except BaseException:
        stop()
        raise
    if answer is None:  # the end of its output: the child died
        try:
            code: int | str = child.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = "unknown"
        tail = _tail(child)
        stop()
        raise BuildError(f"the engine process died (exit code {code}): {tail}", stage=Stage.ENGINE)
    kind, value = pickle.loads(answer)
    if kind == "error":
        message, stage = value
        raise BuildError(message, stage=Stage(stage))
    if kind == "bug":
        raise EngineBug(f"condaqa's engine process failed; please report this with the traceback:\n{value}")
    return value  # type: ignore[no-any-return]


class EngineBug(RuntimeError):
    """An error of condaqa's own code in the engine process: not an environment's failure."""


def stop() -> None:
    """Stop the child (if this process started one); the next call starts another."""
    global _child
    child, _child = _child, None
    if child is None or child.owner != os.getpid():
        return
    for pipe in (child.proc.stdin, child.proc.stdout):
        with contextlib.suppress(OSError):
            if pipe is not None:
                pipe.close()
    try:
        child.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.proc.pid, signal.SIGKILL)
        child.proc.wait()
    child.stderr.close()


def _running() -> _Child:
    global _child
    if _child is not None and _child.owner == os.getpid() and _child.proc.poll() is None:
        return _child
    stderr = tempfile.TemporaryFile()  # noqa: SIM115  # lives as long as the child; stop() closes it
    proc = subprocess.Popen(
        [sys.executable, "-c", "from condaqa.worker import serve; serve()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, bufsize=0,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        start_new_session=True,  # a Ctrl-C reaches condaqa, which stops the child itself
    )
    _child = _Child(proc, stderr, os.getpid())
    return _child


def _send(proc: subprocess.Popen[bytes], payload: bytes) -> None:
    assert proc.stdin is not None
    data = memoryview(_HEADER.pack(len(payload)) + payload)
    try:
        while data:
            data = data[os.write(proc.stdin.fileno(), data):]
    except BrokenPipeError:
        pass  # the child is gone: _receive sees the end of its output


def _receive(proc: subprocess.Popen[bytes], timeout: float) -> bytes | None:
    """One answer, or None at the end of the child's output (it died); TimeoutError after `timeout` seconds."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    if not select.select([fd], [], [], timeout)[0]:
        raise TimeoutError
    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    return _read_exactly(fd, _HEADER.unpack(header)[0])


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _tail(child: _Child) -> str:
    child.stderr.seek(0)
    lines = child.stderr.read().decode("utf-8", "replace").strip().splitlines()[-5:]
    return " | ".join(lines) or "no message"


def serve() -> None:
    """The child's loop: answer each request until condaqa closes the pipe, then leave without finalizing."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests, answers = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything the work prints goes to stderr, not into the answers
    while True:
        header = requests.read(_HEADER.size)
        if len(header) < _HEADER.size:
            answers.flush()
            os._exit(0)
        func, args = pickle.loads(requests.read(_HEADER.unpack(header)[0]))
        try:
            answer: tuple[str, object] = ("ok", func(*args))
        except BuildError as exc:
            answer = ("error", (str(exc), str(exc.stage)))
        except Exception as exc:
            if is_engine_failure(exc):
                answer = ("error", (f"{type(exc).__name__}: {exc}", str(Stage.ENGINE)))
            else:
                answer = ("bug", traceback.format_exc())
        payload = pickle.dumps(answer)
        answers.write(_HEADER.pack(len(payload)) + payload)
        answers.flush()


def is_engine_failure(exc: Exception) -> bool:
    """Whether the child's `exc` is a failure to build (py-rattler's exceptions, the disk's), not a bug."""
    if "rattler" not in sys.modules:  # no py-rattler call ran: only the disk's errors are the engine's
        return isinstance(exc, OSError)
    import rattler.exceptions

    known = [v for v in vars(rattler.exceptions).values() if isinstance(v, type) and issubclass(v, Exception)]
    return isinstance(exc, (OSError, *known))


atexit.register(stop)

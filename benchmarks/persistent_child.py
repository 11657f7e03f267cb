"""Prototype, for measurement only: the engine's isolated calls served by one long-lived child.

    python benchmarks/persistent_child.py --site SITE.toml replicate [ARGS...]

runs `condaqa ... replicate` with condaqa.engines.isolated.call replaced by a version that
starts one child interpreter on first use and sends it every call over a pipe, instead of
starting a child per call. py-rattler still never runs in the parent, and the child still
leaves through os._exit (never finalizing with py-rattler's threads alive); what it saves is
the start-up and imports of a child per build. bench_replicate.py --persistent-child measures
it against the real command. Not used by condaqa itself.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_HEADER = struct.Struct("!Q")


class _Server:
    proc: subprocess.Popen | None = None


def _send(stream, payload: bytes) -> None:
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _receive(stream) -> bytes | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    return stream.read(_HEADER.unpack(header)[0])


def call(func, *args: Any):
    from condaqa.errors import BuildError

    proc = _Server.proc
    if proc is None or proc.poll() is not None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
        proc = _Server.proc = subprocess.Popen([sys.executable, "-c", "from persistent_child import serve; serve()"],
                                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        _send(proc.stdin, pickle.dumps((func, args)))
        answer = _receive(proc.stdout)
    except BrokenPipeError:
        answer = None
    if answer is None:
        _Server.proc = None
        raise BuildError(f"the engine process died (exit code {proc.wait()})", stage="engine")
    kind, value = pickle.loads(answer)
    if kind == "error":
        raise BuildError(value[0], stage=value[1])
    return value


def serve() -> None:
    from condaqa.errors import BuildError

    requests, answers = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything the work prints goes to stderr, not into the answers
    while True:
        request = _receive(requests)
        if request is None:
            answers.flush()
            os._exit(0)
        func, args = pickle.loads(request)
        try:
            answer: tuple = ("ok", func(*args))
        except BuildError as exc:
            answer = ("error", (str(exc), exc.stage))
        except Exception as exc:
            answer = ("error", (f"{type(exc).__name__}: {exc}", "engine"))
        _send(answers, pickle.dumps(answer))


def main() -> int:
    from condaqa import cli
    from condaqa.engines import isolated

    isolated.call = call
    code = cli.main(sys.argv[1:])
    if _Server.proc is not None:
        _Server.proc.stdin.close()
        _Server.proc.wait()
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())

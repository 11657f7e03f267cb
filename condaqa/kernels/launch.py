"""Start a kernel for real, the way JupyterLab does, and ask it to import the environment's modules.

jupyter_client reads a kernel spec (argv with `{connection_file}`, `env`), starts the kernel
process, and its client waits for `kernel_info` before it runs code. condaqa does exactly
that with the spec as the cutover will leave it (after_cutover) or as it is (the baseline),
in the sandbox like every foreign process (sandbox/box.py): jupyter_client starts the
sandbox, and the spec's argv and `env` apply only inside it, so a spec's PATH or LD_PRELOAD
never reaches a privileged helper. The kernel's own stderr is kept for the failure message;
it is shut down, with everything it started, and its connection file removed whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from condaqa import proc
from condaqa.kernels.specs import Kernel
from condaqa.sandbox.box import CurrentChanged, Room, Sandbox
from condaqa.site import Site

if TYPE_CHECKING:
    from jupyter_client.manager import KernelManager

# Runs in the kernel's own python, which may be as old as 2.7: no f-strings, nothing newer than 2.7 and 3.5 share.
_PROBE = """import importlib, json, sys
_failed = []
for _name in {modules!r}:
    try:
        importlib.import_module(_name)
    except BaseException as _exc:
        _failed.append([_name, "%s: %s" % (type(_exc).__name__, _exc)])
print("condaqa-probe " + json.dumps({{"prefix": sys.prefix, "failed": _failed}}))
"""


@dataclass(frozen=True)
class KernelRun:
    """One start of one kernel: did it answer, where did it run, what failed to import."""

    kernel: str
    ok: bool
    prefix: str
    failed: tuple[tuple[str, str], ...]
    seconds: float
    problem: str  # why it is not ok, in words; "" when it is
    stderr: str  # the kernel process's own last lines
    timed_out: bool = False
    current_changed: str = ""


def after_cutover(site: Site, kernel: Kernel) -> tuple[list[str], dict[str, str]]:
    """The kernel's argv and env as the cutover will leave them, with `current` resolved: every path into
    current's installation (through `current`, `envs` or its versioned name) moved to qa's."""
    qa = str(site.qa_installation().path)
    moves = [(str(site.current_link), qa), (str(site.root / "envs"), f"{qa}/envs"),
             (str(site.current_installation().path), qa)]

    patterns = [(re.compile(re.escape(old) + r"(?=[/:]|$)"), new) for old, new in moves]

    def moved(value: str) -> str:
        for pattern, new in patterns:
            value = pattern.sub(new.replace("\\", r"\\"), value)  # `new` is a path, not a template
        return value

    return [moved(a) for a in kernel.argv], {k: moved(v) for k, v in kernel.env.items()}


def start(sandbox: Sandbox, env: str, kernel: Kernel, argv: Sequence[str], variables: dict[str, str],
          modules: Sequence[str], timeout: float, *, python: Path) -> KernelRun:
    """Start `kernel` with `argv` and `variables` (which run `python`), wait for it, run the import probe,
    shut it down."""
    started = time.monotonic()
    with sandbox.room(env, python=python) as room:
        log = room.scratch.parent / "kernel.log"
        try:
            with sandbox.watching(env, f"kernel {kernel.name}"):
                answer, problem, timed_out = _run(room, kernel, argv, variables, log, modules, timeout)
        except CurrentChanged as exc:
            return KernelRun(kernel.name, False, "", (), time.monotonic() - started, str(exc), _tail(log),
                             current_changed=str(exc))
        stderr = _tail(log)
    seconds = time.monotonic() - started
    if answer is None:
        return KernelRun(kernel.name, False, "", (), seconds, problem, stderr, timed_out)
    failed = tuple((str(m), str(e)) for m, e in answer.get("failed", []))
    return KernelRun(kernel.name, not failed, str(answer.get("prefix", "")), failed, seconds,
                     "" if not failed else "cannot import " + ", ".join(m for m, _ in failed), stderr)


def _run(room: Room, kernel: Kernel, argv: Sequence[str], variables: dict[str, str], log: Path,
         modules: Sequence[str], timeout: float) -> tuple[dict[str, Any] | None, str, bool]:
    """(the probe's answer, or None with why and whether it timed out)."""
    from jupyter_client.kernelspec import KernelSpecManager  # a fifth of a second: only when a kernel starts
    from jupyter_client.manager import KernelManager

    class SandboxedKernel(KernelManager):
        def write_connection_file(self, **kwargs: Any) -> None:
            super().write_connection_file(**kwargs)
            room.give(Path(self.connection_file))  # secret to all but the kernel, which runs as the sandbox user

    scratch = room.scratch
    inside = proc.foreign_environ({"PYTHONDONTWRITEBYTECODE": "1", "IPYTHONDIR": str(scratch / "ipython"),
                                   "JUPYTER_RUNTIME_DIR": str(scratch), "JUPYTER_PLATFORM_DIRS": "1", **variables})
    command, helper_environ = room.command(argv, inside)
    folder = scratch.parent / "kernels" / kernel.name
    folder.mkdir(parents=True)
    spec = {"argv": command, "display_name": kernel.display_name, "language": "python", "env": {}}
    (folder / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    manager = SandboxedKernel(kernel_name=kernel.name, connection_file=str(scratch / "connection.json"),
                              kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(folder.parent)],
                                                                    ensure_native_kernel=False))
    with open(log, "wb") as err:
        try:
            manager.start_kernel(env=helper_environ, stdout=err, stderr=err)
        except Exception as exc:  # the launcher raises what Popen raises: the sandbox tool is not there
            return None, f"the kernel did not start: {type(exc).__name__}: {exc}", False
        client = manager.blocking_client()
        try:
            client.start_channels()
            deadline = time.monotonic() + timeout
            try:
                client.wait_for_ready(timeout=timeout)
            except RuntimeError as exc:
                timed_out = time.monotonic() >= deadline and manager.is_alive()
                why = f"did not answer kernel_info within {timeout:.0f}s" if timed_out else f"died: {exc}"
                return None, f"the kernel {why}", timed_out
            return _probe(client, modules, deadline)
        finally:
            client.stop_channels()
            _shut_down(manager)


def _probe(client: Any, modules: Sequence[str], deadline: float) -> tuple[dict[str, Any] | None, str, bool]:
    msg_id = client.execute(_PROBE.format(modules=list(modules)))
    words = ""
    while time.monotonic() < deadline:
        try:
            msg = client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:  # nothing more within the deadline
            break
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            words += content.get("text", "")
        elif kind == "error":
            return None, f"the probe failed in the kernel: {content.get('ename')}: {content.get('evalue')}", False
        elif kind == "status" and content.get("execution_state") == "idle":
            line = next((w for w in words.splitlines() if w.startswith("condaqa-probe ")), "")
            if line:
                data = json.loads(line.removeprefix("condaqa-probe "))
                return (data if isinstance(data, dict) else None), "", False
            return None, f"the probe printed nothing a kernel would: {words[-300:]!r}", False
    return None, "the kernel did not finish running the import probe in time", True


def _shut_down(manager: KernelManager) -> None:
    """Stop the kernel now, its whole process group, and remove its connection file."""
    pid = getattr(getattr(manager, "provisioner", None), "pid", None)
    with contextlib.suppress(Exception):
        manager.shutdown_kernel(now=True)
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        manager.cleanup_resources()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(manager.connection_file)


def _tail(log: Path, lines: int = 15) -> str:
    try:
        text = log.read_bytes()[-16384:].decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])

"""Key modules import: each in a fresh process of the environment's python.

The key modules are the manifest's `imports`, else every top-level module of current's
site-packages that imports with current's python (found by one probe process). Current is
never written during a qualification, so the probe's answer is kept in the site's state with
a fingerprint of current's environment and asked again only when that environment changed.
"""

from __future__ import annotations

import json
from pathlib import Path

from condaqa import atomic
from condaqa.checks.runs import CheckRun, run_python
from condaqa.manifest import Environment
from condaqa.prefix import read_prefix, top_level_modules
from condaqa.replication.stamp import env_fingerprint
from condaqa.sandbox.box import CurrentChanged, Sandbox
from condaqa.site import Site

IMPORT_TIMEOUT = 120.0

_PROBE = """
import importlib, json, sys
ok = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
        ok.append(name)
    except BaseException:
        pass
print(json.dumps(ok))
"""


def importable_in(sandbox: Sandbox, env: str, python: Path, modules: list[str]) -> list[str] | None:
    """Which of `modules` import with `python` (one process for all: a probe, not the check);
    None when the probe itself did not finish."""
    if not modules:
        return []
    run = run_python(sandbox, env, "the import probe", python, ["-c", _PROBE, *modules], IMPORT_TIMEOUT)
    if run.current_changed:
        raise CurrentChanged(run.current_changed)
    if not run.passed:
        return None
    try:
        found = json.loads(run.output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return [m for m in found if m in modules] if isinstance(found, list) else None


def key_modules(sandbox: Sandbox, env: Environment) -> list[str]:
    """The manifest's `imports`, else the top-level modules that import with current's python.

    Raises CurrentChanged when asking current changed it (where no sandbox isolates)."""
    if env.imports is not None:
        return list(env.imports)
    prefix = sandbox.site.current_installation().env_prefix(env.name)
    candidates = top_level_modules(read_prefix(prefix))
    kept = probe_path(sandbox.site, env.name)
    answer = {"fingerprint": env_fingerprint(prefix, sandbox.site.state_dir), "candidates": candidates}
    try:
        known = json.loads(kept.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = None
    if isinstance(known, dict) and {k: known.get(k) for k in answer} == answer:
        return [m for m in known.get("importable", []) if m in candidates]
    python = prefix / "bin" / "python"
    found = importable_in(sandbox, env.name, python, candidates)
    if found is None:  # a module ended the probe's interpreter: ask each in a process of its own
        runs = import_modules(sandbox, env.name, python, candidates)
        if changed := next((r.current_changed for r in runs if r.current_changed), ""):
            raise CurrentChanged(changed)
        found = [r.name for r in runs if r.passed]
    atomic.write_text(kept, json.dumps({**answer, "importable": found}))
    return found


def probe_path(site: Site, env: str) -> Path:
    """Where the import probe's answer for current's `env` is kept."""
    return site.state_dir / "key-modules" / site.current_installation().name / f"{env}.json"


def import_module(sandbox: Sandbox, env: str, python: Path, module: str,
                  timeout: float = IMPORT_TIMEOUT) -> CheckRun:
    """Import `module` with `python` in a fresh process."""
    return run_python(sandbox, env, module, python, ["-c", f"import {module}"], timeout)


# Imports each module in a fresh process forked from one interpreter started for all of them:
# a child has the state a new `python -c "import m"` has (nothing imported beyond start-up,
# sys.argv == ['-c'], the same flags), its own output, exit code and finalization, and dies of
# SIGALRM after the timeout. One interpreter start per environment instead of one per module.
# It runs in the environment's python, which may be as old as 2.7: nothing newer than 2.7 and 3.5 share.
_FORKED_IMPORTS = """
import os, sys
try:
    import _signal
except ImportError:  # python 2 has no _signal; its signal module is built in
    import signal as _signal
_timeout = max(1, int(float(sys.argv[1]) + 0.999))
_names = sys.argv[2:]
del sys.argv[1:]
import gc
if hasattr(gc, "freeze"):  # children then leave start-up's objects alone (3.7+): fewer copy-on-write pages
    gc.freeze()
del sys.modules["gc"], gc
_found, _child = [], None
for _name in _names:
    _r, _w = os.pipe()
    _pid = os.fork()
    if _pid == 0:
        os.close(_r); os.dup2(_w, 1); os.dup2(_w, 2); os.close(_w)
        _child = _name
        break
    os.close(_w)
    _chunks = []
    while True:
        _chunk = os.read(_r, 65536)
        if not _chunk:
            break
        _chunks.append(_chunk)
    os.close(_r)
    _status = os.waitpid(_pid, 0)[1]
    _code = -os.WTERMSIG(_status) if os.WIFSIGNALED(_status) else os.WEXITSTATUS(_status)
    _found.append((_name, _code, b"".join(_chunks).decode("utf-8", "replace")))
if _child is not None:
    del _found, _names, _name, _r, _w, _pid
    _signal.alarm(_timeout)
    exec("import " + _child)
else:
    import json
    print(json.dumps(_found))
"""
_SIGALRM = 14


def import_modules(sandbox: Sandbox, env: str, python: Path, modules: list[str],
                   timeout: float = IMPORT_TIMEOUT) -> list[CheckRun]:
    """Import each of `modules` with `python`, each in a fresh process (see _FORKED_IMPORTS).

    Falls back to import_module, one started interpreter per module, if the forking one fails.
    """
    if not modules:
        return []
    run = run_python(sandbox, env, "the imports", python, ["-c", _FORKED_IMPORTS, str(timeout), *modules],
                     timeout * len(modules) + 30)
    if run.current_changed:
        return [CheckRun(m, -1, run.output, current_changed=run.current_changed) for m in modules]
    found = _forked_results(run) if run.passed else None
    if found is None or [row[0] for row in found] != list(modules):
        return [import_module(sandbox, env, python, m, timeout) for m in modules]
    runs = []
    for name, code, output in found:
        if code == -_SIGALRM:
            late = f"import {name} did not finish within {timeout:.0f}s"
            runs.append(CheckRun(name, -1, output + late, timed_out=True))
        else:
            runs.append(CheckRun(name, code, output))
    return runs


def _forked_results(run: CheckRun) -> list[tuple[str, int, str]] | None:
    try:
        found = json.loads(run.output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    if not isinstance(found, list) or not all(isinstance(r, list) and len(r) == 3 for r in found):
        return None
    return [(str(n), int(c), str(o)) for n, c, o in found]

"""What qualifies an environment: versions match current, key modules import, owner checks pass.

Everything runs an environment's own python in a fresh process. When the python is
current's, it runs with -B and PYTHONDONTWRITEBYTECODE so that nothing under the
installation in production is written (no __pycache__).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from condaqa.manifest import Environment
from condaqa.prefix import PrefixContents, normalize, read_prefix, top_level_modules
from condaqa.site import Site

IMPORT_TIMEOUT = 120.0


def version_differences(current: PrefixContents, qa: PrefixContents, expected: Collection[str] = ()) -> list[str]:
    """One line per conda or pip package of current that qa lacks or has at another version.

    `expected` holds normalised names whose difference a sanitation finding already explains
    (moved from pip to conda, dropped from pip, pinned by an override, drift of a history build).
    """
    want, have = current.versions(), qa.versions()
    lines = []
    for name, version in sorted(want.items()):
        if normalize(name.removeprefix("pip:")) in expected:
            continue
        if name not in have:
            lines.append(f"{name} {version}: missing in qa")
        elif have[name] != version:
            lines.append(f"{name}: current has {version}, qa has {have[name]}")
    return lines


def _run_python(python: Path, args: list[str], timeout: float, *, readonly: bool, extra_env: dict | None = None,
                cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CONDA_PREFIX", "VIRTUAL_ENV"))}
    env.update(extra_env or {})
    flags = ["-E", "-s"]  # ignore PYTHON* variables and the user's site-packages
    if readonly:
        flags.append("-B")
    return subprocess.run(
        [str(python), *flags, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd
    )


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


def importable_in(python: Path, modules: list[str], *, readonly: bool) -> list[str]:
    """Which of `modules` import with `python` (one process for all: a probe, not the check)."""
    if not modules:
        return []
    proc = _run_python(python, ["-c", _PROBE, *modules], IMPORT_TIMEOUT, readonly=readonly)
    if proc.returncode != 0:
        return []
    return json.loads(proc.stdout.strip().splitlines()[-1])


def key_modules(site: Site, env: Environment) -> list[str]:
    """The manifest's `imports`, else the top-level modules that import with current's python."""
    if env.imports is not None:
        return list(env.imports)
    prefix = site.installation(site.current_name).env_prefix(env.name)
    return importable_in(prefix / "bin" / "python", top_level_modules(read_prefix(prefix)), readonly=True)


@dataclass(frozen=True)
class CheckRun:
    """One process's outcome: an import of one module, or one owner check."""

    name: str
    returncode: int
    output: str
    timed_out: bool = False

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.output.strip().splitlines()[-lines:])


def import_module(python: Path, module: str, *, readonly: bool = False, timeout: float = IMPORT_TIMEOUT) -> CheckRun:
    """Import `module` with `python` in a fresh process."""
    try:
        proc = _run_python(python, ["-c", f"import {module}"], timeout, readonly=readonly)
    except subprocess.TimeoutExpired:
        return CheckRun(module, -1, f"import {module} did not finish within {timeout:.0f}s", timed_out=True)
    return CheckRun(module, proc.returncode, proc.stdout + proc.stderr)


# Imports each module in a fresh process forked from one interpreter started for all of them:
# a child has the state a new `python -c "import m"` has (nothing imported beyond start-up,
# sys.argv == ['-c'], the same flags), its own output, exit code and finalization, and dies of
# SIGALRM after the timeout. One interpreter start per environment instead of one per module.
_FORKED_IMPORTS = """
import os, sys, _signal
_timeout = max(1, int(float(sys.argv[1]) + 0.999))
_names = sys.argv[2:]
del sys.argv[1:]
import gc
gc.freeze()  # children then leave start-up's objects alone: fewer copy-on-write pages, same state
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
    _found.append((_name, os.waitstatus_to_exitcode(_status), b"".join(_chunks).decode("utf-8", "replace")))
if _child is not None:
    del _found, _names, _name, _r, _w, _pid
    _signal.alarm(_timeout)
    exec("import " + _child)
else:
    import json
    print(json.dumps(_found))
"""
_SIGALRM = 14


def import_modules(python: Path, modules: list[str], *, readonly: bool = False,
                   timeout: float = IMPORT_TIMEOUT) -> list[CheckRun]:
    """Import each of `modules` with `python`, each in a fresh process (see _FORKED_IMPORTS).

    Falls back to import_module, one started interpreter per module, if the forking one fails.
    """
    if not modules:
        return []
    try:
        proc = _run_python(python, ["-c", _FORKED_IMPORTS, str(timeout), *modules], timeout * len(modules) + 30,
                           readonly=readonly)
        found = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        found = None
    if not isinstance(found, list) or [row[0] for row in found] != list(modules):
        return [import_module(python, m, readonly=readonly, timeout=timeout) for m in modules]
    runs = []
    for name, code, output in found:
        if code == -_SIGALRM:
            runs.append(CheckRun(name, -1, output + f"import {name} did not finish within {timeout:.0f}s", timed_out=True))
        else:
            runs.append(CheckRun(name, code, output))
    return runs


def owner_checks(site: Site, env: str) -> list[Path]:
    """env_checks/<env>/check_*.py, then env_checks/_all/check_*.py."""
    found: list[Path] = []
    for folder in (site.checks_dir / env, site.checks_dir / "_all"):
        found += sorted(folder.glob("check_*.py"))
    return found


def run_owner_check(check: Path, python: Path, env: str, prefix: Path, timeout: float, *,
                    readonly: bool = False) -> CheckRun:
    """Run one owner check with the environment's python: exit 0 passes."""
    extra = {"CONDAQA_ENV_NAME": env, "CONDAQA_ENV_PREFIX": str(prefix), "CONDAQA_CHECK": str(check)}
    name = f"{check.parent.name}/{check.name}"
    try:
        proc = _run_python(python, [str(check)], timeout, readonly=readonly, extra_env=extra, cwd=check.parent)
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return CheckRun(name, -1, output + f"\n{name} did not finish within {timeout:.0f}s", timed_out=True)
    return CheckRun(name, proc.returncode, proc.stdout + proc.stderr)

"""What qualifies an environment: versions match current, key modules import, owner checks pass.

Everything runs an environment's own python in a fresh process. When the python is
current's, it runs with -B and PYTHONDONTWRITEBYTECODE so that nothing under the
installation in production is written (no __pycache__).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from condaqa.manifest import Environment
from condaqa.prefix import PrefixContents, read_prefix, top_level_modules
from condaqa.site import Site

IMPORT_TIMEOUT = 120.0


def version_differences(current: PrefixContents, qa: PrefixContents) -> list[str]:
    """One line per conda or pip package of current that qa lacks or has at another version."""
    want, have = current.versions(), qa.versions()
    lines = []
    for name, version in sorted(want.items()):
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

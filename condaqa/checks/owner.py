"""Owner checks: env_checks/<env>/check_*.py and env_checks/_all/check_*.py, exit 0 passes.

A check runs from a copy of its whole folder in its sandbox's scratch folder (bytecode
caches left behind, so a planted `.pyc` never runs): what runs is what was digested, the
sandbox user can read it wherever the project lives, and nothing the check does reaches
the project.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from condaqa import proc
from condaqa.checks.runs import FLAGS, CheckRun, finished
from condaqa.fingerprint import fingerprint
from condaqa.sandbox.box import CurrentChanged, Sandbox
from condaqa.site import Site

ALL = "_all"
_CACHES = frozenset({"__pycache__"})


def owner_checks(site: Site, env: str) -> list[Path]:
    """env_checks/<env>/check_*.py, then env_checks/_all/check_*.py."""
    found: list[Path] = []
    for folder in (site.checks_dir / env, site.checks_dir / ALL):
        found += sorted(p for p in folder.glob("check_*.py") if p.is_file())
    return found


def check_id(check: Path) -> str:
    """How a check is named in test ids and results: `<env or _all>/check_x.py`."""
    return f"{check.parent.name}/{check.name}"


def signature(check: Path) -> str:
    """Changes when the check's code does, helpers and data in its folder included, so an edited
    check must run again before a cutover."""
    return f"{check.name}:{fingerprint(check.parent, None, skip_names=_CACHES)}"


def run_owner_check(sandbox: Sandbox, check: Path, python: Path, env: str, prefix: Path, timeout: float) -> CheckRun:
    """Run one owner check with `python` (qa's or current's), from a copy of the check's folder;
    the run's `code` is the signature of the copy that ran."""
    name = check_id(check)
    with sandbox.room(env, python=python) as room:
        copy = room.scratch / "check" / check.parent.name
        try:
            shutil.copytree(check.parent, copy, symlinks=True, ignore=shutil.ignore_patterns(*_CACHES))
        except (OSError, shutil.Error) as exc:  # a pipe or socket among its files, an unreadable one
            return CheckRun(name, -1, f"cannot copy {check.parent} to run {check.name} from: {exc}")
        room.give(room.scratch / "check")
        code = signature(copy / check.name)
        extra = {"CONDAQA_ENV_NAME": env, "CONDAQA_ENV_PREFIX": str(prefix), "CONDAQA_CHECK": str(copy / check.name)}
        try:
            done = room.run([str(python), *FLAGS, str(copy / check.name)], what=name, timeout=timeout,
                            environ=proc.foreign_environ(extra), cwd=copy)
        except CurrentChanged as exc:
            return CheckRun(name, -1, str(exc), current_changed=str(exc), code=code)
    return replace(finished(name, done), code=code)

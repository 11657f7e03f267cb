"""Owner checks: env_checks/<env>/check_*.py and env_checks/_all/check_*.py, exit 0 passes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from condaqa.checks.runs import CheckRun, run_python
from condaqa.fence import Fence
from condaqa.site import Site

ALL = "_all"


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
    """Changes when the check's code does, so an edited check must run again before a cutover."""
    try:
        return hashlib.sha256(check.read_bytes()).hexdigest()[:16]
    except OSError:
        return "unreadable"


def run_owner_check(fence: Fence, check: Path, python: Path, env: str, prefix: Path, timeout: float) -> CheckRun:
    """Run one owner check with `python` (qa's or current's), from the check's folder."""
    extra = {"CONDAQA_ENV_NAME": env, "CONDAQA_ENV_PREFIX": str(prefix), "CONDAQA_CHECK": str(check)}
    return run_python(fence, env, check_id(check), python, [str(check)], timeout, extra_env=extra, cwd=check.parent)

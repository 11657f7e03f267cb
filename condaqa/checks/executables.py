"""Executables users call by path: what an environment's bin/ holds in current and not in qa.

conda 4.3 linked `conda`, `activate` and `deactivate` into every environment's bin/ (links into
its installation); conda 4.4 and newer, and the rattler engine, put none there. Scripts and
crontabs that run ROOT/envs/ENV/bin/activate by path break at the cutover, with no package
version changed: the versions check reports each one, and the cutover lists them.
"""

from __future__ import annotations

import os
from pathlib import Path

from condaqa.plan.findings import Finding
from condaqa.vocab import Rule, Severity

_REPLACED_BY = {
    "activate": "`conda activate {env}` (conda 4.4 and newer), or `source ROOT/current/bin/activate {env}`",
    "deactivate": "`conda deactivate`",
    "conda": "`ROOT/current/bin/conda` (the installation's own conda)",
}


def missing_executables(current: Path, qa: Path) -> list[str]:
    """Names in current's `bin/` that qa's `bin/` lacks; a link counts whether or not its target exists."""
    return sorted(_names(current / "bin") - _names(qa / "bin"))


def _names(folder: Path) -> set[str]:
    try:
        return {entry.name for entry in os.scandir(folder) if not entry.is_dir()}
    except OSError:  # no bin/ at all: nothing to call
        return set()


def replaced_by(env: str, name: str) -> str:
    """What users call instead of `name`, in words."""
    return _REPLACED_BY.get(name, "the same program in another environment, or its package in qa's").format(env=env)


def executable_findings(env: str, names: list[str]) -> list[Finding]:
    """The versions check's warnings: one per executable that leaves the environment at the cutover."""
    return [Finding(Rule.EXECUTABLES, env, f"bin/{name}", "missing in qa",
                    f"current's {env} has bin/{name} and qa's does not, so calling it by path stops working at "
                    "the cutover", Severity.WARNING, f"call {replaced_by(env, name)} instead")
            for name in names]

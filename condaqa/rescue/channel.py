"""ROOT/rescue: the site's own channel of packages rescued from production, used after the site's channels.

The solver takes a package from it only where no channel of the site has one that fits the spec
(channels.py puts it last, and the engines solve with strict channel priority), so a package the
site's channels still have is never shadowed. Publishing a rescued package to the custom channel
for good is the administrator's step (README).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from condaqa import locks
from condaqa.engines.rattler import index_channel
from condaqa.manifest import Environment
from condaqa.plan.findings import Finding, errors
from condaqa.plan.model import BuildPlan
from condaqa.plan.planning import plan_environment
from condaqa.prefix import is_environment, record_paths
from condaqa.rescue.sources import Attempt, Rescued, dist_of, load_record, rescue, subdir_of
from condaqa.site import Site
from condaqa.vocab import Rule, Severity


def wanted_records(prefix: Path, names: Iterable[str]) -> list[Path]:
    """The conda-meta records of `prefix` of the packages named."""
    named = set(names)
    return [p for p in record_paths(prefix) if p.name.rsplit("-", 2)[0] in named]


def plan_with_rescue(site: Site, env: Environment) -> tuple[BuildPlan, list[Finding]]:
    """The environment's plan and findings: the pins none of the site's own channels has (ROOT/rescue left out,
    so a package rescued earlier is still reported) rescued from production when the site allows, then
    planned again with ROOT/rescue."""
    plan, findings = plan_environment(replace(site, rescue=False), env)
    missing = [f.package for f in errors(findings) if f.rule is Rule.MISSING_VERSION]
    if not (missing and site.rescue):
        return plan, findings
    rescued = rescue_packages(site, env.name, missing)
    if any(f.severity is not Severity.WARNING for f in rescued):
        plan, findings = plan_environment(site, env)
    return plan, [*rescued, *findings]


def rescue_packages(site: Site, env: str, names: Iterable[str]) -> list[Finding]:
    """Rescue the packages `names` of `env` as current has them into ROOT/rescue; one finding each."""
    installation = site.current_installation()
    prefix = installation.env_prefix(env)
    if not is_environment(prefix):
        return []
    with locks.rescue_channel(site):
        records = [load_record(path) for path in wanted_records(prefix, names)]
        attempts = [_earlier(site, r) or rescue(installation.path, prefix, r, site.rescue_dir) for r in records]
        if any(a.rescued and a.rescued.source != EARLIER for a in attempts):
            index_channel(site.rescue_dir)
    return [_finding(site, env, attempt) for attempt in attempts]


EARLIER = "site's rescue channel, since an earlier rescue:"


def _earlier(site: Site, record: dict[str, Any]) -> Attempt | None:
    """The package as an earlier rescue left it in ROOT/rescue: taken again as it is, not written again
    (a build may be reading it), so every build that needs it still says it was rescued."""
    dist, subdir = dist_of(record), subdir_of(record)
    for path in (site.rescue_dir / subdir / f"{dist}{ext}" for ext in (".conda", ".tar.bz2")):
        if path.is_file():
            return Attempt(dist, Rescued(EARLIER, path, path))
    return None


def _finding(site: Site, env: str, attempt: Attempt) -> Finding:
    name = attempt.dist.rsplit("-", 2)[0]
    if attempt.rescued is None:
        return Finding(Rule.RESCUED, env, name, f"{attempt.dist} not rescued", attempt.why(), Severity.WARNING)
    found = attempt.rescued
    refused = f" (refused first: {attempt.why()})" if attempt.refused else ""
    return Finding(Rule.RESCUED, env, name, f"rescued {attempt.dist} into {site.rescue_dir.name}",
                   f"no channel of the site has it; taken from the {found.source} {found.origin}{refused}",
                   Severity.INFO, f"publish {found.archive.name} to the site's channel for good "
                   f"(README: Rescued packages); until then the build takes it from {site.rescue_dir}")

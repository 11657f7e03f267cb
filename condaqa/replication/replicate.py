"""Replicate one environment in qa: plan -> engine -> post-create steps -> pip, logged and idempotent.

The same function serves `condaqa replicate` and the pytest fixture, both through
qualification/builds.py, which records what was built.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from condaqa import atomic, locks
from condaqa.engines import get_engine
from condaqa.errors import BuildError, CondaqaError, SiteError
from condaqa.inputs import guard, inside, redact
from condaqa.manifest import Environment
from condaqa.permissions import inherit_permissions
from condaqa.plan.findings import Finding, errors, findings_path, save_findings
from condaqa.plan.model import BuildPlan
from condaqa.replication.pip import pip_install
from condaqa.replication.stamp import Stamp, env_fingerprint, read_stamp, write_stamp
from condaqa.rescue.channel import plan_with_rescue
from condaqa.sandbox.box import Sandbox
from condaqa.site import Installation, Site
from condaqa.vocab import Stage, StepKind


@dataclass
class BuildResult:
    env: str
    prefix: Path
    plan: BuildPlan
    rebuilt: bool
    seconds: float
    log: Path
    stamp: Stamp
    findings: list[Finding] = field(default_factory=list)
    replaced: bool = False  # a previous build stood in the prefix: a rebuild, not a first build


class RedactedLog(io.TextIOWrapper):
    """The build log: pip's command line, the engines' output and the findings name index and channel
    URLs, whose credentials must not reach a log anyone may read."""

    def write(self, text: str) -> int:
        return super().write(redact(text))


def log_path(site: Site, env: str) -> Path:
    return site.reports_dir / "logs" / f"{env}.log"


def refuse_unsafe_target(site: Site, prefix: Path) -> None:
    """Qualification never writes under the installation `current` points to, nor through a link
    that leaves the site."""
    current = site.current_link.resolve()
    resolved = prefix.resolve()
    if resolved == current or current in resolved.parents:
        raise BuildError(f"{prefix} lies under {site.current_link} ({current}); refusing to write there",
                         stage=Stage.GUARD)
    if prefix.is_symlink():
        raise BuildError(f"{prefix} is a symlink (to {os.readlink(prefix)}); condaqa builds only real folders: "
                         "remove the link", stage=Stage.GUARD)
    if not inside(prefix.parent, [site.root]):
        raise BuildError(f"{prefix} resolves outside the site root {site.root}; refusing to build there",
                         stage=Stage.GUARD)


def _plan(site: Site, env: Environment, out: TextIO) -> tuple[BuildPlan, list[Finding]]:
    """Plan, save the findings for the report, and stop at preflight on an error finding (before any solve)."""
    try:
        plan, findings = plan_with_rescue(site, env)
    except BuildError:
        raise
    except CondaqaError as exc:
        findings_path(site, env.name).unlink(missing_ok=True)
        raise BuildError(f"cannot plan {env.name}: {exc}", stage=Stage.PLAN) from None
    save_findings(site, env.name, plan, findings)
    for f in findings:
        out.write(f"finding [{f.severity}] {f.rule} {f.package}: {f.action} ({f.reason})\n")
    stopped = errors(findings)
    if stopped:
        lines = [f"- {f.package}: {f.reason}" + (f"\n  hint: {f.hint}" if f.hint else "") for f in stopped]
        raise BuildError(f"{len(stopped)} problem(s) found before solving:\n" + "\n".join(lines), stage=Stage.PREFLIGHT)
    return plan, findings


def up_to_date(prefix: Path, plan: BuildPlan, state_dir: Path) -> Stamp | None:
    """The stamp of a build of this very plan that nothing changed since, else None."""
    stamp = read_stamp(prefix)
    if stamp is None or stamp.digest != plan.digest() or env_fingerprint(prefix, state_dir) != stamp.fingerprint:
        return None
    return stamp


def replicate(site: Site, sandbox: Sandbox, env: Environment, *, rebuild: bool = False, target: str | None = None,
              before_build: Callable[[], None] = lambda: None) -> BuildResult:
    """Build `env` in qa (or the installation `target`) unless it is built from the same plan and unchanged;
    pip runs in `sandbox`. `before_build` runs once the build is decided, before anything under the prefix changes.
    """
    installation = site.installation(target or site.qa_name)
    prefix = installation.env_prefix(env.name)
    refuse_unsafe_target(site, prefix)
    log = log_path(site, env.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    guard(log, [site.reports_dir], "write the build log")
    started = time.monotonic()
    with locks.building(site, installation, env.name), RedactedLog(open(log, "ab"), encoding="utf-8") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} on {locks.host()} (pid {os.getpid()}): replicate "
                  f"{env.name} into {prefix}\n")
        try:
            plan, findings = _plan(site, env, out)
            stamp = None if rebuild else up_to_date(prefix, plan, site.state_dir)
            if stamp is not None:
                out.write(f"up to date (plan {plan.digest()}); nothing rebuilt\n")
                return BuildResult(env.name, prefix, plan, False, time.monotonic() - started, log, stamp, findings)
            unfinished = _unfinished(site, installation, env.name)
            _refuse_foreign(prefix, rebuild or unfinished.exists())
            before_build()
            replaced = prefix.exists()
            atomic.write_text(unfinished, f"{prefix} started {locks.now()}\n")
            _build(site, sandbox, installation, plan, prefix, out)
            _inherit_permissions(site, installation, env.name)
            stamp = write_stamp(prefix, env.name, plan.digest(), site.state_dir)
            unfinished.unlink()
        except BuildError as exc:
            exc.log = str(log)
            out.write(f"FAILED at {exc.stage}: {exc}\n")
            raise
        seconds = time.monotonic() - started
        out.write(f"built in {seconds:.1f}s (plan {plan.digest()}, build {stamp.build_id})\n")
    return BuildResult(env.name, prefix, plan, True, seconds, log, stamp, findings, replaced)


def _unfinished(site: Site, installation: Installation, env: str) -> Path:
    """Marks a build of `env` that condaqa started and has not finished: what a failed or killed build
    left in the prefix (no stamp yet) is condaqa's own, replaced by the next build without --rebuild."""
    return site.state_dir / "builds" / installation.name / f"{env}.unfinished"


def _refuse_foreign(prefix: Path, replace: bool) -> None:
    """An environment in qa that condaqa did not build is someone's work: not deleted without --rebuild."""
    if prefix.exists() and read_stamp(prefix) is None and not replace:
        raise BuildError(f"{prefix} exists but was not built by condaqa (no {prefix.name}/conda-meta/condaqa-build); "
                         "move it away, or give --rebuild to replace it", stage=Stage.GUARD)


def _inherit_permissions(site: Site, installation: Installation, env: str) -> None:
    """The new environment gets the group and group bits of its twin in current."""
    try:
        inherit_permissions(site, installation, env)
    except SiteError as exc:
        raise BuildError(str(exc), stage=Stage.PERMISSION) from None


def _build(site: Site, sandbox: Sandbox, installation: Installation, plan: BuildPlan, prefix: Path,
           out: TextIO) -> None:
    engine = get_engine(site.engine)
    if prefix.exists():
        out.write(f"removing the previous build at {prefix}\n")
        try:
            shutil.rmtree(prefix)
        except OSError as exc:
            raise BuildError(f"cannot remove the previous build at {prefix}: {exc}", stage=Stage.PERMISSION) from None
        engine.forget(site, installation, prefix)
    engine.create(site, installation, plan, prefix, out)
    for step in plan.post:  # legacy noarch packages, one at a time, before pip needs them
        if step.kind is StepKind.CONDA:
            engine.add(site, installation, plan.env, prefix, step.requirement, out)
    python, home = prefix / "bin" / "python", pip_home(site, installation.name, plan.env)
    if plan.pip:
        pip_install(sandbox, plan.env, python, plan.pip, plan.pip_args, out, Stage.PIP, home)
    for step in plan.post:  # git, archive and directory installs, after the pip section they may need
        if step.kind is StepKind.PIP:
            pip_install(sandbox, plan.env, python, [step.requirement], plan.pip_args, out, Stage.POST_STEP, home)


def pip_home(site: Site, installation: str, env: str) -> Path:
    """pip's HOME and cache for one environment: what one environment's build code leaves there cannot reach
    another's build."""
    return site.private_home(installation) / "pip" / env

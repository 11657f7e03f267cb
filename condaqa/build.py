"""Replicate one environment in qa: plan -> engine -> post-create steps -> pip, logged and idempotent.

The same function serves `condaqa replicate` and the `replicated_env` pytest fixture.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from condaqa import atomic, sources
from condaqa.engines import get_engine
from condaqa.errors import BuildError, CondaqaError, SiteError
from condaqa.permissions import inherit_permissions
from condaqa.manifest import Environment
from condaqa.plan import BuildPlan
from condaqa.prefix import read_prefix
from condaqa.findings import ERROR, Finding, findings_path, save_findings
from condaqa.site import Installation, Site

STAMP = Path("conda-meta") / "condaqa-build"  # not *.json: conda loads every conda-meta/*.json as a record
PIP_TIMEOUT = 1800


@dataclass
class BuildResult:
    env: str
    prefix: Path
    plan: BuildPlan
    rebuilt: bool
    seconds: float
    log: Path
    findings: list[Finding] = field(default_factory=list)


def log_path(site: Site, env: str) -> Path:
    return site.reports_dir / "logs" / f"{env}.log"


def built_digest(prefix: Path) -> str | None:
    try:
        return json.loads((prefix / STAMP).read_text(encoding="utf-8"))["digest"]
    except (OSError, ValueError, KeyError):
        return None


def refuse_current(site: Site, target: Path) -> None:
    """Qualification never writes under the installation that `current` points to."""
    current = site.current.resolve()
    resolved = target.resolve()
    if resolved == current or current in resolved.parents:
        raise BuildError(f"{target} lies under {site.current} ({current}); refusing to write there", stage="guard")


@contextlib.contextmanager
def _env_lock(site: Site, installation: Installation, env: str) -> Iterator[None]:
    """One build of an environment at a time, whether from the CLI or a pytest worker."""
    path = site.state_dir / "locks" / f"build-{installation.name}-{env}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def plan_environment(site: Site, env: Environment) -> tuple[BuildPlan, list[Finding]]:
    return sources.plan_environment(site, env)


def _plan(site: Site, env: Environment, out: TextIO) -> tuple[BuildPlan, list[Finding]]:
    """Plan, save the findings for the report, and stop at preflight on an error finding (before any solve)."""
    try:
        plan, findings = plan_environment(site, env)
    except BuildError:
        raise
    except CondaqaError as exc:
        findings_path(site, env.name).unlink(missing_ok=True)
        raise BuildError(f"cannot plan {env.name}: {exc}", stage="plan") from None
    save_findings(site, env.name, plan, findings)
    for f in findings:
        out.write(f"finding [{f.severity}] {f.rule} {f.package}: {f.action} ({f.reason})\n")
    errors = [f for f in findings if f.severity == ERROR]
    if errors:
        lines = [f"- {f.package}: {f.reason}" + (f"\n  hint: {f.hint}" if f.hint else "") for f in errors]
        raise BuildError(f"{len(errors)} problem(s) found before solving:\n" + "\n".join(lines), stage="preflight")
    return plan, findings


def _drift(site: Site, env: str, plan: BuildPlan, prefix: Path, findings: list[Finding]) -> list[Finding]:
    """A history build lists where its versions moved away from current's, in the saved findings too."""
    if plan.source != "history":
        return findings
    current = read_prefix(site.installation(site.current_name).env_prefix(env))
    findings = [*findings, *sources.history_drift(env, current, read_prefix(prefix))]
    save_findings(site, env, plan, findings)
    return findings


def replicate(site: Site, env: Environment, *, rebuild: bool = False, target: str | None = None) -> BuildResult:
    """Build `env` in qa (or the installation `target`) unless it is built from the same plan."""
    installation = site.installation(target or site.qa_name)
    prefix = installation.env_prefix(env.name)
    refuse_current(site, prefix)
    log = log_path(site, env.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with _env_lock(site, installation, env.name), open(log, "a", encoding="utf-8") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} replicate {env.name} into {prefix}\n")
        try:
            plan, findings = _plan(site, env, out)
            digest = plan.digest()
            if not rebuild and built_digest(prefix) == digest:
                out.write(f"up to date (plan {digest}); nothing rebuilt\n")
                findings = _drift(site, env.name, plan, prefix, findings)
                return BuildResult(env.name, prefix, plan, False, time.monotonic() - started, log, findings)
            _build(site, installation, plan, prefix, out)
            _inherit_permissions(site, installation, env.name)
            findings = _drift(site, env.name, plan, prefix, findings)
        except BuildError as exc:
            exc.log = str(log)
            out.write(f"FAILED at {exc.stage}: {exc}\n")
            raise
        atomic.write_text(prefix / STAMP, json.dumps({"digest": digest, "plan": plan.env, "built": time.time()}) + "\n")
        seconds = time.monotonic() - started
        out.write(f"built in {seconds:.1f}s (plan {digest})\n")
    return BuildResult(env.name, prefix, plan, True, seconds, log, findings)


def _inherit_permissions(site: Site, installation: Installation, env: str) -> None:
    """The new environment gets the group and group bits of its twin in current."""
    try:
        inherit_permissions(site, installation, env)
    except SiteError as exc:
        raise BuildError(str(exc), stage="permission") from None


def _build(site: Site, installation: Installation, plan: BuildPlan, prefix: Path, out: TextIO) -> None:
    if prefix.exists():
        out.write(f"removing the previous build at {prefix}\n")
        shutil.rmtree(prefix)
    engine = get_engine(site.engine)
    engine.create(site, installation, plan, prefix, out)
    for step in plan.post:  # legacy noarch packages, one at a time, before pip needs them
        if step.kind == "conda":
            engine.add(site, installation, plan.env, prefix, step.requirement, out)
    python = prefix / "bin" / "python"
    if plan.pip:
        pip_install(python, list(plan.pip), plan.pip_args, out, stage="pip")
    for step in plan.post:  # git, archive and directory installs, after the pip section they may need
        if step.kind == "pip":
            pip_install(python, [step.requirement], plan.pip_args, out, stage="post-step")


def pip_install(python: Path, requirements: list[str], args: tuple[str, ...], out: TextIO, stage: str) -> None:
    """Run the new environment's own pip, as `conda env create` does for the pip section."""
    if not python.exists():
        raise BuildError(f"{python} does not exist: the pip section needs python in the environment", stage=stage)
    req_file = python.parent.parent / "conda-meta" / "condaqa-requirements.txt"
    req_file.write_text("\n".join(requirements) + "\n", encoding="utf-8")
    cmd = [str(python), "-m", "pip", "install", "--no-input", "--disable-pip-version-check", *args, "-r", str(req_file)]
    out.write("$ " + " ".join(cmd) + "\n")
    out.flush()
    env = {**os.environ, "PIP_NO_INPUT": "1", "PYTHONNOUSERSITE": "1"}
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=PIP_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        raise BuildError(f"pip did not finish within {PIP_TIMEOUT}s", stage=stage) from None
    finally:
        req_file.unlink(missing_ok=True)
    out.write(proc.stdout)
    if proc.returncode != 0:
        tail = [line for line in proc.stdout.splitlines() if line.startswith("ERROR")] or proc.stdout.splitlines()[-5:]
        raise BuildError("pip failed:\n" + "\n".join(tail), stage=stage)

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

from condaqa import atomic
from condaqa.engines import get_engine
from condaqa.errors import BuildError, SiteError
from condaqa.permissions import inherit_permissions
from condaqa.manifest import Environment
from condaqa.plan import BuildPlan
from condaqa.sanitize import Finding, make_plan
from condaqa.site import Installation, Site
from condaqa.spec import export_environment

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
    return make_plan(site, env, export_environment(site, env.name))


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
        plan, findings = plan_environment(site, env)
        digest = plan.digest()
        if not rebuild and built_digest(prefix) == digest:
            out.write(f"up to date (plan {digest}); nothing rebuilt\n")
            return BuildResult(env.name, prefix, plan, False, time.monotonic() - started, log, findings)
        try:
            _build(site, installation, plan, prefix, out)
            _inherit_permissions(site, installation, env.name)
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
    get_engine(site.engine).create(site, installation, plan, prefix, out)
    python = prefix / "bin" / "python"
    for step in plan.post:
        if step.kind == "pip":
            pip_install(python, [step.requirement], plan.pip_args, out, stage="post-step")
    if plan.pip:
        pip_install(python, list(plan.pip), plan.pip_args, out, stage="pip")


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

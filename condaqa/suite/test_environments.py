"""Qualification of every environment in the manifest: `pytest -n auto`, or `-k <env>` for one.

REPLICATE environments are built in qa by the `replicated_env` fixture (once per worker) and
must match current, import their key packages and pass their owners' checks with qa's own
python. Export-only environments get a valid spec and no build.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

from condaqa import triage
from condaqa.checks.executables import executable_findings, missing_executables
from condaqa.checks.imports import import_modules
from condaqa.checks.owner import run_owner_check
from condaqa.checks.versions import version_differences
from condaqa.harness import Replicated, key_modules_or_fail
from condaqa.kernels.specs import Kernel
from condaqa.manifest import Environment
from condaqa.plan.findings import add_findings, explained_packages, load_findings
from condaqa.prefix import is_environment, read_prefix
from condaqa.qualification.required import BUILD, EXPORT, IMPORTS, OWNER, VERSIONS, CheckId
from condaqa.sandbox.box import Sandbox
from condaqa.site import Site
from condaqa.spec.export import export_environment, spec_path, write_export
from condaqa.spec.format import load_spec

Fail = Callable[[triage.Triage], NoReturn]


@pytest.mark.condaqa_requires(BUILD)
def test_builds(replicated_env: Replicated, site: Site, fail_triaged: Fail) -> None:
    """The environment builds in qa from its spec (exported, override or history) after sanitation."""
    error = replicated_env.error
    if error is not None:
        saved = load_findings(site, replicated_env.env.name)
        found = triage.classify_build(replicated_env.env.name, error, saved.findings if saved else ())
        fail_triaged(triage.Triage(found.category, f"failed at {error.stage}: {found.detail}\nlog: {error.log}",
                                   found.hint))
    assert is_environment(replicated_env.prefix)


@pytest.mark.condaqa_requires(VERSIONS)
def test_versions_match_current(replicated_env: Replicated, site: Site, fail_triaged: Fail) -> None:
    """Every conda and pip package of current is in qa at the same version, unless a finding explains why not;
    executables of current's bin/ that qa's lacks are warning findings (calling them by path stops working)."""
    replicated_env.require_built()
    assert replicated_env.build is not None
    current_prefix = site.current_installation().env_prefix(replicated_env.env.name)
    missing = missing_executables(current_prefix, replicated_env.prefix)
    add_findings(site, replicated_env.env.name, executable_findings(replicated_env.env.name, missing))
    expected = explained_packages(replicated_env.build.findings)
    differences = version_differences(read_prefix(current_prefix), read_prefix(replicated_env.prefix), expected)
    if differences:
        fail_triaged(triage.classify_versions(replicated_env.env.name, differences))


@pytest.mark.condaqa_requires(IMPORTS)
def test_key_packages_import(replicated_env: Replicated, sandbox: Sandbox, fail_triaged: Fail) -> None:
    """Each key package imports with qa's python in a fresh process (and is rechecked in current if not)."""
    replicated_env.require_built()
    env = replicated_env.env
    modules = key_modules_or_fail(sandbox, env, fail_triaged)
    failures = [run for run in import_modules(sandbox, env.name, replicated_env.prefix / "bin" / "python", modules)
                if not run.passed]
    if failures:
        fail_triaged(triage.classify_imports(sandbox, env, failures))


@pytest.fixture
def owner_check(site: Site, condaqa_check_id: str) -> Path:
    return site.checks_dir / CheckId.parse(condaqa_check_id).target


@pytest.mark.condaqa_requires(OWNER)
def test_owner_check(replicated_env: Replicated, owner_check: Path, sandbox: Sandbox, fail_triaged: Fail,
                     condaqa_check_id: str) -> None:
    """An owner's check (env_checks/<env>/check_*.py or _all/) passes with qa's python (else rerun in current)."""
    replicated_env.require_built()
    env = replicated_env.env
    run = run_owner_check(sandbox, owner_check, replicated_env.prefix / "bin" / "python", env.name,
                          replicated_env.prefix, env.timeout)
    if not run.passed:
        fail_triaged(triage.classify_owner_check(sandbox, env, owner_check, run))
    assert run.code == replicated_env.required[condaqa_check_id], (
        f"{owner_check.parent} changed while this qualification ran: run it again")


@pytest.mark.condaqa_requires(EXPORT)
def test_export_only(exported_env: str, site: Site, manifest: list[Environment]) -> None:
    """An export-only environment gets a valid spec and no build in qa."""
    path = spec_path(site, exported_env)
    write_export(site, path, export_environment(site, exported_env))
    spec = load_spec(path)
    assert spec.name == exported_env and spec.dependencies
    assert not site.qa_installation().env_prefix(exported_env).exists(), "export-only but built in qa"


def test_manifest_lists_every_environment(site: Site, manifest: list[Environment]) -> None:
    """Every environment found in current is listed in the manifest."""
    listed = {e.name for e in manifest}
    missing = [env for env in site.current_installation().environments() if env not in listed]
    assert not missing, f"environments in {site.current_link} missing from {site.manifest}: {', '.join(missing)}"


def test_kernel_environments_are_replicated(manifest: list[Environment], kernels: list[Kernel]) -> None:
    """Every environment a kernel spec points at is REPLICATE."""
    replicated = {e.name for e in manifest if e.replicate}
    wrong = [f"{k.name} ({k.spec_file}) runs {k.environment}" for k in kernels
             if k.environment and k.environment not in replicated]
    assert not wrong, "kernels point at environments that are not REPLICATE:\n" + "\n".join(wrong)

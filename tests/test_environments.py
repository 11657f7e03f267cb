"""Qualification of every environment in the manifest: `pytest -n 8`, or `-k <env>` for one.

REPLICATE environments are built in qa by the `replicated_env` fixture (once per worker) and
must match current, import their key packages and pass their owners' checks with qa's own
python. Export-only environments get a valid spec and no build.
"""

from __future__ import annotations

from condaqa import checks, findings, prefix, results, triage
from condaqa.kernels import find_kernels
from condaqa.spec import export_environment, load_spec, spec_path, write_spec


def test_builds(replicated_env, site, fail_triaged):
    """The environment builds in qa from its spec (exported, override or history) after sanitation."""
    error = replicated_env.error
    if error is not None:
        saved = findings.load_findings(site, replicated_env.env.name)
        found = triage.classify_build(replicated_env.env.name, error, saved.findings if saved else ())
        fail_triaged(triage.Triage(found.category, f"failed at {error.stage}: {found.detail}\nlog: {error.log}",
                                   found.hint))
    assert prefix.is_environment(replicated_env.prefix)


def test_versions_match_current(replicated_env, site, fail_triaged):
    """Every conda and pip package of current is in qa at the same version, unless a finding explains why not."""
    replicated_env.require_built()
    current = prefix.read_prefix(site.installation(site.current_name).env_prefix(replicated_env.env.name))
    expected = findings.explained_packages(replicated_env.build.findings)
    differences = checks.version_differences(current, prefix.read_prefix(replicated_env.prefix), expected)
    if differences:
        fail_triaged(triage.classify_versions(replicated_env.env.name, differences))


def test_key_packages_import(replicated_env, site, fail_triaged):
    """Each key package imports with qa's python in a fresh process (and is rechecked in current if not)."""
    replicated_env.require_built()
    modules = checks.key_modules(site, replicated_env.env)
    python = replicated_env.prefix / "bin" / "python"
    failures = [run for run in checks.import_modules(python, modules) if not run.passed]
    if failures:
        fail_triaged(triage.classify_imports(site, replicated_env.env, failures))


def test_owner_check(replicated_env, owner_check, site, fail_triaged):
    """An owner's check (env_checks/<env>/check_*.py or _all/) passes with qa's python (else rerun in current)."""
    replicated_env.require_built()
    check = site.checks_dir / owner_check
    run = checks.run_owner_check(
        check, replicated_env.prefix / "bin" / "python", replicated_env.env.name, replicated_env.prefix,
        replicated_env.env.timeout,
    )
    if not run.passed:
        fail_triaged(triage.classify_owner_check(site, replicated_env.env, check, run))


def test_export_only(exported_env, site, manifest):
    """An export-only environment gets a valid spec and no build in qa."""
    path = spec_path(site, exported_env)
    write_spec(path, export_environment(site, exported_env))
    spec = load_spec(path)
    assert spec.name == exported_env and spec.dependencies
    env = next(e for e in manifest if e.name == exported_env)
    results.save(site, results.EnvResult(exported_env, site.installation(site.qa_name).name, env.disposition,
                                         env.owner, outcome=results.EXPORTED))
    assert not site.installation(site.qa_name).env_prefix(exported_env).exists(), "export-only but built in qa"


def test_manifest_lists_every_environment(site, manifest):
    """Every environment found in current is listed in the manifest."""
    listed = {e.name for e in manifest}
    missing = [env for env in site.installation(site.current_name).environments() if env not in listed]
    assert not missing, f"environments in {site.current} missing from {site.manifest}: {', '.join(missing)}"


def test_kernel_environments_are_replicated(site, manifest):
    """Every environment a kernel spec points at is REPLICATE."""
    replicated = {e.name for e in manifest if e.replicate}
    wrong = [f"{k.name} ({k.spec_file}) runs {k.environment}" for k in find_kernels(site)
             if k.environment and k.environment not in replicated]
    assert not wrong, "kernels point at environments that are not REPLICATE:\n" + "\n".join(wrong)

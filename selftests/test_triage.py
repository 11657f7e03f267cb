"""Failure triage: every category from a real failure on a demo site, plus the message rules.

One demo site for the module; each test breaks a different environment of it (an override, a
moved git repository, a check of its own), builds it in qa and classifies what happened.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from condaqa import checks, findings, sources, triage
from condaqa.build.replicate import replicate
from condaqa.demo.site import ensure_demo
from condaqa.errors import BuildError
from condaqa.manifest import load_manifest
from condaqa.site import Site, load_site

from conftest import write_project


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    folder = tmp_path_factory.mktemp("triage")
    site = load_site(write_project(folder / "project", folder / "site"))
    ensure_demo(site, progress=lambda line: None)
    return site


def env_named(site: Site, name: str):
    return next(e for e in load_manifest(site.manifest) if e.name == name)


def override(site: Site, env: str, conda: list[str], pip: list[str] = ()) -> None:
    lines = [f"name: {env}", "channels: [main, mpc]", "dependencies:", *(f"  - {c}" for c in conda)]
    if pip:
        lines += ["  - pip:", *(f"      - {p}" for p in pip)]
    path = sources.override_path(site, env)
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def build_failure(site: Site, env: str) -> tuple[BuildError, triage.Triage]:
    with pytest.raises(BuildError) as caught:
        replicate(site, env_named(site, env))
    saved = findings.load_findings(site, env)
    return caught.value, triage.classify_build(env, caught.value, saved.findings if saved else ())


def test_unsatisfiable_pins_get_the_solver_explanation(site):
    override(site, "hlink", ["python", "pip", "linkage=2.2.0", "ipumsdata=0.4.1"])
    error, found = build_failure(site, "hlink")
    assert error.stage == "solve" and found.category == triage.UNSATISFIABLE
    assert "linkage" in found.detail and "ipumsdata >=0.5" in found.detail
    assert "manifests/overrides/hlink.yml" in found.hint


def test_a_missing_version_is_caught_at_preflight(site):
    sources.override_path(site, "missing_pin").unlink()
    error, found = build_failure(site, "missing_pin")
    assert error.stage == "preflight" and found.category == triage.MISSING_VERSION
    assert "ipumsdata=0.4.0" in found.detail and "0.4.1, 0.5.0" in found.detail


def test_pip_failure_names_the_requirement_and_pips_message(site):
    override(site, "survey_weights", ["python", "pip", "tabular=2.0.0"], ["surveyweights==9.9"])
    error, found = build_failure(site, "survey_weights")
    assert error.stage == "pip" and found.category == triage.PIP_FAILED
    assert found.detail.startswith("pip could not install surveyweights==9.9:")
    assert "from versions: 0.3.0" in found.detail


def test_an_unreachable_git_repository_is_vcs_unreachable(site):
    repo = site.root / "git" / "harmonize"
    (repo / ".git").rename(repo / "git-was-here")  # the folder is there, the repository is not
    error, found = build_failure(site, "git_installed")
    assert error.stage == "post-step" and found.category == triage.VCS_UNREACHABLE
    assert "git clone" in found.detail
    shutil.rmtree(repo)  # now the source is gone altogether: caught before any solve
    error, found = build_failure(site, "git_installed")
    assert error.stage == "preflight" and found.category == triage.VCS_UNREACHABLE
    assert str(repo) in found.detail and "no longer exists" in found.detail


def test_a_legacy_package_that_cannot_join_the_environment_fails_its_post_step(site):
    override(site, "legacy_noarch", ["python", "pip", "tabular=1.0.0", "varlabels=0.2.0"])  # varlabels needs >=1.1
    error, found = build_failure(site, "legacy_noarch")
    assert error.stage == "post-step" and found.category == triage.POST_STEP_FAILED
    assert "varlabels=0.2.0 cannot be added" in found.detail


def write_check(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(source)
    return path


def qa_run(site: Site, env: str, check: Path, timeout: float = 60) -> checks.CheckRun:
    prefix = replicate(site, env_named(site, env)).prefix
    return checks.run_owner_check(check, prefix / "bin" / "python", env, prefix, timeout)


def test_owner_checks_failing_only_in_qa_are_regressions_else_already_broken(site, tmp_path):
    env = env_named(site, "listed_twice")
    pip_build = write_check(tmp_path, "check_describe.py",  # current has pip's DateFmt, qa conda's datefmt
                            "import datefmt\nassert datefmt.describe() == 'DateFmt 1.0.0', datefmt.describe()\n")
    run = qa_run(site, env.name, pip_build)
    assert not run.passed
    found = triage.classify_owner_check(site, env, pip_build, run)
    assert found.category == triage.OWNER_CHECK_FAILED and "datefmt 1.0.0" in found.detail
    broken = write_check(tmp_path, "check_weights.py", "import surveyweights\n")
    found = triage.classify_owner_check(site, env, broken, qa_run(site, env.name, broken))
    assert found.category == triage.ALREADY_BROKEN and "fails in current too" in found.detail


def test_an_owner_check_that_hangs_only_in_qa_is_a_timeout(site, tmp_path):
    env = replace(env_named(site, "listed_twice"), timeout=1.0)
    slow = write_check(tmp_path, "check_slow.py",
                       "import os, sys, time\nif '/v4.8/' in os.path.realpath(sys.prefix):\n    time.sleep(30)\n")
    run = qa_run(site, env.name, slow, timeout=env.timeout)
    assert run.timed_out
    assert triage.classify_owner_check(site, env, slow, run).category == triage.TIMEOUT


def test_imports_failing_in_qa_only_are_import_failed_else_already_broken(site):
    override(site, "noarch_in_pip", ["python", "pip", "tabular=1.1.0"])  # fixedwidth forgotten
    env = env_named(site, "noarch_in_pip")
    python = replicate(site, env).prefix / "bin" / "python"
    failures = [checks.import_module(python, m) for m in ("fixedwidth", "surveyweights")]
    found = triage.classify_imports(site, env, failures)
    assert found.category == triage.IMPORT_FAILED and "import fixedwidth failed in qa" in found.detail
    assert "ModuleNotFoundError" in found.detail and "already broken in current: surveyweights" in found.detail
    assert triage.classify_imports(site, env, failures[1:]).category == triage.ALREADY_BROKEN


_PERMISSION_PROBE = """
import json, sys
from condaqa import triage
from condaqa.build.replicate import replicate
from condaqa.errors import BuildError
from condaqa.manifest import load_manifest
from condaqa.site import load_site
site = load_site(sys.argv[1])
env = next(e for e in load_manifest(site.manifest) if e.name == sys.argv[2])
try:
    replicate(site, env)
except BuildError as exc:
    found = triage.classify_build(env.name, exc)
    print(json.dumps({"stage": exc.stage, "category": found.category, "detail": found.detail}))
"""


def test_a_qa_installation_the_builder_cannot_write_is_permission(site):
    """A real EACCES: as root, the build runs without the capabilities that bypass file modes."""
    envs = site.root / "v4.8" / "envs"
    command = [sys.executable, "-c", _PERMISSION_PROBE, str(site.file), "super_important_jupyter_kernel"]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot take away root's permission override")
        command = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", *command]
    shutil.rmtree(envs / "super_important_jupyter_kernel", ignore_errors=True)
    envs.chmod(0o555)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    finally:
        envs.chmod(0o755)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["category"] == triage.PERMISSION, (answer, done.stderr)
    assert "ermission denied" in answer["detail"]


@pytest.mark.parametrize(
    ("stage", "message", "category"),
    [
        pytest.param("guard", "/r/current/envs/x lies under /r/current; refusing to write there", triage.PERMISSION,
                     id="guard"),
        pytest.param("permission", "chgrp /r/v4.8/envs/x: Operation not permitted", triage.PERMISSION,
                     id="group-permissions"),
        pytest.param("install", "linking failed: failed to create directory: Read-only file system (os error 30)",
                     triage.PERMISSION, id="read-only"),
        pytest.param("pip", "pip did not finish within 1800s", triage.TIMEOUT, id="pip-timeout"),
        pytest.param("pip", "pip failed:\nERROR: Cannot install a==1 and b==2 because these package versions have "
                     "conflicting dependencies.", triage.PIP_FAILED, id="pip-conflict"),
        pytest.param("post-step", "pip failed:\nfatal: unable to access 'https://github.com/x/y/': Could not resolve "
                     "host: github.com", triage.VCS_UNREACHABLE, id="no-network"),
        pytest.param("engine", "the engine process died (exit code 139): Segmentation fault", triage.BUILD_FAILED,
                     id="unknown"),
        pytest.param("preflight", "1 problem(s) found before solving:\n- x: 'x y z' is not a conda package spec",
                     triage.BUILD_FAILED, id="bad-override-entry"),
    ],
)
def test_messages_classify(stage, message, category):
    found = triage.classify_build("env1", BuildError(message, stage=stage))
    assert found.category == category and found.hint == triage.HINTS[category].format(env="env1")
    assert found.detail and "{env}" not in found.hint


def test_every_category_has_a_hint_and_test_failures_fall_back_by_test():
    assert set(triage.CATEGORIES) >= {"missing-version", "unsatisfiable", "pip-failed", "vcs-unreachable",
                                      "post-step-failed", "import-failed", "owner-check-failed", "timeout",
                                      "permission", "already-broken"}
    assert triage.category_of_test("test_owner_check[hlink-_all/check_interpreter.py]") == triage.OWNER_CHECK_FAILED
    assert triage.category_of_test("test_versions_match_current[hlink]") == triage.VERSION_MISMATCH
    found = triage.classify_versions("hlink", [f"pkg{i}: current has 1, qa has 2" for i in range(7)])
    assert found.category == triage.VERSION_MISMATCH and "... and 2 more" in found.detail

"""Failure triage: every category from a real failure on a demo site, plus the message rules.

Each test breaks one environment of its own copy of a demo site (an override, a check of its own, a
moved git repository), builds it in qa and classifies what happened. The
message rules, the kernel, version and current-changed cases run without a site.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from condaqa import triage
from condaqa.checks.imports import import_module
from condaqa.checks.owner import run_owner_check
from condaqa.checks.runs import CheckRun
from condaqa.errors import BuildError
from condaqa.kernels.launch import KernelRun
from condaqa.manifest import Environment, load_manifest
from condaqa.plan.findings import Finding, load_findings
from condaqa.plan.planning import override_path
from condaqa.replication.replicate import replicate
from condaqa.sandbox.box import Sandbox, sandbox_for
from condaqa.site import Site
from condaqa.vocab import Category, Disposition, Rule, Severity, Stage


@pytest.fixture
def site(demo_site: Site) -> Site:
    """The test's own copy of the demo site (conftest): each test breaks it."""
    return demo_site


@pytest.fixture
def sandbox(site: Site) -> Sandbox:
    return sandbox_for(site)


def env_named(site: Site, name: str) -> Environment:
    return next(e for e in load_manifest(site.manifest) if e.name == name)


def override(site: Site, env: str, conda: list[str], pip: Sequence[str] = ()) -> None:
    lines = [f"name: {env}", "channels: [main, mpc]", "dependencies:", *(f"  - {c}" for c in conda)]
    if pip:
        lines += ["  - pip:", *(f"      - {p}" for p in pip)]
    path = override_path(site, env)
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def build_failure(site: Site, env: str) -> tuple[BuildError, triage.Triage]:
    with pytest.raises(BuildError) as caught:
        replicate(site, sandbox_for(site), env_named(site, env))
    saved = load_findings(site, env)
    return caught.value, triage.classify_build(env, caught.value, saved.findings if saved else ())


PRODUCED: set[Category] = set()  # what the tests marked @produces(...) below get from real failures


def produces(*categories: Category) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Marks a test that gets `categories` from a real failure (and asserts them): a test deleted is a
    category no longer shown to be produced, which test_every_category_is_produced_by_some_case_here sees."""
    def mark(test: Callable[..., None]) -> Callable[..., None]:
        PRODUCED.update(categories)
        return test
    return mark


@produces(Category.UNSATISFIABLE)
def test_unsatisfiable_pins_get_the_solver_explanation(site: Site) -> None:
    override(site, "hlink", ["python", "pip", "linkage=2.2.0", "ipumsdata=0.4.1"])
    error, found = build_failure(site, "hlink")
    assert error.stage is Stage.SOLVE and found.category is Category.UNSATISFIABLE
    assert "linkage" in found.detail and "ipumsdata >=0.5" in found.detail
    assert "manifests/overrides/hlink.yml" in found.hint


def test_a_failed_solve_keeps_the_solvers_whole_explanation_in_the_findings(site: Site) -> None:
    """The first-error cell is cut after an item; the findings file and the summary keep every word."""
    from condaqa import report
    from condaqa.qualification.builds import build

    override(site, "hlink", ["python", "pip", "linkage=2.2.0", "ipumsdata=0.4.1"])
    with pytest.raises(BuildError) as caught:
        build(site, sandbox_for(site), env_named(site, "hlink"))
    whole = triage.classify_build("hlink", caught.value).detail.strip()
    saved = load_findings(site, "hlink")
    assert saved is not None
    [solver] = [f for f in saved.findings if f.rule is Rule.SOLVER]
    assert solver.severity is Severity.ERROR and solver.reason == whole and "ipumsdata >=0.5" in whole
    md, _ = report.write_summary(site, load_manifest(site.manifest), [], "test")
    assert all(line.strip() in md.read_text() for line in whole.splitlines())


@produces(Category.MISSING_VERSION)
def test_a_missing_version_is_caught_at_preflight(site: Site) -> None:
    site = replace(site, rescue=False)  # ipumsdata 0.4.0 is in current's cache: no rescue
    override_path(site, "missing_pin").unlink()
    error, found = build_failure(site, "missing_pin")
    assert error.stage is Stage.PREFLIGHT and found.category is Category.MISSING_VERSION
    assert "ipumsdata=0.4.0" in found.detail and "0.4.1, 0.5.0" in found.detail


@produces(Category.PIP_FAILED)
def test_pip_failure_names_the_requirement_and_pips_message(site: Site) -> None:
    override(site, "survey_weights", ["python", "pip", "tabular=2.0.0"], ["surveyweights==9.9"])
    error, found = build_failure(site, "survey_weights")
    assert error.stage is Stage.PIP and found.category is Category.PIP_FAILED
    assert found.detail.startswith("pip could not install surveyweights==9.9:")
    assert "from versions: 0.3.0" in found.detail


@produces(Category.VCS_UNREACHABLE)
def test_an_unreachable_git_repository_is_vcs_unreachable(archive_site: Site) -> None:
    site = archive_site  # it moves the site's git repository away: a site of its own
    repo = site.root / "git" / "harmonize"
    (repo / ".git").rename(repo / "git-was-here")  # the folder is there, the repository is not
    error, found = build_failure(site, "git_installed")
    assert error.stage is Stage.POST_STEP and found.category is Category.VCS_UNREACHABLE
    assert "git clone" in found.detail
    shutil.rmtree(repo)  # now the source is gone altogether: caught before any solve
    error, found = build_failure(site, "git_installed")
    assert error.stage is Stage.PREFLIGHT and found.category is Category.VCS_UNREACHABLE
    assert str(repo) in found.detail and "no longer exists" in found.detail


@produces(Category.POST_STEP_FAILED)
def test_a_legacy_package_that_cannot_join_the_environment_fails_its_post_step(site: Site) -> None:
    override(site, "legacy_noarch", ["python", "pip", "tabular=1.0.0", "varlabels=0.2.0"])  # varlabels needs >=1.1
    error, found = build_failure(site, "legacy_noarch")
    assert error.stage is Stage.POST_STEP and found.category is Category.POST_STEP_FAILED
    assert "varlabels=0.2.0 cannot be added" in found.detail


def write_check(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(source)
    return path


def qa_run(site: Site, sandbox: Sandbox, env: str, check: Path, timeout: float = 60) -> CheckRun:
    prefix = replicate(site, sandbox_for(site), env_named(site, env)).prefix
    return run_owner_check(sandbox, check, prefix / "bin" / "python", env, prefix, timeout)


@produces(Category.OWNER_CHECK_FAILED, Category.ALREADY_BROKEN)
def test_owner_checks_failing_only_in_qa_are_regressions_else_already_broken(
        site: Site, sandbox: Sandbox, tmp_path: Path) -> None:
    env = env_named(site, "listed_twice")
    pip_build = write_check(tmp_path, "check_describe.py",  # current has pip's DateFmt, qa conda's datefmt
                            "import datefmt\nassert datefmt.describe() == 'DateFmt 1.0.0', datefmt.describe()\n")
    run = qa_run(site, sandbox, env.name, pip_build)
    assert not run.passed
    found = triage.classify_owner_check(sandbox, env, pip_build, run)
    assert found.category is Category.OWNER_CHECK_FAILED and "datefmt 1.0.0" in found.detail
    assert found.hint.endswith("ask its owner, ipums-usa")  # environments.toml names listed_twice's owner
    assert "datefmt 1.0.0" in found.qa_tail and not found.current_tail  # current passed, printing nothing
    broken = write_check(tmp_path, "check_weights.py", "import surveyweights\n")
    found = triage.classify_owner_check(sandbox, env, broken, qa_run(site, sandbox, env.name, broken))
    assert found.category is Category.ALREADY_BROKEN and "fails in current too" in found.detail
    assert "surveyweights" in found.qa_tail and "surveyweights" in found.current_tail


@produces(Category.TIMEOUT)
def test_an_owner_check_that_hangs_only_in_qa_is_a_timeout(site: Site, sandbox: Sandbox, tmp_path: Path) -> None:
    env = replace(env_named(site, "listed_twice"), timeout=1.0)
    slow = write_check(tmp_path, "check_slow.py",
                       "import os, sys, time\nif '/v4.8/' in os.path.realpath(sys.prefix):\n    time.sleep(30)\n")
    run = qa_run(site, sandbox, env.name, slow, timeout=env.timeout)
    assert run.timed_out
    assert triage.classify_owner_check(sandbox, env, slow, run).category is Category.TIMEOUT


@produces(Category.IMPORT_FAILED, Category.ALREADY_BROKEN)
def test_imports_failing_in_qa_only_are_import_failed_else_already_broken(site: Site, sandbox: Sandbox) -> None:
    override(site, "noarch_in_pip", ["python", "pip", "tabular=1.1.0"])  # fixedwidth forgotten
    env = env_named(site, "noarch_in_pip")
    python = replicate(site, sandbox_for(site), env).prefix / "bin" / "python"
    failures = [import_module(sandbox, env.name, python, m) for m in ("fixedwidth", "surveyweights")]
    found = triage.classify_imports(sandbox, env, failures)
    assert found.category is Category.IMPORT_FAILED and "import fixedwidth failed in qa" in found.detail
    assert "ModuleNotFoundError" in found.detail and "already broken in current: surveyweights" in found.detail
    assert triage.classify_imports(sandbox, env, failures[1:]).category is Category.ALREADY_BROKEN


_PERMISSION_PROBE = """
import json, sys
from condaqa import triage
from condaqa.replication.replicate import replicate
from condaqa.errors import BuildError
from condaqa.manifest import load_manifest
from condaqa.sandbox.box import sandbox_for
from condaqa.site import load_site
site = load_site(sys.argv[1])
env = next(e for e in load_manifest(site.manifest) if e.name == sys.argv[2])
try:
    replicate(site, sandbox_for(site), env)
except BuildError as exc:
    found = triage.classify_build(env.name, exc)
    print(json.dumps({"stage": exc.stage, "category": found.category, "detail": found.detail}))
"""


@produces(Category.PERMISSION)
def test_a_qa_installation_the_builder_cannot_write_is_permission(site: Site) -> None:
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
    assert answer["category"] == Category.PERMISSION, (answer, done.stderr)
    assert "ermission denied" in answer["detail"]


# --- the message rules, without a site -----------------------------------------------------------

BUILD_MESSAGES: dict[str, tuple[Stage, str, Category]] = {  # id: stage, message, category
    "guard": (Stage.GUARD, "/r/current/envs/x lies under /r/current; refusing to write there", Category.REFUSED),
    "group-permissions": (Stage.PERMISSION, "chgrp /r/v4.8/envs/x: Operation not permitted", Category.PERMISSION),
    "read-only": (Stage.INSTALL, "linking failed: failed to create directory: Read-only file system (os error 30)",
                  Category.PERMISSION),
    "pip-timeout": (Stage.PIP, "pip did not finish within 1800s", Category.TIMEOUT),
    "pip-conflict": (Stage.PIP, "pip failed:\nERROR: Cannot install a==1 and b==2 because these package versions "
                     "have conflicting dependencies.", Category.PIP_FAILED),
    "no-network": (Stage.POST_STEP, "pip failed:\nfatal: unable to access 'https://github.com/x/y/': Could not "
                   "resolve host: github.com", Category.VCS_UNREACHABLE),
    "legacy-post-step": (Stage.POST_STEP, "conda install varlabels=0.2.0 failed:\nvarlabels=0.2.0 cannot be added",
                         Category.POST_STEP_FAILED),
    "conda-not-found": (Stage.SOLVE, "PackagesNotFoundError: The following packages are not available from current "
                        "channels:\n\n  - ipumsdata=0.4.0", Category.MISSING_VERSION),
    "conda-conflict": (Stage.SOLVE, "UnsatisfiableError: The following specifications were found to be incompatible "
                       "with each other:\n\n  - linkage=2.2.0\n  - ipumsdata=0.4.1", Category.UNSATISFIABLE),
    "unknown": (Stage.ENGINE, "the engine process died (exit code 139): Segmentation fault", Category.BUILD_FAILED),
    "bad-override-entry": (Stage.PREFLIGHT, "1 problem(s) found before solving:\n- x: 'x y z' is not a conda "
                           "package spec", Category.BUILD_FAILED),
}


@pytest.mark.parametrize(("stage", "message", "category"), BUILD_MESSAGES.values(), ids=BUILD_MESSAGES)
def test_messages_classify(stage: Stage, message: str, category: Category) -> None:
    found = triage.classify_build("env1", BuildError(message, stage=stage))
    assert found.category is category and found.hint == triage.HINTS[category].format(env="env1")
    assert found.detail and "{env}" not in found.hint


def test_conda_lists_the_specs_it_cannot_satisfy_on_the_first_line() -> None:
    message = ("UnsatisfiableError: The following specifications were found to be incompatible:\n"
               "  - linkage=2.2.0\n  - ipumsdata=0.4.1\n")
    found = triage.classify_build("hlink", BuildError(message, stage=Stage.SOLVE))
    assert found.detail.splitlines()[0].endswith("linkage=2.2.0, ipumsdata=0.4.1")


def finding(rule: Rule, package: str, reason: str) -> Finding:
    return Finding(rule, "env1", package, "build stopped at preflight", reason, Severity.ERROR)


PREFLIGHT_CASES: dict[str, tuple[list[Finding], Category, str]] = {  # id: stopped, category, words
    "missing-version": (
        [finding(Rule.MISSING_VERSION, "ipumsdata", "ipumsdata=0.4.0: nearest available: 0.4.1, 0.5.0")],
        Category.MISSING_VERSION, "nearest available: 0.4.1, 0.5.0"),
    "source-gone": (
        [finding(Rule.DIRECT_URL, "harmonize", "installed from /r/git/harmonize, which no longer exists")],
        Category.VCS_UNREACHABLE, "harmonize: installed from /r/git/harmonize"),
    "refused-option": (
        [finding(Rule.PIP_OPTIONS, "--index-url https://evil.example", "adds a package source")],
        Category.BUILD_FAILED, "adds a package source"),
}


@pytest.mark.parametrize(("stopped", "category", "words"), PREFLIGHT_CASES.values(), ids=PREFLIGHT_CASES)
def test_preflight_stops_classify_by_the_findings_that_stopped_them(stopped: list[Finding], category: Category,
                                                                   words: str) -> None:
    info = Finding(Rule.LISTED_TWICE, "env1", "datefmt", "dropped from pip", "also the conda package datefmt")
    error = BuildError(f"{len(stopped)} problem(s) found before solving:\n- {stopped[0].reason}", stage=Stage.PREFLIGHT)
    found = triage.classify_build("env1", error, [info, *stopped])
    assert found.category is category and words in found.detail


@produces(Category.VERSION_MISMATCH)
def test_more_than_five_version_differences_are_cut_short() -> None:
    found = triage.classify_versions("hlink", [f"pkg{i}: current has 1, qa has 2" for i in range(7)])
    assert found.category is Category.VERSION_MISMATCH and "... and 2 more" in found.detail
    assert "pkg4:" in found.detail and "pkg5:" not in found.detail


def kernel_run(ok: bool, problem: str = "", *, stderr: str = "", timed_out: bool = False,
               current_changed: str = "") -> KernelRun:
    return KernelRun("k1", ok, "/r/v4.8/envs/env1" if ok else "", (), 1.0, problem, stderr, timed_out, current_changed)


KERNEL_CASES: dict[str, tuple[KernelRun, KernelRun, Category, str]] = {  # id: qa, baseline, category, words
    "qa-only": (kernel_run(False, "it exited 1 before answering", stderr="No module named ipykernel_launcher"),
                kernel_run(True), Category.KERNEL_FAILED, "No module named ipykernel_launcher"),
    "hangs": (kernel_run(False, "no kernel_info within 60s", timed_out=True), kernel_run(True), Category.TIMEOUT,
              "no kernel_info within 60s"),
    "broken-before": (kernel_run(False, "it exited 1 before answering"),
                      kernel_run(False, "it exited 1 in current too"),
                      Category.ALREADY_BROKEN, "it exited 1 in current too"),
    "wrote-to-current": (kernel_run(True, current_changed="/r/v4.3/envs/env1/bin/x appeared"), kernel_run(True),
                         Category.CURRENT_CHANGED, "/r/v4.3/envs/env1/bin/x appeared"),
}


@pytest.mark.parametrize(("qa", "baseline", "category", "words"), KERNEL_CASES.values(), ids=KERNEL_CASES)
def test_kernel_failures_classify(qa: KernelRun, baseline: KernelRun, category: Category, words: str) -> None:
    env = Environment("env1", Disposition.REPLICATE, 1)
    found = triage.classify_kernel(env, qa, baseline, "/r/v4.8/envs/env1")
    assert found.category is category and words in found.detail


@produces(Category.CURRENT_CHANGED)
def test_a_run_that_changed_current_is_current_changed_whatever_it_returned(tmp_path: Path) -> None:
    from helpers_sites import make_site

    small = make_site(tmp_path)
    sandbox, env = sandbox_for(small), Environment("alpha", Disposition.REPLICATE, 1)
    changed = CheckRun("alpha_mod", 0, "", current_changed="/s/conda/v4.3/envs/alpha/bin/x appeared")
    assert triage.classify_imports(sandbox, env, [changed]).category is Category.CURRENT_CHANGED
    found = triage.classify_owner_check(sandbox, env, tmp_path / "check_x.py", changed)
    assert found.category is Category.CURRENT_CHANGED and "bin/x appeared" in found.detail


def test_every_category_has_a_hint_that_says_what_to_do_for_its_environment() -> None:
    assert set(triage.HINTS) == set(Category)  # a new category without a hint would make triaged() raise
    actions = ("pin", "change", "make", "fix", "compare", "ask", "read", "raise", "check", "find", "drop", "set",
               "move")
    for category, template in triage.HINTS.items():
        hint = triage.hint(category, "hlink", "linkage-group")
        assert "{" not in hint and "}" not in hint, category
        cause, _, remedy = hint.partition(": ")
        assert cause and remedy, f"{category}: the hint says what happened, then what to do, after a colon"
        assert any(word in remedy.split() for word in actions), f"{category}: {remedy!r} names nothing to do"
        if "manifests/overrides/" in template:
            assert "manifests/overrides/hlink.yml" in hint, category
        if "{owner}" in template:  # a person to ask, by name, or where to name one
            assert "its owner, linkage-group" in hint, category
            assert "owner in environments.toml [hlink]" in triage.hint(category, "hlink"), category


def test_every_category_is_produced_by_some_case_here() -> None:
    """What the tables above give when classified now, and what the tests marked @produces get."""
    env = Environment("env1", Disposition.REPLICATE, 1)
    produced = {triage.classify_build("env1", BuildError(message, stage=stage)).category
                for stage, message, _ in BUILD_MESSAGES.values()}
    produced |= {triage.classify_build("env1", BuildError("stopped", stage=Stage.PREFLIGHT), stopped).category
                 for stopped, _, _ in PREFLIGHT_CASES.values()}
    produced |= {triage.classify_kernel(env, qa, baseline, "/r/v4.8/envs/env1").category
                 for qa, baseline, _, _ in KERNEL_CASES.values()}
    assert produced | PRODUCED == set(Category), set(Category) - produced - PRODUCED


CONFLICTS = {"python": ["eta=1.0 -> python[version='<3']", "alpha=2.0 -> python[version='>=3.8']"],
             "alpha": ["eta=1.0 -> alpha[version='<2.0']", "alpha=2.0"]}


def _unsatisfiable(order: list[str]) -> str:
    groups = "".join(f"\nPackage {name} conflicts for:\n" + "\n".join(CONFLICTS[name] if name == "alpha" else
                                                                       reversed(CONFLICTS[name]))
                     for name in order)
    return "UnsatisfiableError: The following specifications were found to be incompatible with each other:\n" + groups


def test_conflicts_read_the_same_in_whatever_order_conda_lists_them() -> None:
    """conda 4.8 and 25.x list the conflict groups and their chains in another order each run: a nightly
    report changes only when the conflicts do."""
    one, two = (triage.classify_build("hlink", BuildError(_unsatisfiable(order), stage=Stage.SOLVE))
                for order in (["python", "alpha"], ["alpha", "python"]))
    assert one.detail.splitlines()[0] == two.detail.splitlines()[0]
    assert one.detail.splitlines()[0].endswith("each other: alpha (alpha=2.0, eta=1.0 -> alpha[version='<2.0']); "
                                               "python (alpha=2.0 -> python[version='>=3.8'], eta=1.0 -> "
                                               "python[version='<3'])")


def test_a_long_first_line_is_cut_after_a_whole_item() -> None:
    line = "UnsatisfiableError: incompatible: " + "; ".join(f"package{i} (chain{i} -> package{i})" for i in range(40))
    cut = triage.headline(line)
    assert len(cut) <= triage.HEADLINE and cut.endswith(")" + " ...") and cut.startswith(line[:200])
    assert triage.headline("short\nsecond line") == "short"

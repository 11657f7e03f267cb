"""Failure triage: one category and a remediation hint for every failed environment.

A build failure is classified from its BuildError (stage and message) and the preflight
findings; a test failure from what failed. A failing import or owner check is run again with
current's python, read-only: one that fails there too is `already-broken` — kept visible, but
not a regression of the migration — so owners see what the new installation broke and what
was broken before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from condaqa import checks
from condaqa.errors import BuildError
from condaqa.manifest import Environment
from condaqa.findings import ERROR, Finding
from condaqa.site import Site

MISSING_VERSION = "missing-version"
UNSATISFIABLE = "unsatisfiable"
PIP_FAILED = "pip-failed"
VCS_UNREACHABLE = "vcs-unreachable"
POST_STEP_FAILED = "post-step-failed"
IMPORT_FAILED = "import-failed"
OWNER_CHECK_FAILED = "owner-check-failed"
TIMEOUT = "timeout"
PERMISSION = "permission"
ALREADY_BROKEN = "already-broken"
VERSION_MISMATCH = "version-mismatch"  # built, but not with current's versions
BUILD_FAILED = "build-failed"  # a build failure none of the above explains: read the log

OVERRIDE = "manifests/overrides/{env}.yml"
HINTS = {
    MISSING_VERSION: "a pinned version is no longer in the channels: pin one of the nearest versions in "
                     f"{OVERRIDE}, or publish the old version to the channel again",
    UNSATISFIABLE: "the pins cannot be installed together in the new installation: change the conflicting "
                   f'pins in {OVERRIDE}, or set strategy = "history" for {{env}} in environments.toml',
    PIP_FAILED: "pip could not install a requirement: make it available to pip_args (wheelhouse or index), "
                f"or pin an available version in {OVERRIDE}",
    VCS_UNREACHABLE: "the repository or source folder a package was installed from cannot be reached from the "
                     f"build host: make it reachable, or pin a released version in {OVERRIDE}",
    POST_STEP_FAILED: "a post-create step failed (see the log): fix its requirement in "
                      f"{OVERRIDE}, or take the package out of manifests/legacy-noarch.txt",
    IMPORT_FAILED: "a key module imports in current but not in qa: compare the traceback with current and "
                   f"fix the spec in {OVERRIDE}",
    OWNER_CHECK_FAILED: "the owner's check passes in current but fails in qa: a regression of the migration; "
                        "ask the owner named in environments.toml",
    TIMEOUT: "it did not finish in time: raise timeout for {env} in environments.toml, or find what hangs in "
             "the log",
    PERMISSION: "the build could not write where it must: check the owner and group permissions of the qa "
                "installation (qualification never writes under current)",
    ALREADY_BROKEN: "it fails with current's python too: not caused by the migration; the owner should fix or "
                    "drop the check or module",
    VERSION_MISMATCH: f"qa resolved other versions than current has: pin them in {OVERRIDE}, or accept the drift",
    BUILD_FAILED: "the build failed for a reason triage does not recognise: read the message and the log",
}
CATEGORIES = tuple(HINTS)

_TIMEOUT = re.compile(r"did not finish within|timed out|TimeoutExpired", re.IGNORECASE)
_PERMISSION = re.compile(r"permission denied|\[Errno 13\]|os error 13|EACCES|read-only file system|\[Errno 30\]"
                         r"|os error 30|operation not permitted", re.IGNORECASE)
_VCS = re.compile(r"\b(?:git|hg|svn|bzr) (?:clone|fetch|checkout|ls-remote)\b|Cloning |fatal: |"
                  r"Could not resolve host|Repository not found|does not appear to be a git repository")
_PIP_REQUIREMENT = re.compile(r"requirement (\S+)|distribution found for (\S+)|Invalid requirement: '([^']+)'|"
                              r"Failed building wheel for (\S+)|Cannot install (.+?) because")
_DIRECT_URL_RULE = "direct-url"
TAIL = 15  # lines of a traceback or a check's output kept in the message


@dataclass(frozen=True)
class Triage:
    category: str
    detail: str
    hint: str

    def message(self) -> str:
        return f"[{self.category}] {self.detail}\nhint: {self.hint}"


def triaged(category: str, env: str, detail: str) -> Triage:
    return Triage(category, detail.strip(), HINTS[category].format(env=env))


def classify_build(env: str, error: BuildError, findings: Iterable[Finding] = ()) -> Triage:
    """The category of a failed build, from its stage, its message and the preflight findings."""
    text = str(error)
    if _TIMEOUT.search(text):
        return triaged(TIMEOUT, env, _head(text))
    if error.stage in ("guard", "permission") or _PERMISSION.search(text):
        return triaged(PERMISSION, env, _matching_line(text, _PERMISSION))
    if error.stage == "preflight":
        return _preflight(env, text, [f for f in findings if f.severity == ERROR])
    if error.stage == "solve":
        return triaged(UNSATISFIABLE, env, text.replace("the solver could not satisfy the specs:", "").strip())
    if error.stage in ("pip", "post-step") and _VCS.search(text):
        return triaged(VCS_UNREACHABLE, env, _matching_line(text, _VCS))
    if error.stage == "pip":
        return triaged(PIP_FAILED, env, _pip_detail(text))
    if error.stage == "post-step":
        return triaged(POST_STEP_FAILED, env, _head(text, 8))
    return triaged(BUILD_FAILED, env, f"at {error.stage}: {_head(text)}")


def _preflight(env: str, text: str, errors: list[Finding]) -> Triage:
    if errors and all(f.rule == _DIRECT_URL_RULE for f in errors):
        return triaged(VCS_UNREACHABLE, env, "; ".join(f"{f.package}: {f.reason}" for f in errors))
    missing = [f for f in errors if f.rule == MISSING_VERSION]
    if missing:
        return triaged(MISSING_VERSION, env, "; ".join(f.reason for f in missing))
    return triaged(BUILD_FAILED, env, _head(text, 8))


def _pip_detail(text: str) -> str:
    """Which requirement and pip's own words."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("pip failed")]
    for line in lines:
        match = _PIP_REQUIREMENT.search(line)
        if match:
            requirement = next(g for g in match.groups() if g)
            return f"pip could not install {requirement}: {line.removeprefix('ERROR: ')}"
    return "pip failed: " + " | ".join(lines[-3:])


def _head(text: str, lines: int = 4) -> str:
    return "\n".join(text.strip().splitlines()[:lines])


def _matching_line(text: str, pattern: re.Pattern) -> str:
    return next((line.strip() for line in text.splitlines() if pattern.search(line)), _head(text))


def current_python(site: Site, env: str) -> tuple[Path, Path]:
    """The environment's prefix in current and its python."""
    prefix = site.installation(site.current_name).env_prefix(env)
    return prefix, prefix / "bin" / "python"


def classify_imports(site: Site, env: Environment, failures: list[checks.CheckRun]) -> Triage:
    """Failed imports in qa: already-broken when every one of them fails with current's python too."""
    _, python = current_python(site, env.name)
    before = {run.name: checks.import_module(python, run.name, readonly=True) for run in failures}
    new = [run for run in failures if before[run.name].passed]
    if not new:
        names = ", ".join(run.name for run in failures)
        return triaged(ALREADY_BROKEN, env.name, f"import {names} fails in current too:\n"
                       + failures[0].tail(TAIL))
    run = new[0]
    if run.timed_out:
        return triaged(TIMEOUT, env.name, run.output.strip())
    old = [r.name for r in failures if r not in new]
    note = f"\n(already broken in current: {', '.join(old)})" if old else ""
    detail = f"import {run.name} failed in qa, works in current:\n{run.tail(TAIL)}{note}"
    return triaged(IMPORT_FAILED, env.name, detail)


def classify_owner_check(site: Site, env: Environment, check: Path, run: checks.CheckRun) -> Triage:
    """A failed owner check: already-broken when it fails with current's python too."""
    prefix, python = current_python(site, env.name)
    before = checks.run_owner_check(check, python, env.name, prefix, env.timeout, readonly=True)
    if not before.passed:
        outcome = "timed out" if run.timed_out else f"exited {run.returncode}"
        return triaged(ALREADY_BROKEN, env.name, f"{run.name} {outcome} in qa and fails in current too:\n"
                       + before.tail(TAIL))
    if run.timed_out:
        return triaged(TIMEOUT, env.name, f"{run.name} did not finish within {env.timeout:.0f}s in qa")
    return triaged(OWNER_CHECK_FAILED, env.name,
                   f"{run.name} exited {run.returncode} in qa, passes in current:\n{run.tail(TAIL)}")


def classify_versions(env: str, differences: list[str]) -> Triage:
    shown = differences[:5] + ([f"... and {len(differences) - 5} more"] if len(differences) > 5 else [])
    return triaged(VERSION_MISMATCH, env, "versions differ from current:\n" + "\n".join(shown))


TEST_CATEGORIES = {
    "test_builds": BUILD_FAILED,
    "test_versions_match_current": VERSION_MISMATCH,
    "test_key_packages_import": IMPORT_FAILED,
    "test_owner_check": OWNER_CHECK_FAILED,
}


def category_of_test(test_name: str) -> str:
    """The category of a failure that no triage recorded (an error inside the test itself)."""
    return TEST_CATEGORIES.get(test_name.split("[", 1)[0], BUILD_FAILED)

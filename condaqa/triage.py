"""Failure triage: one category and a remediation hint for every failed environment.

A build failure is classified from its BuildError (stage and message: condaqa's own words,
py-rattler's, or conda's error class as conda 4.3 to 25.x print it) and the preflight
findings; a check failure from what failed. A failing import or owner check is run again with
current's python, sandboxed: one that fails there too is `already-broken` — kept visible, but
not a regression of the migration — so owners see what the new installation broke and what
was broken before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from condaqa.checks.imports import import_module
from condaqa.checks.owner import run_owner_check
from condaqa.checks.runs import CheckRun
from condaqa.errors import BuildError
from condaqa.inputs import redact
from condaqa.kernels.launch import KernelRun
from condaqa.manifest import Environment
from condaqa.plan.findings import Finding, errors
from condaqa.sandbox.box import Sandbox
from condaqa.vocab import Category, Rule, Stage

OVERRIDE = "manifests/overrides/{env}.yml"
HINTS = {
    Category.MISSING_VERSION: "a pinned version is in none of the site's channels: pin one of the nearest versions in "
                              f"{OVERRIDE}, or add the pinned version to one of the site's channels",
    Category.UNSATISFIABLE: "the pins cannot be installed together in the new installation: change the conflicting "
                            f'pins in {OVERRIDE}, or set strategy = "history" for {{env}} in environments.toml',
    Category.PIP_FAILED: "pip could not install a requirement: make it available to pip_args (wheelhouse or index), "
                         f"or pin an available version in {OVERRIDE}",
    Category.VCS_UNREACHABLE: "the repository or source folder a package was installed from cannot be reached from "
                              f"the build host: make it reachable, or pin a released version in {OVERRIDE}",
    Category.POST_STEP_FAILED: "a post-create step failed (see the log): fix its requirement in "
                               f"{OVERRIDE}, or take the package out of manifests/legacy-noarch.txt",
    Category.IMPORT_FAILED: "a key module imports in current but not in qa: compare the traceback with current and "
                            f"fix the spec in {OVERRIDE}",
    Category.OWNER_CHECK_FAILED: "the owner's check passes in current but fails in qa: a regression of the "
                                 "migration; ask {owner}",
    Category.KERNEL_FAILED: "the kernel starts from current's spec but not as the cutover would leave it: read its "
                            "stderr, check that ipykernel is in the environment and the spec's env variables",
    Category.TIMEOUT: "it did not finish in time: raise timeout for {env} in environments.toml, or find what hangs in "
                      "the log",
    Category.PERMISSION: "the build could not write where it must: check the owner and group permissions of the qa "
                         "installation (qualification never writes under current)",
    Category.REFUSED: "condaqa would not build there (the message names the path and why): move away what is in "
                      "the way, or give --rebuild to replace a qa environment that condaqa did not build",
    Category.CURRENT_CHANGED: "a check, probe or kernel changed the installation in production while it ran: find "
                              "what writes there (the message names the file) and make it write elsewhere",
    Category.ALREADY_BROKEN: "it fails with current's python too: not caused by the migration; ask {owner} to fix "
                             "or drop the check or module",
    Category.VERSION_MISMATCH: f"qa resolved other versions than current has: pin them in {OVERRIDE}, or accept the "
                               "drift",
    Category.BUILD_FAILED: "the build failed for a reason triage does not recognise: read the message and the log",
}
CATEGORIES = tuple(HINTS)

_TIMEOUT = re.compile(r"did not finish within|did not answer within|timed out|TimeoutExpired", re.IGNORECASE)
_PERMISSION = re.compile(r"permission denied|\[Errno 13\]|os error 13|EACCES|read-only file system|\[Errno 30\]"
                         r"|os error 30|operation not permitted|NotWritableError", re.IGNORECASE)
_VCS = re.compile(r"\b(?:git|hg|svn|bzr) (?:clone|fetch|checkout|ls-remote)\b|Cloning |fatal: |"
                  r"Could not resolve host|Repository not found|does not appear to be a git repository")
_PIP_REQUIREMENT = re.compile(r"requirement (\S+)|distribution found for (\S+)|Invalid requirement: '([^']+)'|"
                              r"Failed building wheel for (\S+)|Cannot install (.+?) because")
# conda's PackagesNotFoundError (4.3 to 25.x) and py-rattler's solver both say a spec matches nothing at all.
_NOT_FOUND = re.compile(r"PackagesNotFoundError|ResolvePackageNotFound|PackageNotFoundError|No candidates were found")
# conda's error line (conda 4.3 to 25.x class names), and the line condaqa's engines put before it.
_CONDA_ERROR = re.compile(r"^[A-Z]\w*(?:Error|Exception|NotFound|MatchSpec):")
_LEAD = re.compile(r"^(?:the solver could not satisfy|conda (?:env )?(?:create|install)\b.* (?:failed|did not finish))")
HEADLINE = 300  # characters of a failure's first line in a verdict: a cell of the summary
_CONFLICT = re.compile(r"^Package (\S+) conflicts for:$")
TAIL = 15  # lines of a traceback or a check's output kept in the message


@dataclass(frozen=True)
class Triage:
    category: Category
    detail: str
    hint: str
    qa_tail: str = ""
    current_tail: str = ""

    def message(self) -> str:
        return f"[{self.category}] {self.detail}\nhint: {self.hint}"


def triaged(category: Category, env: str, detail: str, qa_tail: str = "", current_tail: str = "",
            owner: str = "") -> Triage:
    """A failure's category, hint and words, credentials redacted: they go to results, the summary and JUnit."""
    return Triage(category, redact(detail.strip()), hint(category, env, owner), redact(qa_tail), redact(current_tail))


def hint(category: Category, env: str, owner: str = "") -> str:
    """What to do about a failure of `env` in `category`, naming its owner where environments.toml does."""
    return HINTS[category].format(env=env, owner=f"its owner, {owner}" if owner else
                                  f"its owner (name one: owner in environments.toml [{env}])")


def headline(text: str, limit: int = HEADLINE) -> str:
    """The first line of `text`, at most `limit` characters, cut after a whole item or word ("...")."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    if len(first) <= limit:
        return first
    cut = first[:limit - 4]
    for mark in ("; ", ", ", " "):
        if mark in cut:
            return cut[:cut.rindex(mark)].rstrip(",;") + " ..."
    return cut + " ..."


def classify_build(env: str, error: BuildError, findings: Iterable[Finding] = ()) -> Triage:
    """The category of a failed build, from its stage, its message and the preflight findings."""
    text = str(error)
    if _TIMEOUT.search(text):
        return triaged(Category.TIMEOUT, env, _head(text))
    if error.stage is Stage.GUARD:
        return triaged(Category.REFUSED, env, _head(text))
    if error.stage is Stage.PERMISSION or _PERMISSION.search(text):
        return triaged(Category.PERMISSION, env, _matching_line(text, _PERMISSION))
    if error.stage is Stage.PREFLIGHT:
        return _preflight(env, text, errors(findings))
    if error.stage is Stage.SOLVE:
        detail = _solver_words(text)
        return triaged(Category.MISSING_VERSION if _NOT_FOUND.search(text) else Category.UNSATISFIABLE, env, detail)
    if error.stage in (Stage.PIP, Stage.POST_STEP) and _VCS.search(text):
        return triaged(Category.VCS_UNREACHABLE, env, _matching_line(text, _VCS))
    if error.stage is Stage.PIP:
        return triaged(Category.PIP_FAILED, env, _pip_detail(text))
    if error.stage is Stage.POST_STEP:
        return triaged(Category.POST_STEP_FAILED, env, _head(text, 8))
    return triaged(Category.BUILD_FAILED, env, f"at {error.stage}: {_solver_words(text)}")


def _solver_words(text: str) -> str:
    """The solver's own error, first: conda's `XError: ...` line with the packages it names folded in,
    so that a one-line summary still says which packages."""
    lines = [line for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not _LEAD.match(line)] or lines
    if lines and _CONDA_ERROR.match(lines[0]) and lines[0].rstrip().endswith(":"):
        named = _first_list(lines[1:]) or _conflicts(lines[1:])
        if named:
            return f"{lines[0].rstrip()} {named}\n" + "\n".join(lines[1:])
    return "\n".join(lines)


def _first_list(lines: list[str]) -> str:
    """The first `  - item` list of a conda error (the specs; later lists name channels)."""
    items: list[str] = []
    for line in lines:
        if line.strip().startswith("- "):
            items.append(line.strip()[2:])
        elif items:
            break
    return ", ".join(items)


def _conflicts(lines: list[str]) -> str:
    """conda 4.7+'s UnsatisfiableError: `Package NAME conflicts for:` and the chains under each."""
    groups: list[tuple[str, list[str]]] = []
    for line in (line.strip() for line in lines):
        header = _CONFLICT.match(line)
        if header:
            groups.append((header.group(1), []))
        elif groups and not line.endswith(":") and not line.startswith("Note that"):
            groups[-1][1].append(line)
    # conda 4.8 and 25.x list the groups in another order each run: sorted, a report changes only when they do
    return "; ".join(f"{name} ({', '.join(sorted(chains))})" for name, chains in sorted(groups))


def _preflight(env: str, text: str, stopped: list[Finding]) -> Triage:
    if stopped and all(f.rule is Rule.DIRECT_URL for f in stopped):
        return triaged(Category.VCS_UNREACHABLE, env, "; ".join(f"{f.package}: {f.reason}" for f in stopped))
    missing = [f for f in stopped if f.rule is Rule.MISSING_VERSION]
    if missing:
        return triaged(Category.MISSING_VERSION, env, "; ".join(f.reason for f in missing))
    if stopped:  # the findings' own words: what stopped it, naming the package and the source
        return triaged(Category.BUILD_FAILED, env, "; ".join(f"{f.package}: {f.reason}" for f in stopped))
    return triaged(Category.BUILD_FAILED, env, _head(text, 8))


def _pip_detail(text: str) -> str:
    """Which requirement and pip's own words, then the rest of what pip (and conda, when its
    `env create` ran pip) said."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("pip failed")
             and not _LEAD.match(line)]
    for number, line in enumerate(lines):
        match = _PIP_REQUIREMENT.search(line)
        if match:
            requirement = next(g for g in match.groups() if g)
            first = f"pip could not install {requirement}: {line.removeprefix('ERROR: ')}"
            return "\n".join([first, *lines[:number], *lines[number + 1:]])
    return "pip failed: " + " | ".join(lines[-3:])


def _head(text: str, lines: int = 4) -> str:
    return "\n".join(text.strip().splitlines()[:lines])


def _matching_line(text: str, pattern: re.Pattern[str]) -> str:
    return next((line.strip() for line in text.splitlines() if pattern.search(line)), _head(text))


def _current_python(sandbox: Sandbox, env: str) -> tuple[Path, Path]:
    prefix = sandbox.site.current_installation().env_prefix(env)
    return prefix, prefix / "bin" / "python"


def classify_imports(sandbox: Sandbox, env: Environment, failures: list[CheckRun]) -> Triage:
    """Failed imports in qa: already-broken when every one of them fails with current's python too."""
    changed = next((run for run in failures if run.current_changed), None)
    if changed is not None:
        return triaged(Category.CURRENT_CHANGED, env.name, changed.current_changed)
    _, python = _current_python(sandbox, env.name)
    before = {run.name: import_module(sandbox, env.name, python, run.name) for run in failures}
    changed = next((run for run in before.values() if run.current_changed), None)
    if changed is not None:
        return triaged(Category.CURRENT_CHANGED, env.name, changed.current_changed)
    new = [run for run in failures if before[run.name].passed]
    if not new:
        names = ", ".join(run.name for run in failures)
        return triaged(Category.ALREADY_BROKEN, env.name, f"import {names} fails in current too\n"
                       + failures[0].tail(TAIL), failures[0].tail(TAIL), before[failures[0].name].tail(TAIL),
                       owner=env.owner)
    run = new[0]
    if run.timed_out:
        return triaged(Category.TIMEOUT, env.name, run.output.strip(), run.tail(TAIL))
    old = [r.name for r in failures if r not in new]
    note = f"\n(already broken in current: {', '.join(old)})" if old else ""
    detail = f"import {run.name} failed in qa, works in current\n{run.tail(TAIL)}{note}"
    return triaged(Category.IMPORT_FAILED, env.name, detail, run.tail(TAIL))


def classify_owner_check(sandbox: Sandbox, env: Environment, check: Path, run: CheckRun) -> Triage:
    """A failed owner check: already-broken when it fails with current's python too."""
    if run.current_changed:
        return triaged(Category.CURRENT_CHANGED, env.name, run.current_changed, run.tail(TAIL))
    prefix, python = _current_python(sandbox, env.name)
    before = run_owner_check(sandbox, check, python, env.name, prefix, env.timeout)
    if before.current_changed:
        return triaged(Category.CURRENT_CHANGED, env.name, before.current_changed, run.tail(TAIL))
    qa_words, current_words = run.tail(TAIL), before.tail(TAIL)
    if not before.passed:
        outcome = "timed out" if run.timed_out else f"exited {run.returncode}"
        return triaged(Category.ALREADY_BROKEN, env.name, f"{run.name} {outcome} in qa and fails in current too\n"
                       f"{_said('qa', qa_words)}\n{_said('current', current_words)}", qa_words, current_words,
                       owner=env.owner)
    if run.timed_out:
        return triaged(Category.TIMEOUT, env.name, f"{run.name} did not finish within {env.timeout:.0f}s in qa\n"
                       f"{_said('qa', qa_words)}", qa_words, current_words)
    return triaged(Category.OWNER_CHECK_FAILED, env.name, f"{run.name} exited {run.returncode} in qa, passes in "
                   f"current\n{_said('qa', qa_words)}\n{_said('current', current_words)}", qa_words, current_words,
                   owner=env.owner)


def _said(where: str, words: str) -> str:
    """A check's own last lines, labelled, for the failure message and the summary."""
    if not words.strip():
        return f"{where} printed nothing"
    return f"{where} said:\n" + "\n".join(f"  {line}" for line in words.splitlines())


def classify_versions(env: str, differences: list[str]) -> Triage:
    shown = differences[:5] + ([f"... and {len(differences) - 5} more"] if len(differences) > 5 else [])
    return triaged(Category.VERSION_MISMATCH, env, "versions differ from current:\n" + "\n".join(shown))


def classify_kernel(env: Environment, qa: KernelRun, baseline: KernelRun | None, expected: str) -> Triage:
    """A kernel that did not start or import in qa: already-broken when current's spec fails the same way."""
    said = f"{_said('its stderr in qa', qa.stderr)}" if qa.stderr else "it printed nothing on stderr in qa"
    for run in (qa, baseline):
        if run is not None and run.current_changed:
            return triaged(Category.CURRENT_CHANGED, env.name, run.current_changed, qa.stderr)
    where = "" if qa.ok else qa.problem
    if qa.ok:
        where = f"it ran in {qa.prefix}, not in qa's environment {expected}"
    if baseline is not None and not baseline.ok:
        return triaged(Category.ALREADY_BROKEN, env.name, f"kernel {qa.kernel}: {where}; it fails from current's spec "
                       f"too: {baseline.problem}\n{said}", qa.stderr, baseline.stderr, owner=env.owner)
    category = Category.TIMEOUT if qa.timed_out else Category.KERNEL_FAILED
    return triaged(category, env.name, f"kernel {qa.kernel}: {where}, though it starts from current's spec\n{said}",
                   qa.stderr, baseline.stderr if baseline else "")

"""Every closed set of words condaqa uses, in one place, so a misspelt one is a type error.

The values are what users see and what the JSON files hold (results, findings, the audit
log), so they never change spelling; the names are what the code uses.
"""

from __future__ import annotations

import enum


class Word(str, enum.Enum):
    """A vocabulary member that reads, prints and serialises as its plain value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Stage(Word):
    """Where a build stopped."""

    GUARD = "guard"  # the target would be under current, a link out of the site, or not condaqa's
    PLAN = "plan"
    PREFLIGHT = "preflight"
    ENGINE = "engine"
    SOLVE = "solve"
    INSTALL = "install"
    POST_STEP = "post-step"
    PIP = "pip"
    PERMISSION = "permission"


class Category(Word):
    """Why an environment failed its qualification: one each, with a remediation hint (triage.py)."""

    MISSING_VERSION = "missing-version"
    UNSATISFIABLE = "unsatisfiable"
    PIP_FAILED = "pip-failed"
    VCS_UNREACHABLE = "vcs-unreachable"
    POST_STEP_FAILED = "post-step-failed"
    IMPORT_FAILED = "import-failed"
    OWNER_CHECK_FAILED = "owner-check-failed"
    KERNEL_FAILED = "kernel-failed"
    TIMEOUT = "timeout"
    PERMISSION = "permission"
    REFUSED = "refused"
    CURRENT_CHANGED = "current-changed"
    ALREADY_BROKEN = "already-broken"
    VERSION_MISMATCH = "version-mismatch"
    BUILD_FAILED = "build-failed"


class Rule(Word):
    """The sanitation rule (or planning step) that produced a Finding."""

    ENTRY_SYNTAX = "entry-syntax"
    PIP_SYNTAX = "pip-syntax"
    PIP_OPTIONS = "pip-options"
    LISTED_TWICE = "listed-twice"
    DIRECT_URL = "direct-url"
    NOARCH_IN_PIP = "noarch-in-pip"
    LEGACY_NOARCH = "legacy-noarch"
    MISSING_VERSION = "missing-version"
    CONDA_VERSION = "conda-version"
    OVERRIDE = "override"
    HISTORY = "history"
    EDITED_EXPORT = "edited-export"
    SPEC_KEYS = "spec-keys"
    LOCAL_SOURCE = "local-source"
    RESCUED = "rescued"  # a package the channels lost, taken from production into ROOT/rescue
    EXECUTABLES = "executables"  # the versions check: programs in current's bin/ that qa's lacks
    SOLVER = "solver"  # a failed solve: the solver's whole explanation, which the report's cell cuts after an item


class Severity(Word):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class Outcome(Word):
    """What one required check recorded."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


class Verdict(Word):
    """Where an environment stands for the cutover gate (qualification.py decides)."""

    PASSED = "passed"
    FAILED = "failed"
    PENDING = "pending"  # built (or building), its checks not run yet
    PARTIAL = "partial"  # some required checks ran, others did not
    STALE = "stale"  # the environment, or the set of checks it needs, changed since it was tested
    MISSING = "missing"  # it was qualified, but its prefix is gone
    NEVER = "never"  # no qualification recorded
    EXPORTED = "exported"  # export-only: its spec is written, nothing to qualify


class BuildState(Word):
    """Where the last build of an environment got to."""

    BUILDING = "building"  # started, and not (yet, or ever) finished
    BUILT = "built"
    FAILED = "failed"


class Disposition(Word):
    REPLICATE = "replicate"
    EXPORT = "export"


class Strategy(Word):
    PINS = "pins"
    HISTORY = "history"


class PlanSource(Word):
    """Which spec a plan was made from."""

    EXPORT = "export"
    OVERRIDE = "override"
    HISTORY = "history"
    FILE = "file"  # `condaqa sanitize` of an environment file from anywhere


class StepKind(Word):
    """A post-create step: a pip install (git, archive, folder) or one conda package on its own."""

    PIP = "pip"
    CONDA = "conda"


class QaLink(Word):
    """What a cutover or rollback does to the `qa` link."""

    REMOVE = "remove"
    KEEP = "keep"
    RESTORE = "restore"
    UNTOUCHED = "untouched"


class Action(Word):
    """The lines of the audit log."""

    NEW_INSTALLATION = "new-installation"
    QA = "qa"
    CUTOVER = "cutover"
    ROLLBACK = "rollback"
    FINALIZE = "finalize"  # the last cutover is kept for good: no rollback returns from it
    ABORT = "abort"
    RETIRE = "retire"


def counted(count: int, noun: str) -> str:
    """`count` and `noun` in words: 1 environment, 2 environments."""
    return f"{count} {noun}{'' if count == 1 else 's'}"

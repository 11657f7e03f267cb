"""Qualification as a fact of the library: the checks each environment needs, what each recorded
against which build, and the verdict the cutover gate, `condaqa status` and the summary read.

An environment's *required checks* come from the manifest, env_checks/ and the kernel specs,
exactly as the pytest plugin parametrizes its tests (it asks `required_checks`). Its result
(ROOT/.condaqa/results/<installation>/<env>.json) is about one build: a build that starts
marks it `building` before it touches the prefix; every check records its outcome with the
build id it ran against. It is `passed` only when every required check passed against the
build that is on disk now, unchanged; anything else is failed, pending, partial, stale or
missing, with a reason a person understands. The plugin and `condaqa replicate` record here;
neither decides what passing means.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from condaqa import atomic, locks
from condaqa.build.replicate import BuildResult, replicate
from condaqa.build.stamp import Stamp, fingerprint, read_stamp
from condaqa.checks.drift import history_drift
from condaqa.checks.owner import check_id, owner_checks, signature
from condaqa.errors import BuildError, ConfigError
from condaqa.kernels.specs import Kernel
from condaqa.manifest import Environment
from condaqa.plan.findings import load_findings, save_findings
from condaqa.prefix import read_prefix
from condaqa.site import Site
from condaqa.triage import Triage, classify_build
from condaqa.vocab import BuildState, Category, Disposition, Outcome, PlanSource, Verdict

BUILD, VERSIONS, IMPORTS, EXPORT = "build", "versions", "imports", "export"
OWNER, KERNEL = "owner:", "kernel:"


def owner_check(check: Path) -> str:
    return OWNER + check_id(check)


def kernel_check(kernel: Kernel) -> str:
    return KERNEL + kernel.name


def kernels_of(env: Environment, kernels: Sequence[Kernel]) -> list[Kernel]:
    """The kernel specs that run `env`: their interpreter lives in its prefix (through any link)."""
    return [k for k in kernels if k.environment == env.name]


def required_checks(site: Site, env: Environment, kernels: Sequence[Kernel]) -> dict[str, str]:
    """check id -> signature (which changes when what the check runs changes)."""
    if not env.replicate:
        return {EXPORT: ""}
    required = {BUILD: "", VERSIONS: "", IMPORTS: _digest(repr(env.imports))}
    for check in owner_checks(site, env.name):
        required[owner_check(check)] = signature(check)
    for kernel in kernels_of(env, kernels):
        required[kernel_check(kernel)] = kernel_signature(site, kernel)
    return required


def kernel_signature(site: Site, kernel: Kernel) -> str:
    """What a kernel test depends on: its argv and env, with the installation they name left out, so the
    rewrites of a cutover and its rollback do not make a tested kernel look new."""
    within = re.compile(re.escape(str(site.root)) + r"/[^/:\"]+")

    def abstract(value: str) -> str:
        return within.sub("ROOT/*", value)

    data = {"argv": [abstract(a) for a in kernel.argv], "env": {k: abstract(v) for k, v in sorted(kernel.env.items())}}
    return _digest(json.dumps(data, sort_keys=True))


def check_manifest(manifest: Sequence[Environment], kernels: Sequence[Kernel]) -> None:
    """environments.toml's `kernel = NAME` must name a kernel spec that runs that environment."""
    by_name = {k.name: k for k in kernels}
    for env in manifest:
        if not env.kernel:
            continue
        kernel = by_name.get(env.kernel.lower())
        where = env.where or f"environments.toml [{env.name}]"
        if kernel is None:
            known = ", ".join(sorted(by_name)) or "none"
            raise ConfigError(f"{where}: [{env.name}] kernel = {env.kernel[:80]!r} names no kernel spec of the site "
                              f"(known: {known})")
        if kernel.environment != env.name:
            raise ConfigError(f"{where}: [{env.name}] kernel = {env.kernel!r}, but {kernel.spec_file} runs "
                              f"{kernel.environment or kernel.interpreter}")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class CheckRecord:
    outcome: Outcome
    build_id: str
    signature: str
    at: str
    category: str = ""
    detail: str = ""
    qa_tail: str = ""  # the last lines of the check's own output in qa
    current_tail: str = ""  # and with current's python, when it was run there too
    seconds: float = 0.0
    started_in_current: bool | None = None  # a kernel check's baseline; None: not a kernel check, or not started


@dataclass
class BuildRecord:
    state: BuildState
    started: str
    build_id: str = ""
    digest: str = ""
    fingerprint: str = ""
    rebuilt: bool = False
    seconds: float = 0.0
    stage: str = ""
    category: str = ""
    error: str = ""


@dataclass
class Result:
    env: str
    installation: str
    disposition: Disposition
    owner: str = ""
    build: BuildRecord | None = None
    required: dict[str, str] = field(default_factory=dict)  # as of the last check that ran
    checks: dict[str, CheckRecord] = field(default_factory=dict)
    finding_count: int = 0
    override: bool = False
    updated: str = ""


def results_dir(site: Site, installation: str) -> Path:
    return site.state_dir / "results" / installation


def _path(site: Site, installation: str, env: str) -> Path:
    return results_dir(site, installation) / f"{env}.json"


def load(site: Site, installation: str, env: str) -> Result | None:
    try:
        data = json.loads(_path(site, installation, env).read_text(encoding="utf-8"))
        build = data.get("build")
        return Result(
            env=data["env"], installation=data["installation"], disposition=Disposition(data["disposition"]),
            owner=data.get("owner", ""),
            build=BuildRecord(**{**build, "state": BuildState(build["state"])}) if build else None,
            required=dict(data.get("required", {})),
            checks={k: CheckRecord(**{**v, "outcome": Outcome(v["outcome"])})
                    for k, v in data.get("checks", {}).items()},
            finding_count=int(data.get("finding_count", 0)), override=bool(data.get("override", False)),
            updated=data.get("updated", ""))
    except (OSError, ValueError, KeyError, TypeError):  # none, unreadable, or written by an older condaqa
        return None


def _save(site: Site, result: Result) -> None:
    result.updated = locks.now()
    atomic.write_text(_path(site, result.installation, result.env), json.dumps(asdict(result), indent=1) + "\n")


@contextlib.contextmanager
def _updating(site: Site, installation: str, env: Environment) -> Iterator[Result]:
    """The result of `env`, locked against other writers, saved when the block ends."""
    lock = results_dir(site, installation) / f".{env.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o664)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        result = load(site, installation, env.name) or Result(env.name, installation, env.disposition)
        result.owner, result.disposition = env.owner, env.disposition
        yield result
        _save(site, result)
    finally:
        os.close(fd)


def build(site: Site, env: Environment, kernels: Sequence[Kernel], *, rebuild: bool = False) -> BuildResult:
    """Build `env` in qa (build/replicate.py) and record what was built; a failed build records why."""
    installation = site.qa_installation().name
    started = locks.now()

    def invalidate() -> None:  # before anything under the prefix changes: no old `passed` survives a rebuild
        with _updating(site, installation, env) as result:
            result.build, result.checks = BuildRecord(BuildState.BUILDING, started), {}

    try:
        built = replicate(site, env, rebuild=rebuild, before_build=invalidate)
    except BuildError as exc:
        saved = load_findings(site, env.name)
        found = classify_build(env.name, exc, saved.findings if saved else ())
        with _updating(site, installation, env) as result:
            result.build = BuildRecord(BuildState.FAILED, started, stage=str(exc.stage), category=str(found.category),
                                       error=found.detail.strip().splitlines()[0][:300] if found.detail.strip() else "")
            result.checks = {BUILD: CheckRecord(Outcome.FAILED, "", "", locks.now(), str(found.category), found.detail)}
            _count_findings(site, result)
        raise
    if built.plan.source is PlanSource.HISTORY:
        built.findings = [*built.findings, *history_drift(env.name, read_prefix(
            site.current_installation().env_prefix(env.name)), read_prefix(built.prefix))]
        save_findings(site, env.name, built.plan, built.findings)
    record_build(site, installation, env, built.stamp, rebuilt=built.rebuilt, seconds=built.seconds, started=started)
    return built


def record_build(site: Site, installation: str, env: Environment, stamp: Stamp, *, rebuilt: bool, seconds: float,
                 started: str = "") -> None:
    """`env` is built in `installation` as `stamp` says: checks recorded against another build are dropped."""
    with _updating(site, installation, env) as result:
        old = result.build
        if rebuilt or old is None or old.build_id != stamp.build_id or old.state is not BuildState.BUILT:
            result.build = BuildRecord(BuildState.BUILT, started or locks.now(), stamp.build_id, stamp.digest,
                                       stamp.fingerprint, rebuilt, round(seconds, 3))
            result.checks = {k: v for k, v in result.checks.items() if v.build_id == stamp.build_id}
        result.checks[BUILD] = CheckRecord(Outcome.PASSED, stamp.build_id, "", locks.now())
        _count_findings(site, result)


def _count_findings(site: Site, result: Result) -> None:
    saved = load_findings(site, result.env)
    result.finding_count = len(saved.findings) if saved else 0
    result.override = bool(saved and saved.override)


def record(site: Site, installation: str, env: Environment, check: str, outcome: Outcome, *, build_id: str,
           required: dict[str, str], triage: Triage | None = None, qa_tail: str = "", current_tail: str = "",
           seconds: float = 0.0, started_in_current: bool | None = None) -> None:
    """One required check's outcome against build `build_id` (the plugin forwards each test's outcome).

    `required` is the set the run was collected with; it becomes the set later runs are compared to.
    """
    with _updating(site, installation, env) as result:
        result.checks[check] = CheckRecord(outcome, build_id, required.get(check, ""), locks.now(),
                                           str(triage.category) if triage else "", triage.detail if triage else "",
                                           qa_tail, current_tail, round(seconds, 3), started_in_current)
        if check != BUILD:
            result.required = dict(required)


@dataclass(frozen=True)
class Standing:
    """Where one environment stands, and why, in words for the gate and `condaqa status`."""

    env: str
    verdict: Verdict
    reason: str
    category: str = ""
    missing: tuple[str, ...] = ()


def standing(site: Site, installation: str, env: Environment, kernels: Sequence[Kernel]) -> Standing:
    """The verdict on `env` in `installation`, against the build that is on its disk now."""
    result = load(site, installation, env.name)
    required = required_checks(site, env, kernels)
    if result is None:
        return Standing(env.name, Verdict.NEVER, "never qualified")
    if not env.replicate:
        export = result.checks.get(EXPORT)
        if export is not None and export.outcome is Outcome.PASSED:
            return Standing(env.name, Verdict.EXPORTED, f"spec exported {export.at}")
        return Standing(env.name, Verdict.NEVER, "its spec was not exported by a qualification yet")
    return _judge(site, installation, env, result, required)


def _judge(site: Site, installation: str, env: Environment, result: Result, required: dict[str, str]) -> Standing:
    built = result.build
    if built is None:
        return Standing(env.name, Verdict.NEVER, "never built by a qualification")
    if built.state is BuildState.BUILDING:
        return Standing(env.name, Verdict.PENDING, f"a build started {built.started} never finished "
                        "(interrupted, failed without a word, or still running)")
    if built.state is BuildState.FAILED:
        return Standing(env.name, Verdict.FAILED, f"the build failed at {built.stage}: {built.error}", built.category)
    prefix = site.installation(installation).env_prefix(env.name)
    stamp = read_stamp(prefix)
    if stamp is None:
        return Standing(env.name, Verdict.MISSING, f"it passed its build, but {prefix} is gone or was replaced "
                        "by something condaqa did not build")
    if stamp.build_id != built.build_id:
        return Standing(env.name, Verdict.STALE, f"{prefix} was rebuilt since it was tested")
    if fingerprint(prefix) != built.fingerprint:
        return Standing(env.name, Verdict.STALE, f"{prefix} changed since it was built (a conda or pip install "
                        "into it, or files edited)")
    ran = {k: v for k, v in result.checks.items() if v.build_id == built.build_id}
    failed = [k for k in required if k in ran and ran[k].outcome is Outcome.FAILED]
    if failed:
        first = next((k for k in failed if ran[k].category != Category.ALREADY_BROKEN), failed[0])
        detail = ran[first].detail.strip().splitlines()[0][:300] if ran[first].detail.strip() else ""
        more = f" (and {len(failed) - 1} more failed)" if len(failed) > 1 else ""
        return Standing(env.name, Verdict.FAILED, f"{first} failed: {detail}{more}", ran[first].category)
    changed = [k for k in required if k in ran and ran[k].signature != required[k]]
    added = [k for k in required if k not in result.required] if result.required else []
    if changed or added:
        words = [f"{k} changed since it ran" for k in changed] + [f"{k} is new since the last run" for k in added]
        return Standing(env.name, Verdict.STALE, "; ".join(words), missing=tuple(changed + added))
    missing = tuple(k for k in required if k not in ran or ran[k].outcome is not Outcome.PASSED)
    if missing:
        skipped = [k for k in missing if k in ran]
        said = ", ".join(k for k in missing if k not in ran)
        said += ("; skipped: " if said and skipped else "skipped: " if skipped else "") + ", ".join(skipped)
        if set(missing) == set(required) - {BUILD}:
            return Standing(env.name, Verdict.PENDING, f"built, but its checks have not run ({said})", missing=missing)
        return Standing(env.name, Verdict.PARTIAL, f"checks that did not pass or run: {said}", missing=missing)
    return Standing(env.name, Verdict.PASSED, f"{len(required)} required checks passed against build "
                    f"{built.build_id[:12]}")


def first_failure(result: Result | None) -> CheckRecord | None:
    """The failed check the summary shows: a regression before old breakage."""
    failed = [c for c in result.checks.values() if c.outcome is Outcome.FAILED] if result else []
    return next((c for c in failed if c.category != Category.ALREADY_BROKEN), failed[0] if failed else None)

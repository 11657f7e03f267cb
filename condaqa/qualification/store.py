"""The result store: what each check recorded, against which build, signed so that only condaqa writes it.

A result (ROOT/.condaqa/results/<installation>/<env>.json) is about one build: a build that
starts marks it `building` before it touches the prefix; every check records its outcome with
the build id it ran against, the signature of what it ran, the digest of the environment's
manifest entry and condaqa's version. The folder lies in condaqa's state, which no sandboxed
process can see, let alone write; and each file carries an HMAC made with a key that only the
site's administrators can read (ROOT/.condaqa/results.key, mode 0600, made on first use). A file
edited by hand, written by an older condaqa or signed with another key does not verify, and
counts as no result at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from condaqa import atomic, locks
from condaqa.manifest import Environment
from condaqa.plan.findings import findings_path, load_findings
from condaqa.qualification.required import BUILD, entry_digest
from condaqa.replication.stamp import Stamp
from condaqa.site import Site
from condaqa.triage import Triage, headline
from condaqa.version import VERSION
from condaqa.vocab import BuildState, Disposition, Outcome


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
    entry: str = ""  # the digest of the environment's manifest entry it ran under
    condaqa: str = ""  # the version of condaqa that ran it
    host: str = ""  # where it ran (results of every host of a sharded run read alike)


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
    host: str = ""


@dataclass
class Claim:
    """A qualification run that has collected the environment and not yet finished all its tests: while it
    stands the environment is `pending`, so a run (or one shard of it) killed midway never leaves an old
    `passed` behind for what it did not finish."""

    run: str  # "pytest", "pytest --shard 2/3"
    host: str
    pid: int
    since: str


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
    findings_file: str = ""  # where the build's findings were written: `condaqa report` may run from elsewhere
    claim: Claim | None = None


class Unverified(Exception):
    """A results file that condaqa cannot vouch for; the message says why."""


def results_dir(site: Site, installation: str) -> Path:
    return site.state_dir / "results" / installation


def _path(site: Site, installation: str, env: str) -> Path:
    return results_dir(site, installation) / f"{env}.json"


def key_file(site: Site) -> Path:
    return site.state_dir / "results.key"


def _key(site: Site, *, create: bool) -> bytes:
    """The site's results key; made (readable by its maker alone) on first use when `create`."""
    path = key_file(site)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        if not create:
            raise Unverified(f"{path} does not exist: no result was ever signed here") from None
    except OSError as exc:
        raise Unverified(f"{path} is not readable by you ({exc.strerror}): run as a site administrator") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    made = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(made, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(32))
    try:
        os.link(made, path)  # atomic, and never over a key another process made first
    except FileExistsError:
        pass
    finally:
        os.unlink(made)
    return path.read_bytes()


def _mac(key: bytes, data: object) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def load_verified(site: Site, installation: str, env: str) -> Result | None:
    """The result of `env` in `installation`, None if there is none; Unverified if it does not verify."""
    path = _path(site, installation, env)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise Unverified(f"{path} is not readable by you ({exc.strerror})") from None
    try:
        signed = json.loads(text)
        data, mac = signed["result"], signed["mac"]
    except (ValueError, TypeError, KeyError):
        raise Unverified(f"{path} is not a signed result (written by hand, or by an older condaqa)") from None
    if not hmac.compare_digest(str(mac), _mac(_key(site, create=False), data)):
        raise Unverified(f"{path} does not verify: it was changed outside condaqa, or signed with another "
                         f"key than {key_file(site)}")
    try:
        return _result(data)
    except (ValueError, KeyError, TypeError):
        raise Unverified(f"{path} verifies but cannot be read by this condaqa") from None


def load(site: Site, installation: str, env: str) -> Result | None:
    """The result, or None if there is none or it does not verify (the verdict says which)."""
    try:
        return load_verified(site, installation, env)
    except Unverified:
        return None


def _result(data: dict[str, object]) -> Result:
    build, claim = data.get("build"), data.get("claim")
    checks = data.get("checks", {})
    if not isinstance(checks, dict) or (build is not None and not isinstance(build, dict)) or \
            (claim is not None and not isinstance(claim, dict)):
        raise TypeError("malformed result")
    return Result(
        env=str(data["env"]), installation=str(data["installation"]),
        disposition=Disposition(data["disposition"]), owner=str(data.get("owner", "")),
        build=BuildRecord(**{**build, "state": BuildState(build["state"])}) if build else None,
        required=dict(data.get("required", {})),  # type: ignore[call-overload]
        checks={k: CheckRecord(**{**v, "outcome": Outcome(v["outcome"])}) for k, v in checks.items()},
        finding_count=int(data.get("finding_count", 0)),  # type: ignore[call-overload]
        override=bool(data.get("override", False)), updated=str(data.get("updated", "")),
        findings_file=str(data.get("findings_file", "")),
        claim=Claim(**claim) if claim else None)


def _save(site: Site, result: Result) -> None:
    result.updated = locks.now()
    data = asdict(result)
    signed = {"result": data, "mac": _mac(_key(site, create=True), data)}
    atomic.write_text(_path(site, result.installation, result.env), json.dumps(signed, indent=1) + "\n")


@contextlib.contextmanager
def updating(site: Site, installation: str, env: Environment) -> Iterator[Result]:
    """The result of `env`, locked against other writers, saved (signed) when the block ends; one that does
    not verify is started afresh."""
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


def invalidate(site: Site, installation: str, env: Environment, started: str) -> None:
    """A build of `env` starts: before anything under its prefix changes, no old `passed` survives."""
    with updating(site, installation, env) as result:
        result.build, result.checks = BuildRecord(BuildState.BUILDING, started, host=locks.host()), {}


def record_failed_build(site: Site, installation: str, env: Environment, started: str, stage: str,
                        found: Triage, *, seconds: float = 0.0) -> None:
    detail = found.detail.strip()
    with updating(site, installation, env) as result:
        result.build = BuildRecord(BuildState.FAILED, started, seconds=round(seconds, 3), stage=stage,
                                   category=str(found.category), error=headline(detail), host=locks.host())
        result.checks = {BUILD: _check(env, Outcome.FAILED, "", "", str(found.category), found.detail)}
        _count_findings(site, result)


def record_build(site: Site, installation: str, env: Environment, stamp: Stamp, *, rebuilt: bool, seconds: float,
                 started: str = "") -> None:
    """`env` is built in `installation` as `stamp` says: checks recorded against another build are dropped."""
    with updating(site, installation, env) as result:
        old = result.build
        if rebuilt or old is None or old.build_id != stamp.build_id or old.state is not BuildState.BUILT:
            result.build = BuildRecord(BuildState.BUILT, started or locks.now(), stamp.build_id, stamp.digest,
                                       stamp.fingerprint, rebuilt, round(seconds, 3), host=locks.host())
            result.checks = {k: v for k, v in result.checks.items() if v.build_id == stamp.build_id}
        result.checks[BUILD] = _check(env, Outcome.PASSED, stamp.build_id, "")
        _count_findings(site, result)


def _check(env: Environment, outcome: Outcome, build_id: str, signature: str, category: str = "",
           detail: str = "") -> CheckRecord:
    return CheckRecord(outcome, build_id, signature, locks.now(), category, detail, entry=entry_digest(env),
                       condaqa=VERSION, host=locks.host())


def _count_findings(site: Site, result: Result) -> None:
    saved = load_findings(site, result.env)
    result.finding_count = len(saved.findings) if saved else 0
    result.override = bool(saved and saved.override)
    result.findings_file = str(findings_path(site, result.env)) if saved else ""


def record(site: Site, installation: str, env: Environment, check: str, outcome: Outcome, *, build_id: str,
           required: dict[str, str], triage: Triage | None = None, qa_tail: str = "", current_tail: str = "",
           seconds: float = 0.0, started_in_current: bool | None = None) -> None:
    """One required check's outcome against build `build_id` (the plugin forwards each test's outcome).

    `required` is the set the run was collected with; it becomes the set later runs are compared to.
    """
    with updating(site, installation, env) as result:
        made = _check(env, outcome, build_id, required.get(check, ""), str(triage.category) if triage else "",
                      triage.detail if triage else "")
        made.qa_tail, made.current_tail, made.seconds = qa_tail, current_tail, round(seconds, 3)
        made.started_in_current = started_in_current
        result.checks[check] = made
        if check != BUILD:
            result.required = dict(required)


def claim(site: Site, installation: str, envs: list[Environment], run: str) -> None:
    """This process starts qualifying `envs`: each is `pending` until `release` says all its tests ran."""
    made = Claim(run, locks.host(), os.getpid(), locks.now())
    for env in envs:
        with updating(site, installation, env) as result:
            result.claim = made


def release(site: Site, installation: str, env: Environment) -> None:
    """Every test of `env` in this run has reported: its verdict is its checks' again (a claim another process
    made since is left to it)."""
    with updating(site, installation, env) as result:
        if result.claim is not None and (result.claim.host, result.claim.pid) == (locks.host(), os.getpid()):
            result.claim = None

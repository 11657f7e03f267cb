"""Where an environment stands: the one verdict that the gate, `condaqa status` and the summary read.

An environment is `passed` only when its result verifies (store.py) and every required check
passed against the build that is on disk now, unchanged to the byte, with the signature of
what it ran, the environment's manifest entry and condaqa's version all as they are now.
Anything else is failed, pending, partial, stale, missing or never, with a reason in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from condaqa.kernels.specs import Kernel
from condaqa.locks import alive, host
from condaqa.manifest import Environment
from condaqa.qualification.required import BUILD, EXPORT, entry_digest, required_checks
from condaqa.qualification.store import CheckRecord, Claim, Result, Unverified, load_verified
from condaqa.replication.stamp import env_fingerprint, read_stamp
from condaqa.site import Site
from condaqa.triage import headline
from condaqa.version import VERSION
from condaqa.vocab import BuildState, Category, Outcome, Verdict


@dataclass(frozen=True)
class Standing:
    """Where one environment stands, and why, in words for the gate and `condaqa status`."""

    env: str
    verdict: Verdict
    reason: str
    category: str = ""
    missing: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()  # (check, category) of each failed check, for waivers.py


def standing(site: Site, installation: str, env: Environment, kernels: Sequence[Kernel]) -> Standing:
    """The verdict on `env` in `installation`, against the build that is on its disk now."""
    try:
        result = load_verified(site, installation, env.name)
    except Unverified as exc:
        return Standing(env.name, Verdict.NEVER, f"no result condaqa can trust: {exc}")
    if result is None:
        return Standing(env.name, Verdict.NEVER, "never qualified")
    if result.claim is not None and env.replicate:
        found = _judge(site, installation, env, result, required_checks(site, env, kernels, installation))
        return Standing(env.name, Verdict.PENDING, f"{_claimed(result.claim)}; so far: {found.reason}",
                        missing=found.missing)
    if result.claim is not None:
        return Standing(env.name, Verdict.PENDING, _claimed(result.claim))
    if not env.replicate:
        export = result.checks.get(EXPORT)
        if export is not None and export.outcome is Outcome.PASSED:
            return Standing(env.name, Verdict.EXPORTED, f"spec exported {export.at}")
        return Standing(env.name, Verdict.NEVER, "its spec was not exported by a qualification yet")
    return _judge(site, installation, env, result, required_checks(site, env, kernels, installation))


def _claimed(claim: Claim) -> str:
    """A run collected the environment and has not finished its tests: running, or killed midway."""
    where = f"{claim.run!r} on host {claim.host} (pid {claim.pid}, since {claim.since})"
    if claim.host == host() and not alive(claim.pid):
        return f"{where} was interrupted before all its tests ran: run them again"
    return f"being qualified by {where}; if it no longer runs there, it was interrupted: run its tests again"


def _judge(site: Site, installation: str, env: Environment, result: Result, required: dict[str, str]) -> Standing:
    built = result.build
    if built is None:
        return Standing(env.name, Verdict.NEVER, "never built by a qualification")
    if built.state is BuildState.BUILDING:
        return Standing(env.name, Verdict.PENDING, f"a build started {built.started} never finished "
                        "(interrupted, failed without a word, or still running)")
    if built.state is BuildState.FAILED:
        return Standing(env.name, Verdict.FAILED, f"the build failed at {built.stage}: {built.error}", built.category,
                        failed=((BUILD, built.category),))
    prefix = site.installation(installation).env_prefix(env.name)
    stamp = read_stamp(prefix)
    if stamp is None:
        return Standing(env.name, Verdict.MISSING, f"it passed its build, but {prefix} is gone or was replaced "
                        "by something condaqa did not build")
    if stamp.build_id != built.build_id:
        return Standing(env.name, Verdict.STALE, f"{prefix} was rebuilt since it was tested")
    if env_fingerprint(prefix, site.state_dir) != built.fingerprint:
        return Standing(env.name, Verdict.STALE, f"{prefix} changed since it was built (a conda or pip install "
                        "into it, or files edited)")
    ran = {k: v for k, v in result.checks.items() if v.build_id == built.build_id}
    failed = [k for k in required if k in ran and ran[k].outcome is Outcome.FAILED]
    if failed:
        first = next((k for k in failed if ran[k].category != Category.ALREADY_BROKEN), failed[0])
        detail = headline(ran[first].detail)
        more = f" (and {len(failed) - 1} more failed)" if len(failed) > 1 else ""
        return Standing(env.name, Verdict.FAILED, f"{failed_words(first, detail)}{more}", ran[first].category,
                        failed=tuple((k, ran[k].category) for k in failed))
    changed = _changed(env, ran, required, result)
    if changed:
        return Standing(env.name, Verdict.STALE, "; ".join(changed.values()), missing=tuple(changed))
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


def _changed(env: Environment, ran: dict[str, CheckRecord], required: dict[str, str], result: Result) -> dict[str, str]:
    """check id -> what changed since it ran, in words (the check's code or spec, the manifest entry,
    condaqa itself), for each required check that ran against another state than today's."""
    entry = entry_digest(env)
    found = {}
    for k in required:
        check = ran.get(k)
        if check is None:
            if result.required and k not in result.required:
                found[k] = f"{k} is new since the last run"
        elif check.condaqa != VERSION:
            found[k] = f"{k} ran with condaqa {check.condaqa or 'unknown'}, this is {VERSION}"
        elif check.entry != entry:
            found[k] = f"{k} ran before {env.name}'s entry in the manifest (environments.ini/.toml) changed"
        elif check.signature != required[k]:
            found[k] = f"{k} changed since it ran"
    return found


def first_failure(result: Result | None) -> CheckRecord | None:
    """The failed check the summary shows: a regression before old breakage."""
    failed = [c for c in result.checks.values() if c.outcome is Outcome.FAILED] if result else []
    return next((c for c in failed if c.category != Category.ALREADY_BROKEN), failed[0] if failed else None)


def failed_words(check: str, detail: str) -> str:
    """"CHECK failed: DETAIL", or "CHECK DETAIL" when the detail starts by naming what ran (an owner check's
    "x/check.py exited 3"), so the first-error cell says it once."""
    subject = check.partition(":")[2]
    if subject and detail.startswith(f"{subject} "):
        return f"{check} {detail.removeprefix(subject).lstrip()}"
    return f"{check} failed: {detail}"

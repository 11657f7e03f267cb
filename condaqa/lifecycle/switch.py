"""Cutover and rollback: switch `current` by one atomic symlink swap, undoably, one at a time;
and finalize, which keeps the last cutover for good so that the installation it left can be retired.

Each action is a fixed sequence of named steps. Before its first change it saves its intent in
the journal (lifecycle/journal.py), which settles an intent left by a dead process the next time
the site lock is taken: finished if `current` was already swapped, undone if not. So `current` always
names a complete installation and the audit log agrees with it. No qualification of either
installation may run meanwhile (locks.no_qualification). Nothing is ever deleted here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from condaqa import locks
from condaqa.checks.executables import missing_executables
from condaqa.errors import CutoverError
from condaqa.inputs import guard
from condaqa.kernels.specs import find_kernels, names_installation, writable_roots
from condaqa.lifecycle import audit, inuse, journal, readiness
from condaqa.lifecycle.gate import gate
from condaqa.site import Installation, Site
from condaqa.vocab import Action, QaLink

CUTOVER_STEPS = ("lock", "gate", "intent", "kernel", "kernels", "swap", "qa", "audit", "done")
ROLLBACK_STEPS = ("lock", "intent", "kernel", "kernels", "swap", "qa", "audit", "done")


class GateRefused(CutoverError):
    """The installation is not qualified: the message lists every environment that failed."""

    exit_code = 1

    def __init__(self, installation: str, failures: list[str]) -> None:
        lines = "\n".join(f"  - {f}" for f in failures)
        super().__init__(
            f"cutover to {installation} refused, {len(failures)} problem(s):\n{lines}\n"
            "qualify it (pytest -n auto), or override with --force --reason TEXT"
        )
        self.failures = failures


@dataclass(frozen=True)
class Outcome:
    intent: journal.Intent
    warnings: list[str]
    notes: list[str]  # what the lock and recovery found left over from a crashed action


def cutover(
    site: Site,
    to: str | None = None,
    *,
    force: bool = False,
    reason: str = "",
    keep_qa: bool = False,
    command: str = "condaqa cutover",
) -> Outcome:
    """Switch `current` to `to` (default: what `qa` points to) if the gate passes or is forced."""
    if force and not reason.strip():
        raise CutoverError("--force needs --reason TEXT: an override is recorded in the audit log")
    journal.current_target(site)
    with journal.locked(site, command) as notes:
        journal.reached("lock")
        old, new = _installation(site, journal.current_target(site)), _installation(site, _target(site, to))
        if old.name == new.name:
            raise CutoverError(f"{site.current_link} already points to {new.name}")
        with locks.no_qualification(site, (old.name, new.name), f"cut over to {new.name}"):
            seen = assess(site, old, new, keep_qa=keep_qa)
            if seen.failures and not force:
                raise GateRefused(new.name, seen.failures)
            journal.reached("gate")
            intent = _intent(Action.CUTOVER, old, new, seen.kernels, seen.qa, force, reason, seen.failures)
            intent.environments_leaving, intent.executables_leaving = seen.leaving, seen.executables_leaving
            intent.waivers = seen.waived
            return Outcome(_run(site, intent), seen.warnings, notes)


@dataclass(frozen=True)
class Assessment:
    """What a cutover from `old` to `new` would find and do, before it changes anything."""

    old: Installation
    new: Installation
    failures: list[str]  # the gate's and readiness's problems: the cutover refuses unless forced
    warnings: list[str]
    kernels: list[dict[str, str]]  # the kernel specs it would rewrite
    qa: QaLink
    leaving: list[str]  # environments of current that the new installation does not hold
    executables_leaving: dict[str, list[str]]  # environment -> what its bin/ holds in old and not in new
    waived: list[str]  # failures the gate lets through because a waiver covers them


def assess(site: Site, old: Installation, new: Installation, *, keep_qa: bool = False) -> Assessment:
    judged = gate(site, new.name)
    gone, programs = leaving(old, new)
    busy = inuse.in_use(site, old, new, gone)
    failures = judged.problems + readiness.readability_problems(old, new) + busy.problems
    qa_points_here = site.link_target(site.qa_name) == new.name
    warnings = readiness.group_warnings(old, new) + busy.warnings
    warnings += readiness.prefix_references(site, old, new, qa_goes=qa_points_here and not keep_qa)
    kernels = [
        _change(guard(k.spec_file, writable_roots(site), "rewrite the kernel spec"), old.path, new.path)
        for k in find_kernels(site)
        if names_installation(k.spec_file, old.path)
    ]
    qa = (QaLink.KEEP if keep_qa else QaLink.REMOVE) if qa_points_here else QaLink.UNTOUCHED
    return Assessment(old, new, failures, warnings, kernels, qa, gone, programs, judged.waived)


def leaving(old: Installation, new: Installation) -> tuple[list[str], dict[str, list[str]]]:
    """What leaves `current` when it moves from `old` to `new`: whole environments (export-only ones, and any
    not rebuilt), and the executables users call by path from the environments that stay."""
    stay = set(new.environments())
    gone = sorted(set(old.environments()) - stay)
    programs = {env: names for env in sorted(stay & set(old.environments()))
                if (names := missing_executables(old.env_prefix(env), new.env_prefix(env)))}
    return gone, programs


def preview(site: Site, to: str | None = None, *, keep_qa: bool = False) -> Assessment:
    """What `cutover` would do now, changing nothing (`condaqa cutover --dry-run`)."""
    old, new = _installation(site, journal.current_target(site)), _installation(site, _target(site, to))
    if old.name == new.name:
        raise CutoverError(f"{site.current_link} already points to {new.name}")
    return assess(site, old, new, keep_qa=keep_qa)


def nothing_to_cut_over(site: Site) -> str:
    """Why `qa` names no cutover to make (absent, or on the installation current points to), or "" if it does."""
    qa, current = site.link_target(site.qa_name), site.link_target(site.current_name)
    if qa is None:
        return f"{site.qa_link} is absent"
    return f"{site.qa_link} points to {qa}, as {site.current_link} does" if qa == current else ""


def rollback(site: Site, *, reason: str = "", command: str = "condaqa rollback") -> Outcome:
    """Switch `current` back to where it pointed before the last cutover, restoring kernel specs."""
    journal.current_target(site)
    with journal.locked(site, command) as notes:
        journal.reached("lock")
        last, current = audit.last_cutover(site), journal.current_target(site)
        if last is None:
            raise CutoverError(f"{audit.log_file(site)}: no cutover recorded, so there is nothing to roll back")
        closed = audit.finalized(site)
        if closed is not None:
            raise CutoverError(f"{_finalized_words(last, closed)}: there is no rollback point; to go back, cut over "
                               f"to it (`condaqa cutover --to {last['from']}`)")
        if last["from"] == current:
            when = last["time"]
            raise CutoverError(f"{site.current_link} already points to {current}, as before the last cutover ({when})")
        if last["to"] != current:
            raise CutoverError(
                f"{site.current_link} points to {current}, but the last cutover went to {last['to']}: "
                "it was changed outside condaqa; set it by hand"
            )
        old, new = _installation(site, current), _installation(site, last["from"])
        with locks.no_qualification(site, (old.name, new.name), f"roll back to {new.name}"):
            kernels = [_change(Path(k["spec"]), Path(k["to"]), Path(k["from"])) for k in last.get("kernels", [])]
            qa = QaLink.RESTORE if not site.qa_link.is_symlink() else QaLink.UNTOUCHED
            intent = _intent(Action.ROLLBACK, old, new, kernels, qa, False, reason, [])
            intent.environments_leaving, intent.executables_leaving = leaving(old, new)
            warnings = [f"{site.qa_link} points to {new.name}, where {site.current_link} now points too: point qa at "
                        "the installation to qualify next (`condaqa qa NAME`) before the next qualification"
                        ] if site.link_target(site.qa_name) == new.name else []
            return Outcome(_run(site, intent), warnings, notes)


def finalize(site: Site, *, reason: str = "", command: str = "condaqa finalize") -> tuple[dict[str, object], list[str]]:
    """Keep the last cutover for good: rollback no longer returns from it, so `retire` may delete the
    installation it left. Changes nothing on disk but the audit log; returns its line and the lock's notes."""
    journal.current_target(site)
    with journal.locked(site, command) as notes:
        last, current = audit.last_cutover(site), journal.current_target(site)
        if last is None:
            raise CutoverError(f"{audit.log_file(site)}: no cutover recorded, so there is nothing to finalize")
        closed = audit.finalized(site)
        if closed is not None:
            raise CutoverError(f"{_finalized_words(last, closed)}: nothing to finalize")
        if last["to"] != current:
            raise CutoverError(f"{site.current_link} points to {current}, not to {last['to']} where the last cutover "
                               "went (it was rolled back): nothing to finalize")
        record = audit.append(site, {"action": Action.FINALIZE, "cutover": last.get("id", ""), "from": last["from"],
                                     "to": last["to"], "reason": reason.strip()})
        return record, notes


def _finalized_words(cutover: dict[str, object], closed: dict[str, object]) -> str:
    return (f"the cutover {cutover['from']} -> {cutover['to']} was finalized {closed.get('time', '?')} by "
            f"{closed.get('user', '?')}")


def _run(site: Site, intent: journal.Intent) -> journal.Intent:
    journal.save(site, intent)
    journal.reached("intent")
    try:
        journal.apply(site, intent, recovered=False)
    except Exception as exc:
        if journal.current_target(site) != intent.old:
            raise CutoverError(
                f"{intent.action} switched {site.current_link} to {intent.new} but could not finish ({exc}); "
                "the next condaqa cutover, rollback or retire completes it"
            ) from exc
        journal.undo(site, intent, f"failed: {exc}")
        raise CutoverError(f"{intent.action} {intent.old} -> {intent.new} failed and was undone: {exc}") from exc
    return intent


def _intent(
    action: Action,
    old: Installation,
    new: Installation,
    kernels: list[dict[str, str]],
    qa: QaLink,
    forced: bool,
    reason: str,
    failures: list[str],
) -> journal.Intent:
    who = locks.identity()
    by = f"{who['user']}@{who['host']} pid {who['pid']} at {locks.now()}"
    return journal.Intent(uuid.uuid4().hex, action, old.name, new.name, kernels, qa, forced, reason.strip(), failures,
                          by)


def _change(spec: Path, old: Path, new: Path) -> dict[str, str]:
    return {"spec": str(spec), "from": str(old), "to": str(new)}


def _target(site: Site, to: str | None) -> str:
    name = to or site.qa_name
    if name in (site.current_name, site.qa_name):
        target = site.link_target(name)
        if target is None:
            raise CutoverError(f"{site.root / name} does not exist; name the installation with --to")
        return target
    return name


def _installation(site: Site, name: str) -> Installation:
    path = site.root / name
    if "/" in name or name.startswith(".") or path.is_symlink():
        raise CutoverError(f"{path}: not an installation folder under {site.root}")
    if not ((path / "conda-meta").is_dir() and (path / "envs").is_dir()):
        raise CutoverError(f"{path}: not a complete installation (it needs conda-meta/ and envs/)")
    return Installation(name, path)

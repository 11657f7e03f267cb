"""Cutover and rollback: switch `current` by one atomic symlink swap, undoably, one at a time.

Each action is a fixed sequence of named steps. Before its first change it writes its intent
to ROOT/.condaqa/intent.json; the next command to take the site lock settles an intent left by
a dead process: finished if `current` was already swapped, undone if not. So `current` always
names a complete installation and the audit log agrees with it. No qualification of either
installation may run meanwhile (locks.no_qualification). Nothing is ever deleted here.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from condaqa import atomic, locks
from condaqa.errors import CutoverError
from condaqa.inputs import guard
from condaqa.kernels.specs import find_kernels, names_installation, rewrite_kernel, writable_roots
from condaqa.lifecycle import audit, readiness
from condaqa.lifecycle.gate import gate
from condaqa.site import Installation, Site
from condaqa.vocab import Action, QaLink

CRASH_ENV = "CONDAQA_CRASH_AFTER"
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


@dataclass
class Intent:
    """What a cutover or rollback is about to do, saved before its first change."""

    id: str
    action: Action
    old: str
    new: str
    kernels: list[dict[str, str]]  # {"spec", "from", "to"}: installation paths swapped in a spec
    qa: QaLink
    forced: bool = False
    reason: str = ""
    gate_failures: list[str] = field(default_factory=list)
    started_by: str = ""

    def record(self, recovered: bool) -> dict[str, object]:
        """The audit line of the finished action."""
        fields = asdict(self)
        moved = {"action": fields.pop("action"), "from": fields.pop("old"), "to": fields.pop("new")}
        return {**moved, **fields, "recovered": recovered}


@dataclass(frozen=True)
class Outcome:
    intent: Intent
    warnings: list[str]
    notes: list[str]  # what the lock and recovery found left over from a crashed action


@contextlib.contextmanager
def locked(site: Site, command: str) -> Iterator[list[str]]:
    """The site lock, with whatever a killed cutover or rollback left behind settled first."""
    with locks.site_lock(site, command) as stale:
        yield ([stale] if stale else []) + recover(site)


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
    _current(site)
    with locked(site, command) as notes:
        _reached("lock")
        old, new = _installation(site, _current(site)), _installation(site, _target(site, to))
        if old.name == new.name:
            raise CutoverError(f"{site.current_link} already points to {new.name}")
        with locks.no_qualification(site, (old.name, new.name), f"cut over to {new.name}"):
            failures = gate(site, new.name) + readiness.readability_problems(old, new)
            if failures and not force:
                raise GateRefused(new.name, failures)
            qa_points_here = site.link_target(site.qa_name) == new.name
            warnings = readiness.group_warnings(old, new)
            warnings += readiness.prefix_references(site, old, new, qa_goes=qa_points_here and not keep_qa)
            _reached("gate")
            kernels = [
                _change(guard(k.spec_file, writable_roots(site), "rewrite the kernel spec"), old.path, new.path)
                for k in find_kernels(site)
                if names_installation(k.spec_file, old.path)
            ]
            qa = (QaLink.KEEP if keep_qa else QaLink.REMOVE) if qa_points_here else QaLink.UNTOUCHED
            intent = _intent(Action.CUTOVER, old, new, kernels, qa, force, reason, failures)
            return Outcome(_run(site, intent), warnings, notes)


def rollback(site: Site, *, reason: str = "", command: str = "condaqa rollback") -> Outcome:
    """Switch `current` back to where it pointed before the last cutover, restoring kernel specs."""
    _current(site)
    with locked(site, command) as notes:
        _reached("lock")
        last, current = audit.last_cutover(site), _current(site)
        if last is None:
            raise CutoverError(f"{audit.log_file(site)}: no cutover recorded, so there is nothing to roll back")
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
            return Outcome(_run(site, intent), [], notes)


def recover(site: Site) -> list[str]:
    """Settle what a killed cutover or rollback left: temporary links and an unfinished intent.

    The caller holds the site lock. Returns one note per thing it cleaned or settled.
    """
    notes = []
    for link in _temporary_links(site):
        link.unlink()
        notes.append(f"removed the temporary link {link}")
    intent = _load_intent(site)
    if intent is None:
        return notes
    current = _current(site)
    if current == intent.new:
        _apply(site, intent, recovered=True)
        notes.append(f"finished the interrupted {intent.action} {intent.old} -> {intent.new}")
    elif current == intent.old:
        _undo(site, intent, "interrupted before the swap")
        notes.append(f"undid the interrupted {intent.action} {intent.old} -> {intent.new}; current is {intent.old}")
    else:
        raise CutoverError(
            f"{intent_file(site)}: an interrupted {intent.action} {intent.old} -> {intent.new} is pending "
            f"but {site.current_link} points to {current}; set the link by hand, then remove that file"
        )
    return notes


def intent_file(site: Site) -> Path:
    return site.state_dir / "intent.json"


def pending(site: Site) -> Intent | None:
    """The intent of an interrupted action that the next command will settle, for `status`."""
    return _load_intent(site)


def _run(site: Site, intent: Intent) -> Intent:
    atomic.write_text(intent_file(site), json.dumps(asdict(intent), indent=1) + "\n")
    _reached("intent")
    try:
        _apply(site, intent, recovered=False)
    except Exception as exc:
        if _current(site) != intent.old:
            raise CutoverError(
                f"{intent.action} switched {site.current_link} to {intent.new} but could not finish ({exc}); "
                "the next condaqa cutover, rollback or retire completes it"
            ) from exc
        _undo(site, intent, f"failed: {exc}")
        raise CutoverError(f"{intent.action} {intent.old} -> {intent.new} failed and was undone: {exc}") from exc
    return intent


def _apply(site: Site, intent: Intent, *, recovered: bool) -> None:
    """Every step after the intent, each safe to repeat, so recovery just runs them again."""
    for change in intent.kernels:
        _rewrite(site, change, forward=True)
        _reached("kernel")
    _reached("kernels")
    if _current(site) != intent.new:
        atomic.replace_symlink(site.current_link, intent.new)
    _reached("swap")
    if intent.qa is QaLink.REMOVE and site.link_target(site.qa_name) == intent.new:
        site.qa_link.unlink()
    elif intent.qa is QaLink.RESTORE and not site.qa_link.is_symlink():
        atomic.replace_symlink(site.qa_link, intent.old)
    _reached("qa")
    if not (recovered and audit.has_id(site, intent.id)):
        audit.append(site, intent.record(recovered))
    _reached("audit")
    intent_file(site).unlink()
    _reached("done")


def _undo(site: Site, intent: Intent, why: str) -> None:
    for change in reversed(intent.kernels):
        _rewrite(site, change, forward=False)
    if not audit.has_id(site, intent.id):
        record = {"action": Action.ABORT, "id": intent.id, "of": intent.action, "from": intent.old, "to": intent.new}
        audit.append(site, {**record, "why": why, "kernels_restored": len(intent.kernels)})
    intent_file(site).unlink()


def _rewrite(site: Site, change: dict[str, str], *, forward: bool) -> None:
    spec, old, new = Path(change["spec"]), Path(change["from"]), Path(change["to"])
    if spec.is_file():  # a spec deleted since the cutover has nothing left to restore
        rewrite_kernel(site, spec, *((old, new) if forward else (new, old)))


def _reached(step: str) -> None:
    """The crash-safety selftests set $CONDAQA_CRASH_AFTER to a step name to be killed right after it."""
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _intent(
    action: Action,
    old: Installation,
    new: Installation,
    kernels: list[dict[str, str]],
    qa: QaLink,
    forced: bool,
    reason: str,
    failures: list[str],
) -> Intent:
    who = locks.identity()
    by = f"{who['user']}@{who['host']} pid {who['pid']} at {locks.now()}"
    return Intent(uuid.uuid4().hex, action, old.name, new.name, kernels, qa, forced, reason.strip(), failures, by)


def _change(spec: Path, old: Path, new: Path) -> dict[str, str]:
    return {"spec": str(spec), "from": str(old), "to": str(new)}


def _load_intent(site: Site) -> Intent | None:
    try:
        data = json.loads(intent_file(site).read_text(encoding="utf-8"))
        return Intent(**{**data, "action": Action(data["action"]), "qa": QaLink(data["qa"])})
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError) as exc:
        raise CutoverError(f"{intent_file(site)}: unreadable ({exc}); inspect it and the audit log by hand") from None


def _temporary_links(site: Site) -> list[Path]:
    """Links that a swap made beside `current` or `qa` and never renamed (its process was killed)."""
    found = []
    for link in (site.current_link, site.qa_link):
        pattern = atomic.temp_link_name(link).name.rsplit(".", 1)[0] + ".*"
        found += [p for p in sorted(site.root.glob(pattern)) if p.is_symlink()]
    return found


def _current(site: Site) -> str:
    if not site.root.is_dir():
        raise CutoverError(f"{site.root}: the site root does not exist (site file {site.file})")
    target = site.link_target(site.current_name)
    if target is None:
        raise CutoverError(f"{site.current_link} is not a symlink; condaqa switches `current` only as a link")
    return target


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

"""The intent journal of cutover and rollback: what a switch is about to do, and how it is settled.

A switch saves its intent (ROOT/.condaqa/intent.json) before its first change, then runs steps
that are each safe to repeat. The next command to take the site lock (`locked`) settles an intent
left by a dead process: finished if `current` was already swapped, undone if not. Cutover,
rollback and the installation commands all take the lock here, so none reaches into another.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from condaqa import atomic, locks
from condaqa.errors import CondaqaError, CutoverError
from condaqa.kernels.specs import rewrite_kernel
from condaqa.lifecycle import audit
from condaqa.site import Site
from condaqa.vocab import Action, QaLink

CRASH_ENV = "CONDAQA_CRASH_AFTER"


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
    environments_leaving: list[str] = field(default_factory=list)  # in current/envs before, not after
    executables_leaving: dict[str, list[str]] = field(default_factory=dict)  # env -> names gone from its bin/
    waivers: list[str] = field(default_factory=list)  # failures the gate let through, as it said them

    def record(self, recovered: bool) -> dict[str, object]:
        """The audit line of the finished action."""
        fields = asdict(self)
        moved = {"action": fields.pop("action"), "from": fields.pop("old"), "to": fields.pop("new")}
        return {**moved, **fields, "recovered": recovered}


@contextlib.contextmanager
def locked(site: Site, command: str) -> Iterator[list[str]]:
    """The site lock, with whatever a killed cutover or rollback left behind settled first; what was
    settled is said even when the command then fails (its notes go with the error)."""
    with locks.site_lock(site, command) as stale:
        notes = ([stale] if stale else []) + recover(site)
        try:
            yield notes
        except CondaqaError as exc:
            exc.notes = (*notes, *exc.notes)
            raise


def recover(site: Site) -> list[str]:
    """Settle what a killed cutover or rollback left: temporary links and an unfinished intent.

    The caller holds the site lock. Returns one note per thing it cleaned or settled.
    """
    notes = []
    for link in _temporary_links(site):
        link.unlink()
        notes.append(f"removed the temporary link {link}")
    intent = pending(site)
    if intent is None:
        return notes
    current = current_target(site)
    if current == intent.new:
        apply(site, intent, recovered=True)
        notes.append(f"finished the interrupted {intent.action} {intent.old} -> {intent.new}")
    elif current == intent.old:
        undo(site, intent, "interrupted before the swap")
        notes.append(f"undid the interrupted {intent.action} {intent.old} -> {intent.new}; current is {intent.old}")
    else:
        raise CutoverError(
            f"{intent_file(site)}: an interrupted {intent.action} {intent.old} -> {intent.new} is pending "
            f"but {site.current_link} points to {current}; set the link by hand, then remove that file"
        )
    return notes


def intent_file(site: Site) -> Path:
    return site.state_dir / "intent.json"


def save(site: Site, intent: Intent) -> None:
    atomic.write_text(intent_file(site), json.dumps(asdict(intent), indent=1) + "\n")


def apply(site: Site, intent: Intent, *, recovered: bool) -> None:
    """Every step after the intent, each safe to repeat, so recovery just runs them again."""
    for change in intent.kernels:
        _rewrite(site, change, forward=True)
        reached("kernel")
    reached("kernels")
    if current_target(site) != intent.new:
        atomic.replace_symlink(site.current_link, intent.new)
    reached("swap")
    if intent.qa is QaLink.REMOVE and site.link_target(site.qa_name) == intent.new:
        site.qa_link.unlink()
    elif intent.qa is QaLink.RESTORE and not site.qa_link.is_symlink():
        atomic.replace_symlink(site.qa_link, intent.old)
    reached("qa")
    if not (recovered and audit.has_id(site, intent.id)):
        audit.append(site, intent.record(recovered))
    reached("audit")
    intent_file(site).unlink()
    reached("done")


def undo(site: Site, intent: Intent, why: str) -> None:
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


def reached(step: str) -> None:
    """The crash-safety selftests set $CONDAQA_CRASH_AFTER to a step name to be killed right after it."""
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def pending(site: Site) -> Intent | None:
    """The intent of an interrupted action that the next command will settle (also for `status`)."""
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


def current_target(site: Site) -> str:
    if not site.root.is_dir():
        raise CutoverError(f"{site.root}: the site root does not exist (site file {site.file})")
    target = site.link_target(site.current_name)
    if target is None:
        raise CutoverError(f"{site.current_link} is not a symlink; condaqa switches `current` only as a link")
    return target

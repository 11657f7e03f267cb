"""Subcommands: new-installation, qa, cutover, rollback, finalize, retire; and the lifecycle lines of `status`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from condaqa import locks
from condaqa.checks.executables import replaced_by
from condaqa.commands import EXIT_FAILED, EXIT_OK, command, site_of
from condaqa.commands.output import say
from condaqa.lifecycle import audit, installations, journal, switch
from condaqa.site import Site
from condaqa.vocab import Action, QaLink

MAX_WARNINGS = 20
HISTORY = 10


def _new_installation_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="folder name under the site root, e.g. v4.8")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--installer", metavar="FILE", type=Path, help="Miniconda/Miniforge installer (bash FILE -b -p)")
    how.add_argument("--bare", action="store_true", help="an empty installation managed by the rattler engine")


@command("new-installation", "create an installation beside current and point qa at it", _new_installation_args)
def new_installation(args: argparse.Namespace) -> int:
    site = site_of(args)
    _print_notes(installations.new_installation(site, args.name, args.installer))
    print(f"{site.qa_link} -> {args.name}; build and qualify it with `pytest -n auto`")
    return EXIT_OK


def _qa_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="an existing installation folder under the site root, e.g. v4.8")


@command("qa", "point qa at an existing installation (audited; refused during a cutover or qualification)", _qa_args)
def qa_command(args: argparse.Namespace) -> int:
    site = site_of(args)
    before, notes = installations.point_qa(site, args.name)
    _print_notes(notes)
    print(f"{site.qa_link} -> {args.name} (was {before or 'absent'}); qualify it with `pytest -n auto`")
    return EXIT_OK


def _cutover_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", metavar="NAME", help="installation to switch current to (default: what qa points to)")
    parser.add_argument("--force", action="store_true", help="switch even if the gate refuses (needs --reason)")
    parser.add_argument("--reason", metavar="TEXT", default="", help="why; recorded in the audit log")
    parser.add_argument("--keep-qa", action="store_true", help="keep the qa link after the swap")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation (it is asked only on a "
                        "terminal, and never when $CI is set)")
    parser.add_argument("--dry-run", action="store_true", help="print the gate's verdict and everything the cutover "
                        "would change (kernel specs, environments leaving current, qa), and change nothing; exit 1 "
                        "if the gate would refuse")


@command("cutover", "switch current to the qualified installation (gated, atomic, audited)", _cutover_args)
def cutover_command(args: argparse.Namespace) -> int:
    site = site_of(args)
    if args.dry_run:
        return _dry_run(site, switch.preview(site, args.to, keep_qa=args.keep_qa))
    if not args.yes and not _confirmed(f"switch {site.current_link} from {site.link_target(site.current_name)} to "
                                       f"{args.to or site.link_target(site.qa_name)}?"):
        print("nothing changed: the cutover was not confirmed (give --yes to skip the question)")
        return EXIT_FAILED
    where = f" --to {args.to}" if args.to else ""
    outcome = switch.cutover(
        site, args.to, force=args.force, reason=args.reason, keep_qa=args.keep_qa, command=f"condaqa cutover{where}"
    )
    _report(site, outcome)
    return EXIT_OK


def _confirmed(question: str) -> bool:
    """Yes, unless a person at a terminal says otherwise: cron, CI ($CI) and pipes are never asked."""
    if os.environ.get("CI") or not sys.stdin.isatty():
        return True
    print(f"{question} [y/N] ", end="", flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _dry_run(site: Site, seen: switch.Assessment) -> int:
    """What `condaqa cutover` would do, in the words it would use; nothing changed."""
    print(f"dry run: nothing is changed. condaqa cutover would switch {site.current_link} from {seen.old.name} "
          f"to {seen.new.name}")
    if seen.failures:
        print(f"gate: refuses, {len(seen.failures)} problem(s):")
        print("\n".join(f"  - {f}" for f in seen.failures))
    else:
        print("gate: passes" + (f", {len(seen.waived)} failure(s) waived" if seen.waived else ""))
    for waived in seen.waived:
        print(f"waived: {waived}")
    for warning in seen.warnings[:MAX_WARNINGS]:
        print(f"warning: {warning}")
    if len(seen.warnings) > MAX_WARNINGS:
        print(f"warning: ... and {len(seen.warnings) - MAX_WARNINGS} more like these")
    for change in seen.kernels:
        print(f"kernel spec {change['spec']} would be rewritten: {change['from']} -> {change['to']}")
    for line in _leaving_lines(site, seen.old.name, seen.new.name, seen.leaving, seen.executables_leaving,
                               "would leave"):
        print(line)
    qa = {QaLink.REMOVE: "would be removed", QaLink.KEEP: "would be kept"}.get(seen.qa, "would stay as it is")
    print(f"{site.qa_link}: {qa}")
    return EXIT_FAILED if seen.failures else EXIT_OK


def _rollback_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", metavar="TEXT", default="", help="why; recorded in the audit log")


@command("rollback", "switch current back to where it pointed before the last cutover", _rollback_args)
def rollback_command(args: argparse.Namespace) -> int:
    site = site_of(args)
    _report(site, switch.rollback(site, reason=args.reason))
    return EXIT_OK


@command("finalize", "keep the last cutover for good: drop the rollback point, so the installation it left can be "
         "retired (audited)", _rollback_args)
def finalize_command(args: argparse.Namespace) -> int:
    site = site_of(args)
    record, notes = switch.finalize(site, reason=args.reason)
    _print_notes(notes)
    print(f"finalized the cutover {record['from']} -> {record['to']}: `condaqa rollback` no longer returns to "
          f"{record['from']}, and `condaqa retire {record['from']} --yes` may delete it; logged in "
          f"{audit.log_file(site)}")
    return EXIT_OK


def _retire_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="installation folder to delete, e.g. v4.3")
    parser.add_argument("--pkgs-only", action="store_true", help="delete only its package cache (pkgs/)")
    parser.add_argument("--yes", action="store_true", help="confirm the deletion")


@command("retire", "delete an old installation or its package cache (never current's or qa's; the whole installation "
         "not while a rollback would return to it)", _retire_args)
def retire_command(args: argparse.Namespace) -> int:
    site = site_of(args)
    def warn(line: str) -> None:  # before anything is deleted: the admin may still stop it
        print(f"warning: {line}", flush=True)

    _print_notes(installations.retire(site, args.name, warn=warn, pkgs_only=args.pkgs_only, yes=args.yes))
    print(f"retired {site.root / args.name}{'/pkgs' if args.pkgs_only else ''}")
    return EXIT_OK


def lifecycle_status(site: Site) -> list[str]:
    """For `condaqa status`: an unfinished action, the lock, where rollback returns, the audit history."""
    lines = []
    intent = journal.pending(site)
    if intent is not None:
        lines.append(
            f"pending: an interrupted {intent.action} {intent.old} -> {intent.new} ({intent.started_by}); "
            "the next cutover, rollback or retire settles it"
        )
    lock = locks.lock_status(site)
    if lock:
        lines.append(f"lock: {lock}")
    target, last, closed = audit.rollback_target(site), audit.last_cutover(site), audit.finalized(site)
    if last is None:
        lines.append("rollback would return to: nothing (no cutover recorded)")
    elif closed is not None:
        lines.append(f"rollback would return to: nothing (the cutover {last['from']} -> {last['to']} was finalized "
                     f"{closed['time']})")
    elif target is None:
        where = f"{site.current_link} points to {last['from']}, as before the last cutover"
        lines.append(f"rollback would return to: nothing ({where})")
    else:
        lines.append(f"rollback would return to: {target} (current before the cutover of {last['time']})")
    records = audit.records(site)
    shown = f", last {HISTORY}" if len(records) > HISTORY else ""
    lines.append(f"audit log {audit.log_file(site)}: {len(records)} action(s){shown}")
    lines.extend(f"  {describe(r)}" for r in records[-HISTORY:])
    return lines


def describe(record: dict[str, Any]) -> str:
    """One audit record as a line of history."""
    action = record.get("action", "?")
    head = f"{record.get('time', '?')} {record.get('user', '?')}@{record.get('host', '?')} {action}"
    if action in (Action.CUTOVER, Action.ROLLBACK):
        text = f"{head} {record['from']} -> {record['to']}, {len(record.get('kernels', []))} kernel spec(s) rewritten"
        gone = record.get("environments_leaving", [])
        programs = sum(len(names) for names in record.get("executables_leaving", {}).values())
        if gone or programs:
            text += f", {len(gone)} environment(s) and {programs} executable(s) left current"
        if record.get("waivers"):
            text += f", {len(record['waivers'])} failure(s) waived"
        if record.get("forced"):
            text += f", FORCED past {len(record.get('gate_failures', []))} problem(s)"
        if record.get("reason"):
            text += f", reason: {record['reason']}"
        return text + (" (finished by recovery)" if record.get("recovered") else "")
    if action == Action.ABORT:
        return f"{head} of {record.get('of')} {record.get('from')} -> {record.get('to')}: {record.get('why')}"
    if action == Action.FINALIZE:
        reason = f", reason: {record['reason']}" if record.get("reason") else ""
        return f"{head} of the cutover {record.get('from')} -> {record.get('to')}{reason}"
    if action == Action.RETIRE:
        return f"{head} {record.get('installation')}{' (package cache only)' if record.get('pkgs_only') else ''}"
    if action == Action.NEW_INSTALLATION:
        return f"{head} {record.get('installation')} ({record.get('installer')}), qa was {record.get('qa_before')}"
    if action == Action.QA:
        return f"{head} -> {record.get('installation')}, qa was {record.get('qa_before')}"
    return head


def _report(site: Site, outcome: switch.Outcome) -> None:
    _print_notes(outcome.notes)
    for warning in outcome.warnings[:MAX_WARNINGS]:
        print(f"warning: {warning}")
    if len(outcome.warnings) > MAX_WARNINGS:
        print(f"warning: ... and {len(outcome.warnings) - MAX_WARNINGS} more like these")
    intent = outcome.intent
    for change in intent.kernels:
        print(f"kernel spec {change['spec']}: {change['from']} -> {change['to']}")
    for line in _leaving_lines(site, intent.old, intent.new, intent.environments_leaving, intent.executables_leaving,
                               "left"):
        print(line)
    for waived in intent.waivers:
        print(f"waived: {waived}")
    if intent.forced and intent.gate_failures:
        print(f"forced past {len(intent.gate_failures)} gate problem(s); reason recorded: {intent.reason}")
    qa = {QaLink.REMOVE: "removed", QaLink.KEEP: "kept", QaLink.RESTORE: f"restored -> {intent.old}"}.get(intent.qa)
    if qa:
        print(f"{site.qa_link}: {qa}")
    print(f"{intent.action}: {site.current_link} -> {intent.new} (was {intent.old}); logged in {audit.log_file(site)}")


def _leaving_lines(site: Site, old: str, new: str, envs: list[str], programs: dict[str, list[str]],
                   verb: str) -> list[str]:
    """What users lose from `current` at a switch from `old` to `new`, one line each, with what to do instead."""
    lines = [f"environment {env} {verb} {site.current_link}/envs ({new} does not hold it; it stays in {old})"
             for env in envs]
    return lines + [f"executable {site.current_link}/envs/{env}/bin/{name} {verb} {site.current_link} ({new}'s {env} "
                    f"has none); call {replaced_by(env, name)} instead"
                    for env, names in programs.items() for name in names]


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        say.info(f"note: {note}")

"""Subcommands: status (where the site stands), report (the summary spreadsheet)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from condaqa import locks, report
from condaqa.commands import EXIT_FAILED, EXIT_OK, command, site_of
from condaqa.commands.lifecycle import lifecycle_status
from condaqa.commands.owners import owner_args, owner_reports
from condaqa.errors import CondaqaError
from condaqa.inputs import redact
from condaqa.kernels.specs import find_kernels
from condaqa.lifecycle import audit, switch
from condaqa.manifest import site_manifest
from condaqa.qualification.store import results_dir
from condaqa.qualification.verdict import standing
from condaqa.qualification.waivers import judge
from condaqa.sandbox.box import sandbox_for
from condaqa.shardreports import merge
from condaqa.site import Site
from condaqa.vocab import Category, Verdict, counted


def _status_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object (links, each environment's "
                        "verdict, whether the gate would pass) instead of the lines")


@command("status", "where current and qa point, each environment's qualification (passed, failed, pending, "
         "partial, stale), whether the cutover gate would pass now, the cutover history", _status_args)
def status(args: argparse.Namespace) -> int:
    site = site_of(args)
    if args.json:
        print(redact(json.dumps(_status_data(site), indent=1)))
        return EXIT_OK
    print(f"site      {site.root}  ({site.file})")
    for link in (site.current_name, site.qa_name):
        print(f"{link:9} -> {site.link_target(link) or '(absent)'}")
    for inst in site.installations():
        print(f"  {inst.name:12} {len(inst.environments()):3} environments  conda {inst.conda_version() or '-'}")
    print(f"sandbox   {sandbox_for(site).describe()}")
    passes, problems = _gate(site)
    if passes is not None:
        said = "would pass now" if passes else f"would refuse now, {len(problems)} problem(s): {problems[0]}" + (
            f" (and {len(problems) - 1} more: condaqa cutover --dry-run)" if len(problems) > 1 else "")
        print(f"gate      a cutover to {site.link_target(site.qa_name)} {said}")
    for line in [*_qualification_lines(site), *_kernel_lines(site), *lifecycle_status(site)]:
        print(redact(line))  # results of older runs may hold what redact() masks now
    return EXIT_OK


def _gate(site: Site) -> tuple[bool | None, list[str]]:
    """Whether `condaqa cutover` to qa would pass now, and its problems; None when there is no cutover to make."""
    if switch.nothing_to_cut_over(site):
        return None, []
    try:
        seen = switch.preview(site)
    except CondaqaError as exc:
        return False, [str(exc)]
    return not seen.failures, list(seen.failures)


def _status_data(site: Site) -> dict[str, object]:
    passes, problems = _gate(site)
    manifest, kernels = site_manifest(site), find_kernels(site)
    qualification = {}
    for link in (site.qa_name, site.current_name):
        target = site.link_target(link)
        if target is None or not _readable(results_dir(site, target)):
            continue
        qualification[target] = {env.name: {"verdict": str(found.verdict), "category": str(found.category or ""),
                                            "reason": found.reason}
                                 for env in manifest for found in [standing(site, target, env, kernels)]}
    return {"site": str(site.file), "root": str(site.root), "current": site.link_target(site.current_name),
            "qa": site.link_target(site.qa_name), "sandbox": sandbox_for(site).describe(),
            "gate": None if passes is None else {"passes": passes, "problems": problems},
            "qualification": qualification, "rollback_to": audit.rollback_target(site)}


def _qualification_lines(site: Site) -> list[str]:
    manifest, kernels = site_manifest(site), find_kernels(site)
    lines = []
    for link in (site.qa_name, site.current_name):
        target = site.link_target(link)
        if target is None:
            continue
        folder = results_dir(site, target)
        if not _readable(folder):
            lines.append(f"qualification of {target} ({link}): {folder} is not readable by you")
            continue
        standings = [standing(site, target, env, kernels) for env in manifest]
        if all(s.verdict is Verdict.NEVER for s in standings):
            continue
        lines.append(f"qualification of {target} ({link}):")
        width = max(len(env.name) for env in manifest)
        for env, found in zip(manifest, standings, strict=True):
            category = f" [{found.category}]" if found.category else ""
            waiver = judge(env, found)
            reason = found.reason + (f"; {waiver.words}" if waiver else "")
            lines.append(f"  {env.name:{width}}  {env.disposition:9}  {found.verdict:8}{category}  {reason}")
    return lines


def _kernel_lines(site: Site) -> list[str]:
    """Each kernel name Jupyter shows now: what it runs, whether it started in qa and in current, and what
    the cutover to qa does to the name."""
    kernels = find_kernels(site)
    installation = report.qa_installation(site)
    rows = report.kernel_rows(site, site_manifest(site), installation, kernels)
    if not rows:
        return []
    source = "the kernels folder and nb_conda_kernels" if site.nb_conda_kernels else "the kernels folder"
    lines = [f"kernels (the names Jupyter shows, from {source}; started in the qualification of {installation}):"]
    width, env_width = max(len(r.name) for r in rows), max(len(r.environment) for r in rows)
    for r in rows:
        name = "name kept" if r.name_change == "-" else f"name {r.name_change}"
        lines.append(f"  {r.name:{width}}  {r.environment:{env_width}}  qa: {r.started_qa:7}  "
                     f"current: {r.started_current:7}  {name}")
    return lines


def _readable(folder: Path) -> bool:
    """Whether this user can list `folder` (a missing one reads as empty); umask-077 sites are common."""
    for path in (folder.parent, folder):
        try:
            os.stat(path)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        if not os.access(path, os.R_OK | os.X_OK):
            return False
    return True


def _report_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--installation", metavar="NAME", help="whose results (default: what qa points to)")
    owner_args(parser)
    parser.add_argument("--merge", action="store_true", help="merge the shards' reports/junit-I-of-N.xml into "
                        "reports/junit.xml and the summary, and name the shards that are missing (exit 1 if any)")


@command("report", "regenerate reports/summary.md and summary.csv from the saved results and findings; "
         "--owners: a page per owner and the overview; --notify: send them", _report_args)
def report_command(args: argparse.Namespace) -> int:
    site = site_of(args)
    manifest, kernels = site_manifest(site), find_kernels(site)
    installation = args.installation or report.qa_installation(site)
    if args.merge:
        with locks.merging(site):
            merged = merge(site, manifest, kernels, sandbox_for(site).describe(), installation)
        for line in merged.words():
            print(line)
        return EXIT_FAILED if merged.missing or not merged.total else EXIT_OK
    rows = report.make_rows(site, manifest, installation, kernels)
    md, csv_path = report.write_summary(site, manifest, kernels, sandbox_for(site).describe(), installation, rows)
    broken = sum(1 for r in rows if r.category == Category.ALREADY_BROKEN)
    failed = sum(1 for r in rows if r.result == Verdict.FAILED) - broken
    print(f"{counted(len(rows), 'environment')} of {installation}: {failed} failed, {broken} already broken in "
          f"current; {md} and {csv_path}")
    if args.owners or args.notify:
        return owner_reports(args, site, manifest, kernels, installation, rows)
    return EXIT_OK


def _unlock_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stale", action="store_true", required=True,
                        help="clear the lock cards of qualifications that no longer run, on any host (their lock is "
                        "free), naming each one's host, pid and start; what they did not finish stays pending")


@command("unlock", "clear the stale lock cards a killed qualification left, on any host, saying whose", _unlock_args)
def unlock(args: argparse.Namespace) -> int:
    site = site_of(args)
    done = locks.unlock_stale(site)
    for line in done.cleared:
        print(f"cleared stale lock card of {line}")
    for line in done.held:
        print(f"still held, left alone: {line}")
    if not done.cleared and not done.held:
        print("no lock card to clear")
    return EXIT_FAILED if done.held else EXIT_OK

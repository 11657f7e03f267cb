"""Subcommand: replicate, building REPLICATE environments in qa without testing them."""

from __future__ import annotations

import argparse
import sys

from condaqa import locks
from condaqa.commands import EXIT_FAILED, EXIT_OK, command, site_of
from condaqa.commands.output import say
from condaqa.commands.specs import EXIT_BAD_INPUT, selected
from condaqa.errors import BuildError
from condaqa.inputs import redact
from condaqa.kernels.specs import find_kernels
from condaqa.manifest import site_manifest
from condaqa.plan.findings import load_findings
from condaqa.qualification.builds import build
from condaqa.qualification.required import check_manifest
from condaqa.sandbox.box import sandbox_for
from condaqa.triage import classify_build
from condaqa.vocab import counted


def _replicate_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", metavar="NAME", help="only this environment (default: every REPLICATE one)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild even when the plan is unchanged, and "
                        "replace an environment in qa that condaqa did not build")


@command("replicate", "build REPLICATE environments in qa (idempotent; logs in reports/logs/); "
         "qualify them with pytest", _replicate_args)
def replicate_command(args: argparse.Namespace) -> int:
    site = site_of(args)
    qa, current = site.qa_installation(), site.current_installation()
    check_manifest(site_manifest(site), find_kernels(site))
    sandbox = sandbox_for(site)
    chosen = selected(site, args.env, replicate_only=True)
    failed, built_now, disk = 0, 0, ""
    with locks.qualifying(site, (qa.name, current.name), "condaqa replicate"):
        for number, env in enumerate(chosen, 1):
            head = f"[{number}/{len(chosen)}] {env.name}:"
            say.debug(f"{head} building")
            try:
                built = build(site, sandbox, env, rebuild=args.rebuild)
            except BuildError as exc:
                failed += 1
                saved = load_findings(site, env.name)
                verdict = classify_build(env.name, exc, saved.findings if saved else ())
                words = redact(verdict.detail or str(exc)).splitlines()[0]
                print(f"{head} FAILED [{verdict.category}] at {exc.stage}: {words}")
                print(f"    hint: {verdict.hint}\n    log: {exc.log}")
                disk = disk or disk_trouble(str(exc))
                continue
            built_now += built.rebuilt
            words = "rebuilt" if built.replaced else "built"
            say.info(f"{head} {words} in {built.seconds:.1f}s" if built.rebuilt else f"{head} up to date")
            say.debug(f"    log: {built.log}")
    up_to_date = len(chosen) - failed - built_now
    print(f"{counted(built_now, 'environment')} built, {up_to_date} up to date, {failed} failed in {site.qa_link}; "
          "none is qualified until its checks pass (pytest)")
    if disk:
        print(f"error: the disk refused a write: {disk}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_FAILED if failed else EXIT_OK


def disk_trouble(message: str) -> str:
    """The line saying a build failed because the disk did, not the environment ("" if not): exit 2, like any
    disk error."""
    words = ("No space left on device", "os error 28", "Disk quota exceeded", "Read-only file system", "os error 30")
    return next((line.strip() for line in message.splitlines() if any(w in line for w in words)), "")

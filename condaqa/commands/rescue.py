"""Subcommands: rescue, taking the packages the site's channels lost from production into ROOT/rescue; archive,
keeping what it takes to rebuild an environment exactly once the channels have lost it."""

from __future__ import annotations

import argparse

from condaqa.commands import EXIT_FAILED, EXIT_OK, command, site_of
from condaqa.commands.specs import selected
from condaqa.errors import ConfigError
from condaqa.inputs import name_problem
from condaqa.replication.archive import verify, write_archive
from condaqa.rescue.channel import plan_with_rescue
from condaqa.vocab import Rule, Severity


def _rescue_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", metavar="NAME", help="only this environment (default: every REPLICATE one)")


@command("rescue", "take the exact packages the preflight finds in none of the site's channels from current's "
         "package cache or environment into ROOT/rescue (used after the site's channels)", _rescue_args)
def rescue_command(args: argparse.Namespace) -> int:
    site = site_of(args)
    if not site.rescue:
        raise ConfigError(f"{site.file}: rescue = false in [site]; set it to true (or drop it) to rescue packages")
    failed = 0
    for env in selected(site, args.env, replicate_only=True):
        _, findings = plan_with_rescue(site, env)
        for found in (f for f in findings if f.rule is Rule.RESCUED):
            failed += found.severity is Severity.WARNING
            print(f"{env.name}: {found.action}: {found.reason}")
    return EXIT_FAILED if failed else EXIT_OK


def _archive_args(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--env", metavar="NAME", help="only this environment (default: every one of the manifest)")
    which.add_argument("--export-only", action="store_true", help="the environments the manifest does not migrate")
    which.add_argument("--verify", metavar="NAME", help="rebuild NAME from its archive alone, offline, into a scratch "
                       "prefix, and compare it with the original record by record (exit 1 on any difference)")
    parser.add_argument("--installation", metavar="NAME", help="the installation whose environments to archive or "
                        "whose archive to verify, e.g. the old one after a cutover (default: current's)")


@command("archive", "write ROOT/archive/<installation>/<env>/ for each environment of current: its spec, @EXPLICIT "
         "list, every conda package as a local channel, the wheels of its pip part, digests; or --verify one",
         _archive_args)
def archive_command(args: argparse.Namespace) -> int:
    site = site_of(args)
    for option, name in (("--installation", args.installation), ("--verify", args.verify)):
        if name and name_problem(name):
            raise ConfigError(f"{option} {name[:80]!r}: {name_problem(name)}")
    installation = site.installation(args.installation) if args.installation else site.current_installation()
    if args.verify:
        problems = verify(site, installation.name, args.verify)
        for problem in problems:
            print(f"{args.verify}: {problem}")
        if not problems:
            print(f"{args.verify}: every record matches a rebuild from the archive alone; marked verified")
        return EXIT_FAILED if problems else EXIT_OK
    chosen = [e for e in selected(site, args.env, replicate_only=False) if not (args.export_only and e.replicate)]
    incomplete = 0
    for env in chosen:
        done = write_archive(site, installation, env.name)
        sources = ", ".join(f"{count} from the {source}" for source, count in sorted(done.sources.items()))
        print(f"{env.name}: {done.packages} conda package(s) ({sources or 'none'}) and {len(done.pip_kept)} wheel(s) "
              f"in {done.folder}")
        for line in done.missing:
            print(f"  warning: not archived: {line}")
        if done.pip_missing:
            print(f"  warning: no wheelhouse has {', '.join(done.pip_missing)}: named in the manifest only")
        incomplete += bool(done.missing or done.pip_missing)
    return EXIT_FAILED if incomplete else EXIT_OK

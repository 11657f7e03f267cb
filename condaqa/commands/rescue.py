"""Subcommand: rescue, taking the packages the site's channels lost from production into ROOT/rescue."""

from __future__ import annotations

import argparse

from condaqa.commands import EXIT_FAILED, EXIT_OK, command, site_of
from condaqa.commands.specs import selected
from condaqa.errors import ConfigError
from condaqa.plan.findings import errors
from condaqa.plan.planning import plan_environment
from condaqa.rescue.channel import rescue_packages
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
        _, findings = plan_environment(site, env)
        missing = [f.package for f in errors(findings) if f.rule is Rule.MISSING_VERSION]
        for found in rescue_packages(site, env.name, missing) if missing else []:
            failed += found.severity is Severity.WARNING
            print(f"{env.name}: {found.action}: {found.reason}")
    return EXIT_FAILED if failed else EXIT_OK

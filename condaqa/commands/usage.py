"""Subcommand: usage (which environments of current are used, and by whom)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from condaqa import durations
from condaqa.commands import EXIT_OK, command, site_of
from condaqa.errors import ConfigError
from condaqa.usage.evidence import Usage, collect, sample


def _usage_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sample", action="store_true", help="append what runs now to ROOT/.condaqa/usage/ and "
                        "print one line (for cron, every few minutes; run it as root to see every user's processes)")
    parser.add_argument("--since", metavar="SPAN", default="30d", help="how far back the sampler log is read: "
                        "30d, 12h, 90m (default 30d)")
    parser.add_argument("--homes", metavar="DIR", nargs="+", type=Path, help="home folders whose "
                        "~/.conda/environments.txt to read (default: the users of the site root's group)")
    parser.add_argument("--json", action="store_true", help="print the evidence as JSON")


@command("usage", "which environments of current are used: processes and kernels running from them now, the "
         "sampler log, kernel specs, and what their files say (each with its weakness)", _usage_args)
def usage_command(args: argparse.Namespace) -> int:
    try:
        durations.seconds(args.since)
    except ValueError as exc:
        raise ConfigError(f"--since: {exc}") from None
    site = site_of(args)
    if args.sample:
        path, count = sample(site)
        print(f"sampled: {count} process(es) running from environments of {site.current_link}; appended to {path}")
        return EXIT_OK
    found = collect(site, args.since, args.homes)
    if args.json:
        print(json.dumps(asdict(found), indent=1))
        return EXIT_OK
    for line in render(found):
        print(line)
    return EXIT_OK


def render(found: Usage) -> list[str]:
    lines = []
    for env in found.environments:
        lines.append(f"{env.env}: {env.verdict()}")
        lines += [f"  {e.line()}" for e in sorted(env.evidence, key=lambda e: (not e.now, e.source))]
    log = found.sampler
    if log.samples:
        lines.append(f"sampler: {log.samples} sample(s) in {log.folder} within {durations.words(found.since)} "
                     f"(first {log.first}, last {log.last})" + (f"; {log.skipped} unreadable line(s)" if log.skipped
                                                               else ""))
    else:
        lines.append(f"sampler: no sample within {durations.words(found.since)} in {log.folder}; run "
                     "`condaqa usage --sample` from cron (e.g. every 5 minutes, as root) in the weeks before a "
                     "migration")
    lines += [f"could not read: {u}" for u in found.unreadable]
    return lines

"""Subcommand: inventory of current."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict

from condaqa.commands import EXIT_OK, command, site_of
from condaqa.inventory import human_size, inventory, proposal
from condaqa.manifest import starter_ini
from condaqa.usage.evidence import collect


def _inventory_args(parser: argparse.ArgumentParser) -> None:
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--ini", action="store_true", help="print a starter environments.ini: REPLICATE for the "
                     "environments seen in use (running now, in the sampler log of --since, or run by a kernel "
                     "spec), export for the rest, with the evidence in each comment")
    how.add_argument("--json", action="store_true", help="print a JSON list, one object per environment (size in "
                     "bytes, modified in seconds since the epoch)")
    parser.add_argument("--since", metavar="SPAN", default="30d", help="how far back --ini reads the sampler log "
                        "(default 30d)")


@command("inventory", "list every environment of current: size, owner, last change, kernels", _inventory_args)
def inventory_command(args: argparse.Namespace) -> int:
    site = site_of(args)
    facts = inventory(site)
    if args.json:
        print(json.dumps([asdict(f) for f in facts], indent=1))
        return EXIT_OK
    if args.ini:
        used = collect(site, args.since, with_files=False)
        proposed = {f.name: proposal(used.of(f.name)) for f in facts}
        rows = [(f.name, f"{f.comment()}\n{proposed[f.name][1]}") for f in facts]
        print(starter_ini(rows, {name for name, (replicate, _) in proposed.items() if replicate}), end="")
        return EXIT_OK
    width = max([len(f.name) for f in facts] + [11])
    print(f"{'environment':{width}}  {'size':>10}  {'owner':20}  {'modified':10}  kernels")
    for f in facts:
        owner = f"{f.user}:{f.group}"
        day = time.strftime("%Y-%m-%d", time.localtime(f.modified))
        print(f"{f.name:{width}}  {human_size(f.size):>10}  {owner:20}  {day:10}  {', '.join(f.kernels) or '-'}")
    print(f"{len(facts)} environments in {site.current_link} -> {site.link_target(site.current_name)}")
    return EXIT_OK

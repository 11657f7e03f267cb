"""Subcommand: audit-users (what users' homes still name by an installation's versioned path)."""

from __future__ import annotations

import argparse
from pathlib import Path

from condaqa.commands import EXIT_FAILED, EXIT_OK, command, site_of
from condaqa.errors import SiteError
from condaqa.kernels import users


def _audit_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("homes", nargs="*", type=Path, metavar="HOME",
                        help="home folders to read (default: those of the users in the site root's group you can read)")
    parser.add_argument("--installation", metavar="NAME",
                        help="only paths inside this installation (default: every installation under the site root "
                        "but the one qa points to, which users may name while they try it)")


@command("audit-users", "list users' kernel specs, environments.txt lines and .condarc folders that name an "
         "installation by its versioned path, so break when it is retired (reads only; exit 1 if any)", _audit_args)
def audit_users(args: argparse.Namespace) -> int:
    site = site_of(args)
    if args.installation:
        installation = site.installation(args.installation)
        if installation.path.parent != site.root or not (installation.path / "conda-meta").is_dir():
            raise SiteError(f"{args.installation!r} is not an installation folder under {site.root}")
        doomed = [installation.path]
    else:
        doomed = [inst.path for inst in site.installations() if inst.name != site.link_target(site.qa_name)]
    homes = args.homes or users.group_homes(site)
    audit = users.audit_homes(site, homes, doomed)
    for why in audit.unreadable:
        print(f"note: {why}")
    for found in audit.found:
        print(found.line())
    if not audit.found:
        print(f"nothing found in {len(homes)} home folder(s)")
        return EXIT_OK
    return EXIT_FAILED

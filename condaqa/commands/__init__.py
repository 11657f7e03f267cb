"""The subcommands of `condaqa`, one module per subject; cli.py turns them into the parser.

Each handler takes the parsed arguments and returns an exit code: 0 success, 1 failures
found or action refused (EXIT_FAILED), 2 bad input (raised as CondaqaError and mapped in cli.py).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

from condaqa.commands import output
from condaqa.demo.site import ensure_demo
from condaqa.errors import SiteError
from condaqa.site import Site, load_site

EXIT_OK = 0
EXIT_FAILED = 1

Handler = Callable[[argparse.Namespace], int]
Arguments = Callable[[argparse.ArgumentParser], None]
COMMANDS: dict[str, tuple[Handler, str, Arguments]] = {}

_MODULES = ("demo", "inventory", "specs", "replicate", "rescue", "status", "lifecycle", "users", "usage")


def command(name: str, help_text: str, arguments: Arguments = lambda p: None) -> Callable[[Handler], Handler]:
    """Register a subcommand: its handler, one line of help and its own arguments."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = (handler, help_text, arguments)
        return handler

    return register


def site_of(args: argparse.Namespace) -> Site:
    """The site of --site / $CONDAQA_SITE; a demo site (demo = true) is built on first use.

    A site whose root (or `current` link) is missing is an error, and nothing is created there.
    """
    site = load_site(getattr(args, "site", None))
    if site.demo and not site.root.exists():
        ensure_demo(site, progress=output.say.info)
    if not site.root.is_dir():
        raise SiteError(f"{site.root}: the site root does not exist (site file {site.file})")
    if not site.current_link.is_symlink():
        raise SiteError(f"{site.current_link}: missing or not a symlink; a site needs `current` pointing at an "
                        "installation")
    return site


for _module in _MODULES:
    importlib.import_module(f"condaqa.commands.{_module}")

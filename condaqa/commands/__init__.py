"""The subcommands of `condaqa`, one module per group; cli.py turns them into the parser.

Each handler takes the parsed arguments and returns an exit code: 0 success, 1 failures
found or action refused (EXIT_FAILED), 2 bad input (raised as CondaqaError and mapped in cli.py).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

from condaqa.demo.site import ensure_demo
from condaqa.site import Site, load_site

EXIT_OK = 0
EXIT_FAILED = 1

Handler = Callable[[argparse.Namespace], int]
Arguments = Callable[[argparse.ArgumentParser], None]
COMMANDS: dict[str, tuple[Handler, str, Arguments]] = {}

_GROUPS = ("condaqa.commands.qualify", "condaqa.commands.lifecycle", "condaqa.commands.triage")


def command(name: str, help_text: str, arguments: Arguments = lambda p: None) -> Callable[[Handler], Handler]:
    """Register a subcommand: its handler, one line of help and its own arguments."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = (handler, help_text, arguments)
        return handler

    return register


def site_of(args: argparse.Namespace) -> Site:
    """The site of --site / $CONDAQA_SITE; a demo site (demo = true) is built on first use."""
    site = load_site(args.site)
    if site.demo and not site.root.exists():
        ensure_demo(site)
    return site


for _group in _GROUPS:
    importlib.import_module(_group)

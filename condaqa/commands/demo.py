"""Subcommand: demo, the embedded demo site."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

from condaqa.commands import EXIT_OK, command
from condaqa.commands.output import say
from condaqa.demo.site import ensure_demo
from condaqa.site import load_site
from condaqa.sitefile import DEFAULT_SITE, SITE_ENV_VAR

PACKAGED = Path(__file__).resolve().parent.parent / "demo" / "site.toml"


def _demo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", metavar="DIR", type=Path, help="where to build it (default: the site's root)")
    parser.add_argument("--real-conda", action=argparse.BooleanOptionalAction, default=None,
                        help="make current (v4.3) a real conda 4.3.16, installed from the package registry into a "
                        "python 3.6 venv, which then creates the environments on python 2.7 and 3.6; py-rattler "
                        "makes the others, on python 3.10+, which conda 4.3 cannot place (default: where this "
                        "machine has a python 3.6 and the registry answers; --real-conda fails where not, "
                        "--no-real-conda never tries)")


@command("demo", "build the embedded demo site (offline, about half a minute)", _demo_args)
def demo(args: argparse.Namespace) -> int:
    named = getattr(args, "site", None) or os.environ.get(SITE_ENV_VAR)
    if named is None and args.root is not None and not (Path.cwd() / DEFAULT_SITE).is_file():
        named = str(PACKAGED)  # installed from a wheel, outside a clone: the demo's own settings
    site = load_site(named)
    if args.root is not None:
        root = args.root.resolve()
        site = replace(site, root=root, specs_dir=root / site.specs_dir.name, kernels_dir=root / site.kernels_dir.name)
    if not ensure_demo(site, progress=say.info, real_conda=args.real_conda):
        say.info(f"demo site already built at {site.root}")
    return EXIT_OK

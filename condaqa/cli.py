"""The `condaqa` command: argument parsing and output only; the work is in the library modules."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from condaqa.commands import COMMANDS
from condaqa.errors import CondaqaError
from condaqa.site import SITE_ENV_VAR


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="condaqa",
        description=(
            "Qualify a new shared conda installation side by side with the one in production, "
            "then switch `current` to it atomically (and back). Qualification itself is a pytest "
            "run: `pytest -n 8` in this repository."
        ),
        epilog=f"Exit codes: 0 success, 1 failures found or action refused, 2 bad input. "
        f"The site file is --site, else ${SITE_ENV_VAR}, else manifests/site.toml.",
    )
    parser.add_argument("--site", metavar="PATH", help="site.toml to use (default: $CONDAQA_SITE or manifests/site.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (handler, help_text, arguments) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        arguments(p)
        p.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except CondaqaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

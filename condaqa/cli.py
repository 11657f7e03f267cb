"""The `condaqa` command: argument parsing and output only; the work is in the library modules."""

from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback
from collections.abc import Sequence

from condaqa.commands import COMMANDS, output
from condaqa.commands.output import say
from condaqa.errors import CondaqaError
from condaqa.inputs import redact
from condaqa.sitefile import SITE_ENV_VAR
from condaqa.version import VERSION

SITE_HELP = f"site.toml to use (default: ${SITE_ENV_VAR}, else manifests/site.toml); accepted anywhere on the line"
_DISK = (errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.EDQUOT, errno.ENAMETOOLONG, errno.EIO)
EXIT_PIPE = 141  # as a shell reports a command killed by SIGPIPE: the reader of its output went away
EXIT_INTERNAL = 3  # a bug of condaqa's own, neither the input's nor an environment's


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--site", metavar="PATH", default=argparse.SUPPRESS, help=SITE_HELP)
    loud = common.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=-1, default=argparse.SUPPRESS,
                      help="say only what was done, warnings and errors: no progress or notes (for cron)")
    loud.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=1, default=argparse.SUPPRESS,
                      help="say the details too: each build's log, the cause of an error")
    parser = argparse.ArgumentParser(
        prog="condaqa",
        parents=[common],
        description=(
            "Qualify a new shared conda installation side by side with the one in production, "
            "then switch `current` to it atomically (and back). Qualification itself is a pytest "
            "run: `pytest -n auto` in this repository, or `pytest --pyargs condaqa.suite --site PATH` anywhere."
        ),
        epilog="Exit codes: 0 success, 1 failures found or action refused (a failed build, the cutover gate), "
        "2 bad input or a refusal that names the file, line, environment or path, 3 an internal error of condaqa "
        "(its traceback is printed, to report), 141 the reader of the output went away (`| head`).",
    )
    parser.add_argument("--version", action="version", version=f"condaqa {VERSION}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (handler, help_text, arguments) in COMMANDS.items():
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        arguments(p)
        p.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    output.configure(getattr(args, "verbosity", 0))
    try:
        code: int = args.handler(args)
        sys.stdout.flush()  # here, not at exit, where a closed pipe is a traceback
        return code
    except BrokenPipeError:  # `condaqa status | head`: what is left to print goes nowhere
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE
    except CondaqaError as exc:
        for note in exc.notes:
            say.info(f"note: {redact(note)}")
        if exc.__cause__ is not None:
            say.debug(f"cause: {redact(repr(exc.__cause__))}")
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if exc.errno not in _DISK:
            return _internal_error()
        where = exc.filename or "?"
        print(f"error: {where}: {os.strerror(exc.errno or 0)}; nothing was left half-written", file=sys.stderr)
        return CondaqaError.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:
        return _internal_error()


def _internal_error() -> int:
    """A bug, not bad input: the traceback is what a ticket needs."""
    traceback.print_exc()
    print("error: an internal error of condaqa; nothing more was done. Please report it with the traceback above",
          file=sys.stderr)
    return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

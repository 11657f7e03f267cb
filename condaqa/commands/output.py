"""How much the `condaqa` command says, set by -q and -v: what it did, its warnings and errors always;
progress and notes unless -q (cron mails stay short); the details a ticket needs with -v.

Results (a listing, a path written, a verdict) are printed; what is said around them goes through the
`condaqa.cli` logger, so the level is decided in one place and nothing else of the process is touched.
"""

from __future__ import annotations

import logging
import sys

say = logging.getLogger("condaqa.cli")
_LEVELS = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}


class _Lines(logging.StreamHandler):  # type: ignore[type-arg]
    def handleError(self, record: logging.LogRecord) -> None:
        """Raise what the write raised, as print() does: a reader gone away (`| head`) is cli.py's to handle,
        not a logging error printed on stderr for every line."""
        raise  # emit() calls this inside its except clause


def configure(verbosity: int) -> None:
    """-q (-1): warnings only; default (0): progress and notes; -v (1): details as well. Lines go to stdout
    as they come, in order with the results, without a prefix."""
    handler = _Lines(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    say.handlers[:] = [handler]
    say.propagate = False
    say.setLevel(_LEVELS[max(-1, min(1, verbosity))])

"""Waivers: a failure a site accepts for one environment, for a while ([ENV.waiver] in environments.toml).

A waiver lets a `failed` environment through the gate only until its last day, and only while the
failure is the one it names: every failed check has the waiver's category, and is one of its
checks when it names any. A new failure beside the accepted one, or another category, is not
covered. Nothing that did not run is ever waived (pending, partial, stale, missing, never): a
waiver is a decision about a failure someone has read. The verdict stays `failed`; the words
say who accepted it, why and until when, wherever the verdict is shown.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from condaqa.manifest import Environment
from condaqa.qualification.verdict import Standing
from condaqa.vocab import Verdict


@dataclass(frozen=True)
class Waived:
    """What an environment's waiver does for its verdict today."""

    covers: bool
    words: str  # "waived until ... by ...: why", or why it covers nothing now


def judge(env: Environment, found: Standing, today: datetime.date | None = None) -> Waived | None:
    """None when `env` has no waiver or nothing a waiver could cover."""
    waiver = env.waiver
    if waiver is None or found.verdict is not Verdict.FAILED or not found.failed:
        return None
    if (today or datetime.date.today()) > waiver.until:
        return Waived(False, f"its waiver expired {waiver.until} ({waiver.where})")
    other = [f"{check} [{category}]" for check, category in found.failed
             if category != waiver.category or (waiver.checks and check not in waiver.checks)]
    if other:
        accepted = str(waiver.category) + (f" of {', '.join(waiver.checks)}" if waiver.checks else "")
        return Waived(False, f"its waiver ({waiver.where}) accepts {accepted}, not {', '.join(other)}")
    return Waived(True, f"waived until {waiver.until} by {waiver.by}: {waiver.why}")

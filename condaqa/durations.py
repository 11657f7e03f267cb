"""Spans of time as administrators write them (`30d`, `14d`, `12h`, `90m`): one parser for options and site.toml."""

from __future__ import annotations

import re

_SPAN = re.compile(r"^\s*([0-9]+)\s*([dhm])\s*$")
_UNIT = {"d": 86400, "h": 3600, "m": 60}
_WORD = {"d": "day", "h": "hour", "m": "minute"}


def seconds(text: str) -> int:
    """`14d` as seconds; ValueError, in words, for anything else (a span must be a whole number of d, h or m)."""
    found = _SPAN.match(text)
    if found is None or int(found.group(1)) == 0:
        raise ValueError(f"{text!r} is not a span of time: write a positive whole number and d, h or m, as in 14d")
    return int(found.group(1)) * _UNIT[found.group(2)]


def words(text: str) -> str:
    """`14d` as `14 days`: for messages (the text must already be valid)."""
    found = _SPAN.match(text)
    if found is None:
        return text
    count, unit = int(found.group(1)), _WORD[found.group(2)]
    return f"{count} {unit}{'' if count == 1 else 's'}"

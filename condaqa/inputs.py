"""Foreign input, read with one policy: bounded size, text only, YAML without aliases, one set of
name rules, finite numbers, and no write or delete through a link that leaves the site.

Environment files, manifests, kernel specs and prefixes come from other people and other
machines; condaqa often runs as root on a production server. Every reader goes through here,
so a 363-byte YAML alias bomb, a binary file or a symlink planted in the site meets the same
clear refusal wherever it turns up.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import yaml

from condaqa.errors import CondaqaError, SiteError

TEXT_LIMIT = 4 << 20  # bytes: the largest environment export seen is 60 KiB
YAML_NODES = 200_000  # scalars, lists and mappings in one file; a 4 MiB export has about 100,000
YAML_DEPTH = 64
NAME_BYTES = 200  # conda's own limit is the file system's 255 bytes; condaqa names files <name>.<suffix>
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
_RESERVED = {"base", "root"}


def read_text(path: Path, what: str, error: type[CondaqaError], limit: int = TEXT_LIMIT) -> str:
    """The text of `path`, or `error` naming it: a folder, unreadable, too large, binary or not UTF-8.

    A missing file raises FileNotFoundError, so each caller can say how to name the right one.
    """
    if path.is_dir():
        raise error(f"{path}: is a folder, not {what}")
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror}") from None
    if len(data) > limit:
        raise error(f"{path}: larger than {limit >> 10} KiB, which no {what} needs; refusing to read it")
    if b"\0" in data:
        raise error(f"{path}: binary data, not {what} (text)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}), so not {what}") from None


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and stops at YAML_NODES nodes or YAML_DEPTH levels.

    conda's own environment files never use anchors or aliases; refusing them outright is what
    keeps a few hundred bytes from expanding into gigabytes.
    """

    nodes = 0
    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.MarkedYAMLError(problem="uses a YAML alias (*name); environment files never need "
                                       "anchors or aliases, so condaqa refuses them", problem_mark=mark)
        self.nodes += 1
        self.depth += 1
        if self.nodes > YAML_NODES or self.depth > YAML_DEPTH:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            limit = f"more than {YAML_NODES} nodes" if self.nodes > YAML_NODES else f"nested deeper than {YAML_DEPTH}"
            raise yaml.MarkedYAMLError(problem=f"is {limit}, more than any environment file", problem_mark=mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load_yaml(text: str, source: str, error: type[CondaqaError]) -> object:
    """Parse YAML safely and boundedly; `error` names `source` and the line of any problem."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{where}: not valid YAML: {problem}") from None
    finally:
        loader.dispose()


def name_problem(name: str) -> str | None:
    """Why `name` cannot be an environment, installation or kernel name (conda's rules, bounded), or None."""
    if not name:
        return "empty name"
    if len(name.encode("utf-8")) > NAME_BYTES:
        return f"longer than {NAME_BYTES} bytes"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if ".." in name:
        return "contains '..'"
    if any(c.isspace() for c in name):
        return "contains whitespace"
    if name.lower() in _RESERVED:
        return f"{name!r} is reserved for the base environment"
    if not _NAME.match(name):
        return "may only hold letters, digits and . _ + - (and not start with . + -)"
    return None


def control_character(text: str) -> str | None:
    """The first control character in `text` (a newline included), shown escaped, or None."""
    for char in text:
        if unicodedata.category(char) == "Cc":
            return repr(char)
    return None


def positive_number(value: object, maximum: float) -> float | None:
    """`value` as a finite number in (0, maximum], or None: nan, inf and 1e300 are not timeouts."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    if not math.isfinite(number) or number <= 0 or number > maximum:
        return None
    return number


def inside(path: Path, roots: Iterable[Path]) -> bool:
    """Whether `path`, every link on the way resolved, lies in one of `roots` (also resolved)."""
    real = Path(os.path.realpath(path))
    return any(real == root or root in real.parents for root in (Path(os.path.realpath(r)) for r in roots))


def guard(path: Path, roots: Iterable[Path], action: str) -> Path:
    """`path` if it resolves inside `roots`, else SiteError: nothing is written or deleted through a
    link that leaves the site."""
    roots = list(roots)
    if not inside(path, roots):
        where = " or ".join(str(r) for r in roots)
        raise SiteError(f"refusing to {action} {path}: it resolves to {os.path.realpath(path)}, outside {where}")
    return path

"""Foreign input, read with one policy: regular files only, a size cap per kind of file, text only,
JSON and TOML with a nesting cap, YAML without aliases or duplicate keys, one set of name rules,
finite numbers, credentials redacted, and no write or delete through a link that leaves the site.

Environment files, manifests, kernel specs and prefixes come from other people and other
machines; condaqa often runs as root on a production server. Every reader goes through here,
so a 363-byte YAML alias bomb, a FIFO, /dev/zero, a binary file or a symlink planted in the site
meets the same clear refusal wherever it turns up.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import sys
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import msgspec
import yaml

from condaqa.errors import CondaqaError, SiteError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

KiB, MiB = 1 << 10, 1 << 20
YAML_NODES = 200_000  # scalars, lists and mappings in one file; a 4 MiB export has about 100,000
NESTING = 64  # levels of YAML, JSON or TOML; conda's and Jupyter's files need fewer than 10
NAME_BYTES = 200  # conda's own limit is the file system's 255 bytes; condaqa names files <name>.<suffix>
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
_RESERVED = {"base", "root"}
T = TypeVar("T")


@dataclass(frozen=True)
class FileKind:
    """A kind of foreign file: what errors call it, the most bytes condaqa reads of one, and which files."""

    what: str
    limit: int
    files: str


SITE_FILE = FileKind("a site file", 1 * MiB, "site.toml")
MANIFEST = FileKind("a manifest", 1 * MiB, "environments.ini, environments.toml")
PACKAGE_LIST = FileKind("a list of package names", 1 * MiB, "legacy-noarch.txt")
ENVIRONMENT_FILE = FileKind("an environment file", 4 * MiB,
                            "environment files: overrides, `sanitize` input, exported specs (the largest export "
                            "seen is 60 KiB)")
RECORD = FileKind("a conda-meta record", 32 * MiB, "conda-meta/*.json records")
HISTORY = FileKind("a conda-meta/history", 32 * MiB, "conda-meta/history")
METADATA = FileKind("distribution metadata", 4 * MiB, "METADATA, PKG-INFO (a zipped egg's too)")
DIRECT_URL = FileKind("a PEP 610 direct_url.json", 1 * MiB, "direct_url.json")
PATH_FILE = FileKind("a list of paths or names", 1 * MiB, "easy-install.pth, *.egg-link, top_level.txt")
KERNEL_SPEC = FileKind("a kernel spec", 1 * MiB, "kernel.json")
CONDARC = FileKind("a .condarc", 1 * MiB, ".condarc of installations and users' homes")
ENVIRONMENTS_TXT = FileKind("an environments.txt", 1 * MiB, "~/.conda/environments.txt")
REPODATA = FileKind("a channel's repodata.json", 1024 * MiB,
                    "repodata.json of local channels (conda-forge's: about 250 MiB)")
ARCHIVE_MANIFEST = FileKind("an archive's manifest", 64 * MiB, "ROOT/archive/<installation>/<env>/manifest.json")
KINDS = (SITE_FILE, MANIFEST, PACKAGE_LIST, ENVIRONMENT_FILE, RECORD, HISTORY, METADATA, DIRECT_URL, PATH_FILE,
         KERNEL_SPEC, CONDARC, ENVIRONMENTS_TXT, REPODATA, ARCHIVE_MANIFEST)

_NOT_REGULAR = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _noun(what: str) -> str:
    """`what` without its article, for "which no site file needs"."""
    return re.sub(r"^(?:an?) ", "", what)


def size(limit: int) -> str:
    """A size cap in words: 4 MiB, 512 KiB."""
    return f"{limit // MiB} MiB" if limit >= MiB else f"{limit // KiB} KiB"


def _regular(path: Path, mode: int, what: str, error: type[CondaqaError]) -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _NOT_REGULAR if test(mode)), "not a regular file")
    raise error(f"{path}: is {kind}, not {what}; condaqa reads only regular files")


def open_regular(path: Path, what: str, error: type[CondaqaError]) -> BinaryIO:
    """`path` open for reading if it is a regular file (links followed), else `error` naming what it is.

    A FIFO blocks a reader forever, /dev/zero never ends, and some devices act when opened (a
    watchdog, a tape): the type is checked before opening, and again on the open file, opened
    with O_NONBLOCK so that a FIFO swapped in between cannot block the open either. A missing
    file raises FileNotFoundError, so each caller can say how to name the right one.
    """
    return os.fdopen(_open_regular_fd(path, what, error)[0], "rb")


def _open_regular_fd(path: Path, what: str, error: type[CondaqaError], listed_regular: bool = False) -> tuple[int, int]:
    """open_regular's descriptor, and the size the open file states. `listed_regular`: the listing of
    the folder (os.scandir's file type, which costs no call) says `path` is a regular file and not a
    link, which is the check before opening; a FIFO or a device planted there is listed as one."""
    try:
        if not listed_regular:
            _regular(path, os.stat(path).st_mode, what, error)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror}") from None
    try:
        opened = os.fstat(fd)
        _regular(path, opened.st_mode, what, error)
    except BaseException:
        os.close(fd)
        raise
    return fd, opened.st_size


def read_bytes(path: Path, kind: FileKind, error: type[CondaqaError], *, listed_regular: bool = False) -> bytes:
    """The bytes of a regular file of at most `kind.limit` bytes, else `error` naming it.

    Read from the descriptor, without a file object and its buffer: a quarter less time a record.
    """
    fd, stated = _open_regular_fd(path, kind.what, error, listed_regular)
    try:
        data = b"" if stated > kind.limit else _read_capped(fd, stated, kind.limit)
    finally:
        os.close(fd)
    if stated > kind.limit or len(data) > kind.limit:
        raise _too_large(path, kind, error)
    return data


def _read_capped(fd: int, stated: int, limit: int) -> bytes:
    """At most `limit` + 1 bytes of `fd`, to its end: the size it states and one byte more first (read(n)
    allocates n bytes: not the cap each time), then, if it holds more (it grew, or its file system
    states no size: procfs), the rest in growing chunks. A short read is read on from where it stopped."""
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        want = stated + 1 - total if total <= stated else max(total, 64 * KiB)
        chunk = os.read(fd, min(want, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def check_file(path: Path, kind: FileKind, error: type[CondaqaError]) -> None:
    """What read_bytes checks, without reading: for a file that a library reads (py-rattler's Gateway)."""
    with open_regular(path, kind.what, error) as handle:
        if os.fstat(handle.fileno()).st_size > kind.limit:
            raise _too_large(path, kind, error)


def _too_large(path: Path, kind: FileKind, error: type[CondaqaError]) -> CondaqaError:
    return error(f"{path}: larger than {size(kind.limit)}, which no {_noun(kind.what)} needs; refusing to read it")


def read_text(path: Path, kind: FileKind, error: type[CondaqaError]) -> str:
    """The UTF-8 text of `path` (a byte order mark dropped, as YAML readers do), else `error` naming it:
    not a regular file, too large, binary or not UTF-8."""
    return _text(path, read_bytes(path, kind, error), kind, error)


def _text(path: Path, data: bytes, kind: FileKind, error: type[CondaqaError]) -> str:
    """read_text's checks of bytes already read."""
    if b"\0" in data:
        raise error(f"{path}: binary data, not {kind.what} (text)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}), so not {kind.what}") from None


# TOML's strings (multi-line ones may end in up to two more quotes) and comments, where brackets are not structure.
_TOML_TEXT = re.compile(r'"""(?:\\[\s\S]|[^\\])*?"""(?!")|\'\'\'[\s\S]*?\'\'\'(?!\')'
                        r'|"(?:\\.|[^"\\\n])*"|\'[^\'\n]*\'|#[^\n]*')
_OTHER_THAN = {kept: bytes(b for b in range(256) if b not in kept) for kept in (b'[]{}"', b"[]{}")}
_CURLY = bytes.maketrans(b"[]", b"{}")


def _too_deep(brackets: bytes) -> bool:
    """Whether `brackets` (only []{} left) nest deeper than NESTING.

    Each pass drops the innermost pairs, in C, so a record's few levels cost a few passes; what
    is left after them (the deep part, or unclosed brackets) is measured one bracket at a time.
    """
    if len(brackets) <= NESTING:
        return False
    brackets, passes = brackets.translate(_CURLY), 0
    while passes < NESTING:
        fewer = brackets.replace(b"{}", b"")
        if len(fewer) == len(brackets):
            break
        brackets, passes = fewer, passes + 1
    depth = deepest = 0
    for bracket in brackets:
        depth += 1 if bracket == ord("{") else -1
        deepest = max(deepest, depth)
    return passes + deepest > NESTING


def _json_brackets(data: bytes) -> bytes:
    """The brackets of JSON `data` outside its strings, found with bytes methods (in C, a fraction of
    the parse): escaped backslashes and quotes dropped, then everything but brackets and quotes,
    then the strings (empty ones first: most are, once their text is gone)."""
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    syntax = data.translate(None, _OTHER_THAN[b'[]{}"']).replace(b'""', b"")
    return b"".join(syntax.split(b'"')[::2]) if b'"' in syntax else syntax


def _deep(source: str, what: str, error: type[CondaqaError]) -> CondaqaError:
    return error(f"{source}: nested deeper than {NESTING} levels, which no {_noun(what)} needs; refusing to parse it")


def _check_depth(text: str | bytes, source: str, what: str, error: type[CondaqaError]) -> None:
    """The nesting cap, before any parser recurses. msgspec, like json, recurses once per level and
    stops at the interpreter's recursion limit (1,000 to 10,000 levels by Python version) with a
    RecursionError, which is no message; in a thread of small stack, Python 3.13 crashes before it."""
    if _too_deep(_json_brackets(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)):
        raise _deep(source, what, error)


def _parse_json(text: str | bytes, source: str, what: str, error: type[CondaqaError]) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise error(f"{source}: not valid JSON, so not {what}: {exc}") from None


def load_json(text: str | bytes, source: str, what: str, error: type[CondaqaError]) -> Any:
    """Parse JSON with the nesting cap, checked before json recurses once per level (200,000 `[` would
    end in a RecursionError instead of a message); `error` names `source`."""
    _check_depth(text, source, what, error)
    return _parse_json(text, source, what, error)


def read_json(path: Path, kind: FileKind, error: type[CondaqaError]) -> Any:
    """A JSON file of `kind`, read and parsed with every cap."""
    return load_json(read_text(path, kind, error), str(path), kind.what, error)


def load_json_as(text: str | bytes, source: str, what: str, error: type[CondaqaError],
                 decoder: msgspec.json.Decoder[T]) -> T:
    """load_json's caps, then `text` decoded straight into the decoder's type: only the fields it names
    are built, their types checked in C as they are (most of a conda-meta record, its paths_data, is
    skipped unbuilt). msgspec refuses what the json module conda writes with reads (NaN, the lone
    surrogates of a file name that is not UTF-8): such text is parsed by json, then checked the same way."""
    _check_depth(text, source, what, error)
    try:
        return decoder.decode(text)
    except msgspec.ValidationError as exc:
        invalid = exc
    except msgspec.DecodeError:
        try:
            converted: T = msgspec.convert(_parse_json(text, source, what, error), decoder.type)
            return converted
        except msgspec.ValidationError as exc:
            invalid = exc
    raise error(f"{source}: not {what}: {invalid}")


def read_json_as(path: Path, kind: FileKind, error: type[CondaqaError], decoder: msgspec.json.Decoder[T], *,
                 listed_regular: bool = False) -> T:
    """A JSON file of `kind` decoded into the decoder's type, with every cap. ASCII text, the usual
    kind, goes to the decoder as it was read: ASCII holds no byte order mark and is UTF-8 already."""
    data = read_bytes(path, kind, error, listed_regular=listed_regular)
    text = data if data.isascii() and b"\0" not in data else _text(path, data, kind, error)
    return load_json_as(text, str(path), kind.what, error, decoder)


def load_toml(text: str, source: str, what: str, error: type[CondaqaError]) -> dict[str, Any]:
    """Parse TOML with the nesting cap, checked before tomllib recurses once per level; `error` names
    `source` and tomllib's line and column."""
    structure = _TOML_TEXT.sub("", text).encode("utf-8", "surrogatepass")
    if _too_deep(structure.translate(None, _OTHER_THAN[b"[]{}"])):
        raise _deep(source, what, error)
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{source}: {exc}") from None
    return data


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and duplicate keys, and stops at YAML_NODES nodes or NESTING levels.

    conda's own environment files never use anchors or aliases; refusing them outright is what
    keeps a few hundred bytes from expanding into gigabytes. A key given twice would silently
    drop the first value (a whole dependency list); conda's loader refuses it, and so does this one.
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
        if self.nodes > YAML_NODES or self.depth > NESTING:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            limit = f"more than {YAML_NODES} nodes" if self.nodes > YAML_NODES else f"nested deeper than {NESTING}"
            raise yaml.MarkedYAMLError(problem=f"is {limit}, more than any environment file", problem_mark=mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable: the constructor below refuses it, with its own mark
                continue
            if duplicate:
                raise yaml.MarkedYAMLError(problem=f"duplicate key {str(key)[:80]!r}; the first value would be "
                                           "dropped", problem_mark=key_node.start_mark)
        return super().construct_mapping(node, deep)


def load_yaml(text: str, source: str, error: type[CondaqaError]) -> object:
    """Parse YAML safely and boundedly; `error` names `source` and the line of any problem."""
    try:
        loader = _BoundedLoader(text)  # its reader already refuses control characters
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{where}: not valid YAML: {problem}") from None


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_USERINFO = re.compile(r"^(?P<scheme>[^:/]+://)(?P<info>[^/@?#]*)@")
_TOKEN_PATH = re.compile(r"/t/[^/]+/")  # anaconda.org and conda's channel tokens
_SECRET_QUERY = re.compile(r"(?P<key>[?&][^=&#]*(?:token|passw|secret|key|auth|sig|credential)[^=&#]*=)[^&#]*",
                           re.IGNORECASE)


def _masked(info: re.Match[str]) -> str:
    """`user:password@` keeps the user; a lone user is as often a token (`ghp_...@github.com`)."""
    user, colon, _ = info["info"].partition(":")
    return f"{info['scheme']}{user + ':****' if colon else '****'}@"


def _redacted_url(match: re.Match[str]) -> str:
    url = _USERINFO.sub(_masked, match.group(0), count=1)
    return _SECRET_QUERY.sub(r"\g<key>****", _TOKEN_PATH.sub("/t/****/", url))


def redact(text: str) -> str:
    """`text` with the credentials of every URL in it masked, as pip masks them: `user:****@`, a lone
    user or token `****@`, a `/t/<token>/` path segment and `?token=`-like query values.

    Site files and owners' specs carry them (an index URL with a password in pip_args, a channel
    token); every report, log, result, export and line condaqa prints goes through here.
    """
    return _URL.sub(_redacted_url, text)


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

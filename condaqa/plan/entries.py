"""Entries of an environment file: conda match specs and pip requirement lines, parsed once.

The pip section of an environment file is a requirements file in YAML clothing: besides
`name==version` it holds option lines (`--extra-index-url URL`), VCS and archive URLs,
`name @ url`, local paths, `-e` editables and, from conda 4.3-4.5 exports, `name (path)==version`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import rattler
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from rattler.exceptions import InvalidMatchSpecError

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"  # a distribution name, where a URL or path holds one
_OLD_EDITABLE = re.compile(rf"^(?P<name>{_NAME}) \((?P<path>[^)]+)\)==(?P<version>\S+)$")  # conda 4.3-4.5
_EGG = re.compile(r"[#&]egg=([^&]+)")
CONDA_NAME = re.compile(r"^[a-z0-9_][a-z0-9_.+-]*$")
# What a conda match spec may hold (name, version, build, channel, brackets); `;`, `$`, `&`, backquotes,
# parentheses and the like never appear in one, only in something meant for a shell.
_CONDA_SPEC = re.compile(r"^[A-Za-z0-9_.\-+*=<>!,|~\[\]'\" :/@]+$")
VCS_SCHEMES = ("git+", "hg+", "svn+", "bzr+")
_URL_SCHEMES = (*VCS_SCHEMES, "http://", "https://", "file:")


@dataclass(frozen=True)
class PipEntry:
    """One line of a pip section. `name` is empty only for option lines."""

    text: str
    name: str = ""
    version: str = ""  # the exact pin of `name==version`, else ""
    url: str = ""  # a VCS URL, archive URL or local path to install from
    editable: bool = False
    option: bool = False

    @property
    def key(self) -> str:
        return canonicalize_name(self.name) if self.name else ""

    @property
    def vcs(self) -> bool:
        return self.url.startswith(VCS_SCHEMES)

    @property
    def pinned(self) -> bool:
        return bool(self.version) or bool(self.url)


def parse_pip(text: str) -> PipEntry | None:
    """A pip section line as pip would read it from a requirements file; None if pip would refuse it."""
    line = text.strip()
    if line.startswith("-e ") or line.startswith("--editable "):
        target = line.split(None, 1)[1].strip()
        return PipEntry(line, _name_of_url(target), url=target, editable=True)
    if line.startswith("-"):
        return PipEntry(line, option=True)
    old = _OLD_EDITABLE.match(line)
    if old:
        return PipEntry(line, old["name"], old["version"], url=old["path"], editable=True)
    if line.startswith(_URL_SCHEMES) or line.startswith(("/", "./", "../", "~")):
        return PipEntry(line, _name_of_url(line), url=line)
    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        return None
    if requirement.url:
        return PipEntry(line, requirement.name, url=requirement.url)
    pins = list(requirement.specifier)
    exact = len(pins) == 1 and pins[0].operator == "==" and not pins[0].version.endswith("*")
    return PipEntry(line, requirement.name, pins[0].version if exact else "")


def _name_of_url(url: str) -> str:
    egg = _EGG.search(url)
    if egg:
        return egg.group(1)
    tail = url.split("#")[0].rstrip("/").rsplit("/", 1)[-1].split("@")[0]
    return re.sub(r"\.git$", "", tail) if re.fullmatch(_NAME + r"(\.git)?", tail) else ""


_ALIASES = {"-r": "--requirement", "-c": "--constraint", "-i": "--index-url", "-f": "--find-links", "-t": "--target",
            "-b": "--build", "--log-file": "--log"}
_READS_FILE = ("--requirement", "--constraint")
_ADDS_INDEX = ("--index-url", "--extra-index-url", "--find-links", "--trusted-host", "--no-index")
_HARMLESS = ("--pre", "--prefer-binary", "--only-binary", "--no-binary", "--require-hashes")
# Options that make pip write (or install) where their value says; run as root, anywhere on the machine.
_WRITES_PATH = ("--log", "--report", "--target", "--prefix", "--root", "--src", "--cache-dir", "--build")


@dataclass(frozen=True)
class PipOption:
    """An option line of a pip section (`--extra-index-url URL`), or one option of the site's pip_args."""

    name: str  # the long form: -r is --requirement
    value: str = ""

    @property
    def reads_file(self) -> bool:
        return self.name in _READS_FILE

    @property
    def adds_index(self) -> bool:
        return self.name in _ADDS_INDEX

    @property
    def harmless(self) -> bool:
        return self.name in _HARMLESS

    @property
    def writes_path(self) -> bool:
        return self.name in _WRITES_PATH

    @classmethod
    def of(cls, line: str) -> PipOption | None:
        """The option of a requirements line, or None for a requirement (an editable `-e` included)."""
        text = line.strip()
        if not text.startswith("-") or text.startswith(("-e ", "-e=", "--editable")):
            return None
        head, _, rest = text.partition("=") if text.startswith("--") and "=" in text.split()[0] else text.partition(" ")
        if not text.startswith("--") and len(head) > 2:  # -rfile
            head, rest = head[:2], head[2:]
        return cls(_ALIASES.get(head, head), rest.strip())

    @classmethod
    def all_in(cls, args: tuple[str, ...]) -> list[PipOption]:
        """The options of a pip command line (pip_args): `--opt value`, `--opt=value` or `-oVALUE`."""
        found, pending = [], ""
        for arg in args:
            if pending:
                found.append(cls(pending, arg))
                pending = ""
            elif arg.startswith("--") and "=" in arg:
                name, _, value = arg.partition("=")
                found.append(cls(_ALIASES.get(name, name), value))
            elif arg.startswith("-") and not arg.startswith("--") and len(arg) > 2:
                found.append(cls(_ALIASES.get(arg[:2], arg[:2]), arg[2:]))
            elif arg.startswith("-"):
                name = _ALIASES.get(arg, arg)
                if name in (*_READS_FILE, *_ADDS_INDEX, *_WRITES_PATH) and name != "--no-index":
                    pending = name
                else:
                    found.append(cls(name))
        return found


def local_path(url: str) -> Path | None:
    """The directory or file a pip URL points at on this machine, or None for remote sources.

    Anything without a scheme is a path, `.` and `src` (an editable `-e src`) as much as `./pkg`.
    """
    target = url[len("git+"):] if url.startswith("git+file:") else url
    if target.startswith("file:"):
        return Path(unquote(urlparse(target).path.split("@")[0]))
    if "://" in target or target.startswith(VCS_SCHEMES) or not target:
        return None
    return Path(target).expanduser()


@dataclass(frozen=True)
class CondaEntry:
    """One conda dependency: its package name and match spec, parsed by rattler."""

    text: str
    name: str
    version: str  # the version part of the spec ("" when unconstrained)
    build: str


def parse_conda(text: str) -> CondaEntry | None:
    """`name`, `name=1.2`, `name=1.2=build`, `name >=1.2`, `channel::name=1.2`; None if conda would refuse it."""
    if not _CONDA_SPEC.match(text.strip()):
        return None
    try:
        spec = rattler.MatchSpec(text.strip())
    except InvalidMatchSpecError:  # a spec without a name too
        return None
    return CondaEntry(text.strip(), spec.name.normalized, str(spec.version or ""), str(spec.build or ""))


def without_build(entry: CondaEntry) -> str:
    """The entry as `name=version` (the `--no-builds` form), keeping a channel prefix if it had one."""
    head = entry.text.split("::")[0] + "::" if "::" in entry.text else ""
    version = entry.version.removeprefix("==")
    if not version:
        return head + entry.name
    if version[0] in "<>!~=" or " " in version or "," in version:
        return f"{head}{entry.name} {version}"
    return f"{head}{entry.name}={version}"

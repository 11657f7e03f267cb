"""The manifest: which environments to replicate or only export, and what their owners said."""

from __future__ import annotations

import configparser
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from condaqa.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

REPLICATE = "replicate"
EXPORT = "export"
DISPOSITIONS = (REPLICATE, EXPORT)
STRATEGIES = ("pins", "history")

# conda refuses names with path separators, spaces, ':' or '#'; stay within what is portable.
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
_RESERVED = {"base", "root"}


@dataclass(frozen=True)
class Environment:
    name: str
    disposition: str
    line: int
    owner: str = ""
    imports: tuple[str, ...] | None = None
    kernel: str = ""
    pip_args: tuple[str, ...] = ()
    timeout: float = 600.0
    strategy: str = "pins"

    @property
    def replicate(self) -> bool:
        return self.disposition == REPLICATE


def name_problem(name: str) -> str | None:
    """Why conda would refuse `name` as an environment name, or None."""
    if not name:
        return "empty name"
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


def load_manifest(ini: Path, toml: Path | None = None) -> list[Environment]:
    """Read environments.ini and, if present, environments.toml beside it."""
    entries = _read_ini(ini)
    toml = toml if toml is not None else ini.with_suffix(".toml")
    extras = _read_toml(toml, {e.name for e in entries}) if toml.is_file() else {}
    return [_with_extras(e, extras.get(e.name, {})) for e in entries]


def _line_of(lines: list[str], key: str, start: int = 0) -> int:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*[=:]")
    for number, line in enumerate(lines[start:], start + 1):
        if pattern.match(line):
            return number
    return 0


def _read_ini(path: Path) -> list[Environment]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: manifest not found") from None
    parser = configparser.ConfigParser(
        interpolation=None, delimiters=("=",), comment_prefixes=("#", ";"), inline_comment_prefixes=("#",)
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # environment names are case-sensitive
    try:
        parser.read_string(text, source=str(path))
    except configparser.DuplicateOptionError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: environment {exc.option!r} is listed twice") from None
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: expected an [environments] section first") from None
    except configparser.Error as exc:
        raise ConfigError(f"{path}: {exc.message}") from None
    others = [s for s in parser.sections() if s != "environments"]
    if others:
        raise ConfigError(f"{path}: unknown section [{others[0]}]; only [environments] is allowed")
    if not parser.has_section("environments"):
        raise ConfigError(f"{path}: missing [environments] section")
    lines = text.splitlines()
    section_start = _section_line(lines)
    entries = []
    for name, value in parser.items("environments"):
        line = _line_of(lines, name, section_start)
        problem = name_problem(name)
        if problem:
            raise ConfigError(f"{path}:{line}: bad environment name {name!r}: {problem}")
        disposition = value.strip().lower()
        if disposition not in DISPOSITIONS:
            raise ConfigError(
                f"{path}:{line}: {name} = {value!r}: expected REPLICATE or export"
            )
        entries.append(Environment(name, disposition, line))
    return entries


def _section_line(lines: list[str]) -> int:
    for number, line in enumerate(lines):
        if line.strip().lower() == "[environments]":
            return number
    return 0


_TOML_KEYS: dict[str, type | tuple[type, ...]] = {
    "owner": str,
    "imports": list,
    "kernel": str,
    "pip_args": list,
    "timeout": (int, float),
    "strategy": str,
}


def _read_toml(path: Path, known: set[str]) -> dict[str, dict]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    lines = path.read_text(encoding="utf-8").splitlines()
    for name, table in data.items():
        line = _table_line(lines, name)
        where = f"{path}:{line}" if line else str(path)
        if name not in known:
            raise ConfigError(f"{where}: [{name}] is not an environment listed in the manifest")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {name} must be a table ([{name}])")
        for key, value in table.items():
            kind = _TOML_KEYS.get(key)
            if kind is None:
                raise ConfigError(f"{where}: [{name}] unknown key {key!r}; known: {', '.join(_TOML_KEYS)}")
            bad_list = isinstance(value, list) and not all(isinstance(v, str) for v in value)
            if not isinstance(value, kind) or isinstance(value, bool) or bad_list:
                raise ConfigError(f"{where}: [{name}] {key} has the wrong type: {value!r}")
        if table.get("strategy", "pins") not in STRATEGIES:
            raise ConfigError(f"{where}: [{name}] strategy must be one of {', '.join(STRATEGIES)}")
        if table.get("timeout", 1) <= 0:
            raise ConfigError(f"{where}: [{name}] timeout must be positive")
    return data


def _table_line(lines: list[str], name: str) -> int:
    for number, line in enumerate(lines, 1):
        if line.strip() in (f"[{name}]", f'["{name}"]'):
            return number
    return 0


def _with_extras(env: Environment, extra: dict) -> Environment:
    imports = extra.get("imports")
    return Environment(
        name=env.name,
        disposition=env.disposition,
        line=env.line,
        owner=extra.get("owner", ""),
        imports=tuple(imports) if imports is not None else None,
        kernel=extra.get("kernel", ""),
        pip_args=tuple(extra.get("pip_args", ())),
        timeout=float(extra.get("timeout", 600.0)),
        strategy=extra.get("strategy", "pins"),
    )


def starter_ini(rows: list[tuple[str, str]]) -> str:
    """A starter environments.ini: every environment `export`, with a comment of facts each."""
    out = ["# Generated by `condaqa inventory --ini`: change export to REPLICATE for what must move.", "[environments]"]
    for name, comment in rows:
        out.append(f"# {comment}")
        out.append(f"{name} = export")
    return "\n".join(out) + "\n"

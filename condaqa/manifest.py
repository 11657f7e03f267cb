"""The manifest: which environments to replicate or only export, and what their owners said."""

from __future__ import annotations

import configparser
import datetime
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from condaqa.errors import ConfigError
from condaqa.inputs import MANIFEST, load_toml, name_problem, positive_number, read_text
from condaqa.site import Site
from condaqa.vocab import Category, Disposition, Strategy

MAX_TIMEOUT = 7 * 24 * 3600.0  # seconds: a week is more than any check needs
DEFAULT_TIMEOUT = 600.0
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_NO_DEFAULT = "\0no default section"  # configparser's [DEFAULT] would copy its keys into every section


@dataclass(frozen=True)
class Waiver:
    """A failure the site accepts for one environment, for a while: the gate lets it through while it lasts and
    the failure stays exactly this one (qualification/waivers.py decides)."""

    category: Category  # the failure accepted
    checks: tuple[str, ...]  # the failed checks it covers; empty: any that fails with that category
    why: str
    by: str
    until: datetime.date  # the last day it holds
    where: str  # file:line of the waiver, for the reports


@dataclass(frozen=True)
class Environment:
    name: str
    disposition: Disposition
    line: int
    owner: str = ""
    imports: tuple[str, ...] | None = None
    kernel: str = ""
    pip_args: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    strategy: Strategy = Strategy.PINS
    local_sources: bool = False  # pip installs from folders and archives on this machine are allowed
    where: str = ""  # file:line of its facts in environments.toml, for errors about them
    waiver: Waiver | None = None

    @property
    def replicate(self) -> bool:
        return self.disposition is Disposition.REPLICATE


def load_manifest(ini: Path, toml: Path | None = None) -> list[Environment]:
    """Read environments.ini and, if present, environments.toml beside it."""
    entries = _read_ini(ini)
    toml = toml if toml is not None else ini.with_suffix(".toml")
    extras = _read_toml(toml, {e.name for e in entries}) if toml.exists() else {}
    return [_with_extras(e, *extras.get(e.name, ({}, ""))) for e in entries]


def site_manifest(site: Site) -> list[Environment]:
    """The site's manifest, less the environments its demo was built without (Site.left_out says why)."""
    left_out = site.left_out()
    return [e for e in load_manifest(site.manifest) if e.name not in left_out]


def _line_of(lines: list[str], key: str, start: int = 0) -> int:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*[=:]")
    for number, line in enumerate(lines[start:], start + 1):
        if pattern.match(line):
            return number
    return 0


def _read_ini(path: Path) -> list[Environment]:
    try:
        text = read_text(path, MANIFEST, ConfigError)
    except FileNotFoundError:
        raise ConfigError(f"{path}: manifest not found") from None
    parser = configparser.ConfigParser(
        interpolation=None, delimiters=("=",), comment_prefixes=("#", ";"), inline_comment_prefixes=("#",),
        default_section=_NO_DEFAULT,
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # environment names are case-sensitive
    try:
        parser.read_string(text, source=str(path))
    except configparser.DuplicateOptionError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: environment {exc.option!r} is listed twice") from None
    except configparser.DuplicateSectionError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: section [{exc.section}] appears twice") from None
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: expected an [environments] section first") from None
    except configparser.Error as exc:
        raise ConfigError(f"{path}: {exc.message}") from None
    lines = text.splitlines()
    others = [s for s in parser.sections() if s != "environments"]
    if others:
        line = next((n for n, text in enumerate(lines, 1) if text.strip() == f"[{others[0]}]"), 0)
        raise ConfigError(f"{path}:{line}: unknown section [{others[0]}]; only [environments] is allowed")
    if not parser.has_section("environments"):
        raise ConfigError(f"{path}: missing [environments] section")
    section_start = _section_line(lines)
    entries = []
    for name, value in parser.items("environments"):
        line = _line_of(lines, name, section_start)
        problem = name_problem(name)
        if problem:
            raise ConfigError(f"{path}:{line}: bad environment name {name[:80]!r}: {problem}")
        try:
            disposition = Disposition(value.strip().lower())
        except ValueError:
            raise ConfigError(f"{path}:{line}: {name} = {value[:80]!r}: expected REPLICATE or export") from None
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
    "local_sources": bool,
    "waiver": dict,
}
_WAIVER_KEYS = ("category", "checks", "why", "by", "until")


def _read_toml(path: Path, known: set[str]) -> dict[str, tuple[dict[str, Any], str]]:
    """environment -> (its table, "file:line" of the table)."""
    text = read_text(path, MANIFEST, ConfigError)
    data = load_toml(text, str(path), MANIFEST.what, ConfigError)
    lines = text.splitlines()
    out: dict[str, tuple[dict[str, Any], str]] = {}
    for name, table in data.items():
        line = _table_line(lines, name)
        where = f"{path}:{line}" if line else str(path)
        if name not in known:
            raise ConfigError(f"{where}: [{name[:80]}] is not an environment listed in the manifest")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {name} must be a table ([{name}])")
        for key, value in table.items():
            key_where = _key_where(path, lines, line, key) or _sub_table_where(path, lines, name, key) or where
            _check_value(key_where, name, key, value)
            if key == "waiver":
                table = {**table, "waiver": _waiver(key_where, name, value)}
        out[name] = (table, where)
    return out


def _sub_table_where(path: Path, lines: list[str], name: str, key: str) -> str:
    line = _table_line(lines, f"{name}.{key}")
    return f"{path}:{line}" if line else ""


def _waiver(where: str, name: str, table: dict[str, Any]) -> Waiver:
    """[ENV.waiver]: category, why, by and until (a date) are required; checks narrows it to named checks."""
    unknown = sorted(set(table) - set(_WAIVER_KEYS))
    missing = [key for key in _WAIVER_KEYS if key not in table and key != "checks"]
    if unknown or missing:
        said = f"unknown key(s) {', '.join(unknown)}" if unknown else f"missing {', '.join(missing)}"
        raise ConfigError(f"{where}: [{name}.waiver] {said}; a waiver has {', '.join(_WAIVER_KEYS)} "
                          "(checks is optional)")
    failures = [str(c) for c in Category]
    if table["category"] not in failures:
        raise ConfigError(f"{where}: [{name}.waiver] category = {str(table['category'])[:80]!r} is not a failure "
                          f"category; one of {', '.join(failures)}")
    checks = table.get("checks", [])
    if not isinstance(checks, list) or not all(isinstance(c, str) and c for c in checks):
        raise ConfigError(f"{where}: [{name}.waiver] checks must be a list of check ids, such as \"imports\" or "
                          f"\"owner:{name}/check_x.py\"")
    for key in ("why", "by"):
        if not isinstance(table[key], str) or not table[key].strip():
            raise ConfigError(f"{where}: [{name}.waiver] {key} must say something: a waiver is a decision someone "
                              "took, for a reason")
    until = table["until"]
    if isinstance(until, datetime.datetime) or not isinstance(until, datetime.date):
        raise ConfigError(f"{where}: [{name}.waiver] until must be a date, such as 2027-01-31 (no quotes), "
                          f"got {until!r}")
    return Waiver(Category(table["category"]), tuple(checks), table["why"].strip(), table["by"].strip(), until, where)


def _key_where(path: Path, lines: list[str], table_line: int, key: str) -> str:
    line = _line_of(lines, key, table_line) if table_line else 0
    return f"{path}:{line}" if line else ""


def _check_value(where: str, name: str, key: str, value: object) -> None:
    kind = _TOML_KEYS.get(key)
    if kind is None:
        raise ConfigError(f"{where}: [{name}] unknown key {key!r}; known: {', '.join(_TOML_KEYS)}")
    bad_list = isinstance(value, list) and not all(isinstance(v, str) for v in value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool) or bad_list:
        raise ConfigError(f"{where}: [{name}] {key} has the wrong type: {value!r}")
    if key == "strategy" and value not in tuple(Strategy):
        raise ConfigError(f"{where}: [{name}] strategy must be one of {', '.join(Strategy)}")
    if key == "timeout" and positive_number(value, MAX_TIMEOUT) is None:
        raise ConfigError(f"{where}: [{name}] timeout must be a positive number of seconds up to "
                          f"{MAX_TIMEOUT:.0f}, got {value!r}")
    if key == "imports":
        assert isinstance(value, list)
        for module in value:
            if not _MODULE.match(module):
                raise ConfigError(f"{where}: [{name}] imports: {module[:80]!r} is not a module name "
                                  "(dotted Python identifiers, such as pkg.sub)")


def _table_line(lines: list[str], name: str) -> int:
    for number, line in enumerate(lines, 1):
        if line.strip() in (f"[{name}]", f'["{name}"]'):
            return number
    return 0


def _with_extras(env: Environment, extra: dict[str, Any], where: str) -> Environment:
    imports = extra.get("imports")
    return Environment(
        name=env.name,
        disposition=env.disposition,
        line=env.line,
        owner=extra.get("owner", ""),
        imports=tuple(imports) if imports is not None else None,
        kernel=extra.get("kernel", ""),
        pip_args=tuple(extra.get("pip_args", ())),
        timeout=float(extra.get("timeout", DEFAULT_TIMEOUT)),
        strategy=Strategy(extra.get("strategy", Strategy.PINS)),
        local_sources=bool(extra.get("local_sources", False)),
        where=where,
        waiver=extra.get("waiver"),
    )


def starter_ini(rows: list[tuple[str, str]], replicate: Collection[str] = ()) -> str:
    """A starter environments.ini: `replicate` REPLICATE (proposed from their use), every other environment
    `export`, with a comment of facts each (its lines as they come)."""
    out = ["# Generated by `condaqa inventory --ini`: change export to REPLICATE for what must move.", "[environments]"]
    for name, comment in rows:
        out += [f"# {line}" for line in comment.splitlines()]
        out.append(f"{name} = {'REPLICATE' if name in replicate else 'export'}")
    return "\n".join(out) + "\n"

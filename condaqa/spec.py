"""The environment spec in conda's env format: read any environment file, write exports.

An export comes straight from the prefix (prefix.py), never from the old conda: conda
entries as `name=version` (no build strings), a `pip:` list of `name==version` for the
distributions no conda record owns, and no `prefix:` line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from condaqa import atomic
from condaqa.errors import PrefixError, SpecError
from condaqa.prefix import PrefixContents, is_environment, normalize, read_prefix
from condaqa.site import Site

KNOWN_KEYS = ("name", "channels", "dependencies", "variables", "prefix")


@dataclass
class EnvSpec:
    name: str
    channels: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    pip: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    prefix: str = ""
    extra: dict = field(default_factory=dict)  # top-level keys conda does not define

    def to_dict(self) -> dict:
        deps: list = list(self.dependencies)
        if self.pip:
            deps.append({"pip": list(self.pip)})
        out: dict = {"name": self.name, "channels": list(self.channels), "dependencies": deps}
        if self.variables:
            out["variables"] = dict(self.variables)
        return out


class _Dumper(yaml.SafeDumper):
    """Indent sequences under their key, as conda env export does since 4.8."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def dump_spec(spec: EnvSpec) -> str:
    return yaml.dump(spec.to_dict(), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)


def write_spec(path: Path, spec: EnvSpec) -> None:
    atomic.write_text(path, dump_spec(spec))


def load_spec(path: Path) -> EnvSpec:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_spec(text, str(path), default_name=path.stem)


def parse_spec(text: str, source: str, default_name: str = "") -> EnvSpec:
    """Parse an environment file's text; `source` names it in every error."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{source}: not a conda environment file (expected a mapping with 'dependencies', got {_kind(data)})")
    if "dependencies" not in data:
        raise SpecError(f"{source}: not a conda environment file: no 'dependencies' list")
    deps = data.get("dependencies") or []
    if not isinstance(deps, list):
        raise SpecError(f"{source}: 'dependencies' must be a list")
    conda, pip = _split_dependencies(deps, source)
    channels = data.get("channels") or []
    if not isinstance(channels, list) or not all(isinstance(c, (str, int, float)) for c in channels):
        raise SpecError(f"{source}: 'channels' must be a list of channel names or URLs")
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise SpecError(f"{source}: 'variables' must be a mapping")
    name = data.get("name")
    return EnvSpec(
        name=str(name) if name not in (None, "") else default_name,
        channels=[str(c) for c in channels],
        dependencies=conda,
        pip=pip,
        variables={str(k): str(v) for k, v in variables.items()},
        prefix=str(data.get("prefix") or ""),
        extra={k: v for k, v in data.items() if k not in KNOWN_KEYS},
    )


def _kind(value: object) -> str:
    return "plain text" if isinstance(value, str) else type(value).__name__


def _split_dependencies(deps: list, source: str) -> tuple[list[str], list[str]]:
    conda: list[str] = []
    pip: list[str] = []
    for number, entry in enumerate(deps, 1):
        if isinstance(entry, dict):
            if set(entry) != {"pip"} or not isinstance(entry["pip"], list):
                raise SpecError(f"{source}: dependency {number} is a mapping other than '- pip: [...]': {entry!r}")
            pip.extend(str(p) for p in entry["pip"] if p is not None)
        elif isinstance(entry, (str, int, float)):
            conda.append(str(entry).strip())
        elif entry is not None:
            raise SpecError(f"{source}: dependency {number} is not a package spec: {entry!r}")
    return conda, pip


def canonical_channel(url: str, site_names: dict[str, str]) -> str:
    """The name conda would show for a channel URL: the site's name for it, else conda's rule."""
    url = url.rstrip("/")
    if url in site_names:
        return site_names[url]
    for prefix in ("https://conda.anaconda.org/", "http://conda.anaconda.org/"):
        if url.startswith(prefix):
            return url[len(prefix):]
    if url.startswith(("https://repo.anaconda.com/pkgs/", "http://repo.anaconda.com/pkgs/")):
        return "defaults"
    return url


def spec_from_prefix(name: str, contents: PrefixContents, site_channels: dict[str, str]) -> EnvSpec:
    """Export `contents` as conda env export --no-builds would, pip section included.

    `site_channels` maps each site channel URL to its name, in priority order.
    """
    used = []
    for package in contents.conda:
        channel = canonical_channel(package.channel, site_channels) if package.channel else ""
        if channel and channel not in used:
            used.append(channel)
    ordered = [n for n in site_channels.values() if n in used]
    ordered += [c for c in used if c not in ordered]
    ordered += [n for n in site_channels.values() if n not in ordered]
    deps = [f"{p.name}={p.version}" for p in contents.conda]
    pip = [f"{d.name}=={d.version}" for d in sorted(contents.pip, key=lambda d: normalize(d.name))]
    return EnvSpec(name=name, channels=ordered, dependencies=deps, pip=pip)


def site_channel_names(site: Site) -> dict[str, str]:
    return {url: name for name, url in zip(site.channels, site.channel_urls())}


def export_environment(site: Site, name: str) -> EnvSpec:
    """The spec of environment `name` as it is in `current`, read from its prefix."""
    prefix = site.installation(site.current_name).env_prefix(name)
    if not is_environment(prefix):
        raise PrefixError(f"{prefix}: environment {name!r} does not exist in {site.current}")
    return spec_from_prefix(name, read_prefix(prefix), site_channel_names(site))


def spec_path(site: Site, name: str) -> Path:
    return site.specs_dir / f"{name}.yml"

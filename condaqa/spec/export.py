"""Exports: an environment's spec read straight from its prefix, never from the old conda.

conda entries as `name=version` (no build strings), a `pip:` list of `name==version` for the
distributions no conda record owns, and no `prefix:` line; or, `--from-history`, the specs the
users asked for (conda-meta/history) with the same pip section.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from condaqa import atomic
from condaqa.errors import PrefixError
from condaqa.prefix import PrefixContents, is_environment, normalize, read_history, read_prefix, requested_specs
from condaqa.site import Site
from condaqa.spec.format import EnvSpec, dump_spec

EDITED_MARK = "# written by condaqa export; edits go to manifests/overrides/, not here; digest "


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


def _current_prefix(site: Site, name: str) -> Path:
    prefix = site.current_installation().env_prefix(name)
    if not is_environment(prefix):
        raise PrefixError(f"{prefix}: environment {name!r} does not exist in {site.current_link}")
    return prefix


def export_environment(site: Site, name: str) -> EnvSpec:
    """The spec of environment `name` as it is in `current`, read from its prefix."""
    return spec_from_prefix(name, read_prefix(_current_prefix(site, name)), site_channel_names(site))


def export_from_history(site: Site, name: str) -> EnvSpec:
    """`conda env export --from-history` read from the prefix: the specs users asked for, plus the pip section."""
    prefix = _current_prefix(site, name)
    contents = read_prefix(prefix)
    wanted = requested_specs(read_history(prefix), {p.name for p in contents.conda})
    if not wanted:
        raise PrefixError(f"{prefix}/conda-meta/history records no requested specs (environments made by "
                          'rattler or pixi leave it empty); use strategy = "pins" for it')
    spec = spec_from_prefix(name, contents, site_channel_names(site))
    spec.dependencies = list(wanted.values())
    return spec


def spec_path(site: Site, name: str) -> Path:
    return site.specs_dir / f"{name}.yml"


def history_spec_path(site: Site, name: str) -> Path:
    """Where `export --from-history` writes: beside the pinned exports, never over them."""
    return site.specs_dir / "from-history" / f"{name}.yml"


def body_digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]


def write_export(path: Path, spec: EnvSpec) -> None:
    """An export with a first line that lets planning tell a hand-edited copy from condaqa's own."""
    body = dump_spec(spec)
    atomic.write_text(path, f"{EDITED_MARK}{body_digest(body)}\n{body}")

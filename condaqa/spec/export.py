"""Exports: an environment's spec read straight from its prefix, never from the old conda.

conda entries as `name=version` (no build strings), a `pip:` list of `name==version` for the
distributions no conda record owns, and no `prefix:` line; or, `--from-history`, the specs the
users asked for (conda-meta/history) with the same pip section; or, `--explicit`, conda's
`@EXPLICIT` list of package URLs, which recreates the environment exactly. Channels are written
so that any conda finds them: a local folder by its file:// URL, a channel a stock conda knows
by its name.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import rattler

from condaqa import atomic
from condaqa.errors import PrefixError
from condaqa.inputs import guard, redact
from condaqa.prefix import PrefixContents, is_environment, read_history, read_prefix, requested_specs
from condaqa.site import Site
from condaqa.spec.format import EnvSpec, dump_spec

EDITED_MARK = "# written by condaqa export; edits go to manifests/overrides/, not here; digest "
CHANNEL_ALIAS = ("https://conda.anaconda.org/", "http://conda.anaconda.org/")  # conda's default channel_alias
# conda's default_channels, which every conda calls `defaults` (repo.continuum.io is the old name of the host)
DEFAULT_CHANNELS = tuple(f"{scheme}://{host}/pkgs/{name}" for scheme in ("https", "http")
                         for host in ("repo.anaconda.com", "repo.continuum.io") for name in ("main", "r", "msys2"))
UNKNOWN_CHANNEL = "<unknown>"  # what conda 4.x recorded for a package installed from a tarball


def canonical_channel(url: str, site_names: dict[str, str]) -> str:
    """The name conda would show for a channel URL: the site's name for it, else conda's rule."""
    url = url.rstrip("/")
    if url in site_names:
        return site_names[url]
    for prefix in CHANNEL_ALIAS:
        if url.startswith(prefix):
            return url[len(prefix):]
    if url.startswith(("https://repo.anaconda.com/pkgs/", "http://repo.anaconda.com/pkgs/")):
        return "defaults"
    return url


def conda_channel(channel: str) -> str:
    """How an environment file names a channel so that any conda, anywhere, reads the same one.

    A channel under conda.anaconda.org keeps its name (conda-forge, bioconda, conda-forge/label/x)
    and conda's default channels are `defaults`; every other URL, a local folder's file:// URL
    above all, stays a URL. A bare name (a record that named its channel) is already one.
    """
    channel = channel.rstrip("/")
    for prefix in CHANNEL_ALIAS:
        if channel.startswith(prefix):
            return channel[len(prefix):]
    return "defaults" if channel in DEFAULT_CHANNELS else channel


def site_channels(site: Site) -> dict[str, str]:
    """What an environment file calls each site channel, keyed by its URL and by its name in site.toml,
    in priority order: a bare name in site.toml is the folder ROOT/<name>, so conda gets its URL."""
    names: dict[str, str] = {}
    for name, url in zip(site.channels, site.channel_urls(), strict=False):
        names[url] = names[name] = conda_channel(url)
    return names


def spec_from_prefix(name: str, contents: PrefixContents, site_names: dict[str, str]) -> EnvSpec:
    """Export `contents` as conda env export --no-builds would, pip section included.

    `site_names` (site_channels) says how to write each site channel; the site's channels come
    first in priority order, then any other channel a record came from.
    """
    used = []
    for package in contents.conda:
        if not package.channel or package.channel == UNKNOWN_CHANNEL:
            continue
        channel = site_names.get(package.channel) or conda_channel(package.channel)
        if channel not in used:
            used.append(channel)
    site_order = list(dict.fromkeys(site_names.values()))
    ordered = [n for n in site_order if n in used]
    ordered += [c for c in used if c not in ordered]
    ordered += [n for n in site_order if n not in ordered]
    deps = [f"{p.name}={p.version}" for p in contents.conda]
    pip = [f"{d.name}=={d.version}" if d.version else d.name for d in sorted(contents.pip, key=lambda d: d.key)]
    return EnvSpec(name=name, channels=ordered, dependencies=deps, pip=pip)


def _current_prefix(site: Site, name: str) -> Path:
    prefix = site.current_installation().env_prefix(name)
    if not is_environment(prefix):
        raise PrefixError(f"{prefix}: environment {name!r} does not exist in {site.current_link}")
    return prefix


def export_environment(site: Site, name: str, contents: PrefixContents | None = None) -> EnvSpec:
    """The spec of environment `name` as it is in `current`, read from its prefix unless `contents` holds it
    already (the planner reads it once for its rules too)."""
    if contents is None:
        contents = read_prefix(_current_prefix(site, name))
    return spec_from_prefix(name, contents, site_channels(site))


def export_from_history(site: Site, name: str, contents: PrefixContents | None = None) -> EnvSpec:
    """`conda env export --from-history` read from the prefix: the specs users asked for, plus the pip section;
    its records are read unless `contents` holds them already (the planner's, as for export_environment)."""
    prefix = _current_prefix(site, name)
    if contents is None:
        contents = read_prefix(prefix)
    wanted = requested_specs(read_history(prefix), {p.name for p in contents.conda})
    if not wanted:
        raise PrefixError(f"{prefix}/conda-meta/history records no requested specs (environments made by "
                          'rattler or pixi leave it empty); use strategy = "pins" for it')
    spec = spec_from_prefix(name, contents, site_channels(site))
    spec.dependencies = list(wanted.values())
    return spec


def platform_of(contents: PrefixContents) -> str:
    """The platform the environment was built for: its records' subdir (noarch aside), else this machine's."""
    found = Counter(p.subdir for p in contents.conda if p.subdir not in ("", "noarch") and p.channel != UNKNOWN_CHANNEL)
    return found.most_common(1)[0][0] if found else str(rattler.Subdir.current())


def explicit_text(contents: PrefixContents) -> str:
    """`conda list --explicit`: conda's header, `@EXPLICIT`, then each record's package URL by name."""
    lines = ["# This file may be used to create an environment using:",
             "# $ conda create --name <env> --file <this file>",
             f"# platform: {platform_of(contents)}",
             "@EXPLICIT"]
    for package in contents.conda:  # read_prefix sorts them by name, as conda 4.3 lists them
        if package.url and not package.url.startswith(UNKNOWN_CHANNEL):
            lines.append(package.url)
        else:
            lines.append(f"# no URL for: {package.name}-{package.version}-{package.build}")
    return "\n".join(lines) + "\n"


def export_explicit(site: Site, name: str) -> tuple[str, PrefixContents]:
    """The @EXPLICIT list of environment `name` in `current`, and what it was read from."""
    contents = read_prefix(_current_prefix(site, name))
    return explicit_text(contents), contents


def spec_path(site: Site, name: str) -> Path:
    return site.specs_dir / f"{name}.yml"


def history_spec_path(site: Site, name: str) -> Path:
    """Where `export --from-history` writes: beside the pinned exports, never over them."""
    return site.specs_dir / "from-history" / f"{name}.yml"


def explicit_path(site: Site, name: str) -> Path:
    """Where `export --explicit` writes: conda's own name for the format, beside the pinned exports."""
    return site.specs_dir / "explicit" / f"{name}.txt"


def body_digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]


def write_export(site: Site, path: Path, spec: EnvSpec) -> None:
    """An export with a first line that lets planning tell a hand-edited copy from condaqa's own."""
    body = dump_spec(spec)
    write_spec(site, path, f"{EDITED_MARK}{body_digest(body)}\n{body}")


def write_spec(site: Site, path: Path, text: str) -> None:
    """Every export is written here, by `condaqa export` and the qualification alike: inside the site,
    through no link that leaves it, no credential of a channel URL in it."""
    atomic.write_text(guard(path, [site.root], "write the export"), redact(text))


class WriteBehind:
    """Writes each export on a thread while the next environment is read: a write mostly waits for the
    disk (its data and its rename synced), a read keeps the CPU busy. One write at a time, each line
    said (`done`) once its file is written, in order; a write that fails stops the command, as one that
    fails in line would, and a read that fails lets the write before it finish first."""

    def __init__(self, done: Callable[[str], None]) -> None:
        self._done = done
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="condaqa-export-writer")
        self._pending: tuple[Future[None], str] | None = None

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._finish()
        finally:
            self._pool.shutdown()

    def write(self, job: Callable[[], None], line: str) -> None:
        """Start `job` once the write before it is done; `line` is said once `job` is."""
        self._finish()
        self._pending = self._pool.submit(job), line

    def _finish(self) -> None:
        if self._pending is not None:
            future, line = self._pending
            self._pending = None
            future.result()
            self._done(line)

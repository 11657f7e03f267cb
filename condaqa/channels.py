"""The site's channels: py-rattler sources for solving, and repodata look-ups for preflight.

A local channel's repodata.json is read where it lies. A remote one (http, https) is fetched
once per process and kept under ROOT/.condaqa/repodata/, so that `offline = true` in site.toml
preflights from that copy without the network. Only names and versions are kept: that is all
the preflight asks, and conda-forge's full repodata is hundreds of megabytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import rattler

from condaqa import atomic
from condaqa.errors import ConfigError
from condaqa.inputs import REPODATA, load_json, read_text, size
from condaqa.site import Site

FETCH_TIMEOUT = 60.0  # seconds for one repodata.json; a channel that takes longer is as good as unreachable
REMOTE = ("http", "https")

Versions = dict[str, list[str]]  # package name -> versions in one subdir of one channel
_fetched: dict[str, Versions | None] = {}  # repodata URL -> what it lists (None: no such subdir), this process
_unreachable: dict[str, str] = {}  # repodata URL -> why it could not be had, this process: not tried again
_fetching = threading.Lock()


def qa_platform(site: Site) -> str:
    return site.platform or str(rattler.Subdir.current())


def sources(site: Site) -> list[rattler.Channel]:
    if not site.channels:
        raise ConfigError(f"{site.file}: [site] channels is empty; name at least one channel")
    return [rattler.Channel(url) for _, url in site.solve_channels()]


@dataclass(frozen=True)
class Available:
    """Versions of one package name per channel, in site priority order."""

    name: str
    by_channel: dict[str, tuple[str, ...]]

    def has(self, version: str) -> bool:
        return any(version in versions for versions in self.by_channel.values())

    def all_versions(self) -> list[str]:
        found = {v for versions in self.by_channel.values() for v in versions}
        return sorted(found, key=rattler.Version)


class RepodataIndex:
    """Package names and versions of the site's channels, local or remote, loaded once.

    A channel that cannot be read is listed in `unreadable` with the reason: the preflight
    then cannot call anything missing (it might be in that channel), and says so.
    """

    def __init__(self, site: Site) -> None:
        self._site = site
        self._subdirs = (qa_platform(site), "noarch")
        self._versions: dict[str, dict[str, set[str]]] = {}
        self._noarch: dict[str, set[str]] = {}  # name -> versions published in noarch/
        self.unreadable: dict[str, str] = {}  # channel -> why its repodata could not be read
        for name, url in site.solve_channels():
            try:
                self._load(name, url)
            except ConfigError as exc:
                self.unreadable[name] = str(exc)

    def _load(self, channel: str, url: str) -> None:
        scheme = urlparse(url).scheme
        if scheme not in ("file", *REMOTE):
            raise ConfigError(f"channel {channel!r} ({url}): preflight reads file://, http:// and https:// "
                              "channels only")
        found = {subdir: self._subdir(channel, url, subdir, scheme) for subdir in self._subdirs}
        if all(versions is None for versions in found.values()):
            raise ConfigError(f"channel {channel!r} ({url}) has no repodata.json for {' or '.join(self._subdirs)}: "
                              "not an indexed conda channel")
        for subdir, versions in found.items():
            for package, listed in (versions or {}).items():
                self._versions.setdefault(package, {}).setdefault(channel, set()).update(listed)
                if subdir == "noarch":
                    self._noarch.setdefault(package, set()).update(listed)

    def _subdir(self, channel: str, url: str, subdir: str, scheme: str) -> Versions | None:
        if scheme in REMOTE:
            return remote_versions(self._site, channel, f"{url}/{subdir}/repodata.json")
        path = Path(unquote(urlparse(url).path)) / subdir / "repodata.json"
        if not path.exists():
            return None
        return _versions(read_text(path, REPODATA, ConfigError), str(path))

    def names(self) -> list[str]:
        return sorted(self._versions)

    def noarch_versions(self, name: str) -> set[str]:
        """Versions of `name` published as noarch packages (installable on any platform)."""
        return set(self._noarch.get(name, ()))

    def lookup(self, name: str) -> Available:
        per = self._versions.get(name, {})
        return Available(name, {c: tuple(sorted(v, key=rattler.Version)) for c, v in per.items()})


def _versions(text: str, source: str) -> Versions:
    """name -> versions of a repodata.json text (`packages` and `packages.conda`)."""
    data = load_json(text, source, REPODATA.what, ConfigError)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: not a repodata.json (expected a JSON object)")
    found: dict[str, set[str]] = {}
    for key in ("packages", "packages.conda"):
        packages = data.get(key)
        for record in packages.values() if isinstance(packages, dict) else ():
            if isinstance(record, dict) and isinstance(record.get("name"), str) and "version" in record:
                found.setdefault(record["name"], set()).add(str(record["version"]))
    return {name: sorted(versions) for name, versions in found.items()}


def cache_path(site: Site, url: str) -> Path:
    """Where the names and versions of the repodata at `url` are kept, for `offline = true`."""
    return site.state_dir / "repodata" / f"{hashlib.sha256(url.encode('utf-8')).hexdigest()[:24]}.json"


def remote_versions(site: Site, channel: str, url: str) -> Versions | None:
    """The repodata at `url`: fetched once per process (then cached on disk), or from that cache when offline.

    None means the channel has no such subdir (HTTP 404), as a local channel without the folder. A
    failure is remembered for the process too.
    """
    with _fetching:
        if url in _unreachable:
            raise ConfigError(_unreachable[url])
        if url not in _fetched:
            try:
                _fetched[url] = _cached(site, channel, url) if site.offline else _fetch(site, channel, url)
            except ConfigError as exc:  # a channel that does not answer costs its timeout once, not once a plan
                _unreachable[url] = str(exc)
                raise
        return _fetched[url]


def _fetch(site: Site, channel: str, url: str) -> Versions | None:
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip", "User-Agent": "condaqa"})
    versions: Versions | None
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:
            data = response.read(REPODATA.limit + 1)
            if response.headers.get("Content-Encoding") == "gzip":
                data = gzip.GzipFile(fileobj=io.BytesIO(data)).read(REPODATA.limit + 1)
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise ConfigError(f"channel {channel!r} is unreachable: {url} answered HTTP {exc.code} "
                              f"{exc.reason}") from None
        versions = None
    except (urllib.error.URLError, OSError, EOFError) as exc:
        why = getattr(exc, "reason", None) or exc
        raise ConfigError(f"channel {channel!r} is unreachable: {url}: {why}") from None
    else:
        if len(data) > REPODATA.limit:
            raise ConfigError(f"{url}: larger than {size(REPODATA.limit)}; refusing to read it")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{url}: not UTF-8 text, so not a repodata.json") from None
        versions = _versions(text, url)
    _keep(site, url, versions)
    return versions


def _keep(site: Site, url: str, versions: Versions | None) -> None:
    """Write what `url` listed to the disk cache; a site whose state folder is read-only goes without."""
    record = {"url": url, "fetched": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "packages": versions}
    try:
        atomic.write_text(cache_path(site, url), json.dumps(record, separators=(",", ":")))
    except OSError:
        pass  # only `offline = true` needs the copy, and it says so when there is none


def _cached(site: Site, channel: str, url: str) -> Versions | None:
    path = cache_path(site, url)
    try:
        text = read_text(path, REPODATA, ConfigError)
    except FileNotFoundError:
        raise ConfigError(f"channel {channel!r}: offline = true in {site.file} and no copy of {url} at {path}; "
                          "run once with offline = false to keep one") from None
    try:
        record: Any = json.loads(text)
    except ValueError:
        record = None
    if not isinstance(record, dict) or record.get("url") != url or not isinstance(record.get("packages", ""),
                                                                                   (dict, type(None))):
        raise ConfigError(f"{path}: not condaqa's copy of {url}; delete it and run once with offline = false")
    packages: Versions | None = record["packages"]
    return packages

"""The site's channels: py-rattler sources for solving, and repodata look-ups for preflight."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import rattler

from condaqa.errors import ConfigError
from condaqa.site import Site


def qa_platform(site: Site) -> str:
    return site.platform or str(rattler.Subdir.current())


def sources(site: Site) -> list[rattler.Channel]:
    if not site.channels:
        raise ConfigError(f"{site.file}: [site] channels is empty; name at least one channel")
    return [rattler.Channel(url) for url in site.channel_urls()]


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
    """Package names and versions of the site's local channels, loaded once."""

    def __init__(self, site: Site) -> None:
        self._subdirs = (qa_platform(site), "noarch")
        self._versions: dict[str, dict[str, set[str]]] = {}
        self._noarch: dict[str, set[str]] = {}  # name -> versions published in noarch/
        for name, url in zip(site.channels, site.channel_urls()):
            self._load(name, url)

    def _load(self, channel: str, url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "file":
            raise ConfigError(f"channel {channel!r} ({url}) is remote: preflight reads local channels only")
        base = Path(unquote(parsed.path))
        for subdir in self._subdirs:
            path = base / subdir / "repodata.json"
            if not path.is_file():
                continue
            data = json.loads(path.read_text(encoding="utf-8"))
            for key in ("packages", "packages.conda"):
                for record in data.get(key, {}).values():
                    per = self._versions.setdefault(record["name"], {})
                    per.setdefault(channel, set()).add(record["version"])
                    if subdir == "noarch":
                        self._noarch.setdefault(record["name"], set()).add(record["version"])

    def names(self) -> list[str]:
        return sorted(self._versions)

    def noarch_versions(self, name: str) -> set[str]:
        """Versions of `name` published as noarch packages (installable on any platform)."""
        return set(self._noarch.get(name, ()))

    def lookup(self, name: str) -> Available:
        per = self._versions.get(name, {})
        return Available(name, {c: tuple(sorted(v, key=rattler.Version)) for c, v in per.items()})

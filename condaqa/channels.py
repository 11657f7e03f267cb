"""The site's channels: py-rattler sources for solving, and names and versions for the preflight.

py-rattler's Gateway reads the repodata of every channel, local (file://) or remote (http,
https), in the engine process (worker.py: py-rattler's async calls never run in
condaqa's own). It fetches a remote subdir once per process, keeps it under
ROOT/.condaqa/repodata/ and revalidates that copy in the next process; with `offline = true` in
site.toml it reads only that copy. The preflight asks each channel for its names, and for
versions only of the names it looks up: the Gateway parses those records alone.

What py-rattler 0.28 leaves to condaqa:
- one plain repodata.json request per subdir (gzip on the wire): sharded repodata is off since
  offline needs every name of a subdir, not the shards asked for before, and the .zst and .bz2
  probes are off since each costs a timeout of its own on a channel that does not answer;
- the Client has no retry middleware and FETCH_TIMEOUT for each request, body included; reading a
  subdir takes at most twice that in all (py-rattler retries a download that breaks off), then
  the engine process is stopped. A failure is remembered for the process: the Gateway does not;
- the Gateway asks again for a noarch/ that answered 404 and keeps no copy of a subdir that did:
  `_Memo.names` remembers it for the process, and repodata/absent/ for offline runs;
- a local repodata.json is checked by the input policy first (a regular file within the REPODATA
  cap), since the Gateway would wait on a FIFO forever; and what the Gateway holds of a local
  channel is dropped once its repodata.json changed, since ROOT/rescue is indexed again during a run;
- it has no size cap: a remote repodata is bounded by those timeouts only (README).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import rattler
from rattler.exceptions import GatewayError

from condaqa import atomic, worker
from condaqa.errors import BuildError, ConfigError
from condaqa.fingerprint import settled
from condaqa.inputs import REPODATA, check_file
from condaqa.site import Site
from condaqa.vocab import Stage

FETCH_TIMEOUT = 60  # seconds for one request, body included; a channel that takes longer is as good as unreachable
REMOTE = ("http", "https")
# The Gateway's errors say what happened in words only (0.28):
_NO_SUBDIR = "could not find subdir"  # a noarch/ that is not there; another subdir that is not there lists nothing
_NO_COPY = "no usable repodata cache"  # offline, a subdir it keeps no copy of
_NETWORK = ("error sending request", "HTTP status", "failed to download", "the engine did not answer")


def qa_platform(site: Site) -> str:
    return site.platform or str(rattler.Subdir.current())


def sources(site: Site) -> list[rattler.Channel]:
    if not site.channels:
        raise ConfigError(f"{site.file}: [site] channels is empty; name at least one channel")
    return [rattler.Channel(url) for _, url in site.solve_channels()]


def cache_dir(site: Site) -> Path:
    """The Gateway's copies of remote repodata, for the next process and for `offline = true`."""
    return site.state_dir / "repodata"


@dataclass(frozen=True)
class _Gateway:
    """Which Gateway of the engine process reads: its cache folder, whether offline, its request timeout."""

    cache: Path
    offline: bool
    timeout: int

    @property
    def read_timeout(self) -> float:
        """Seconds for one call in the engine process: a request, or py-rattler's retries of one that broke off."""
        return 2.0 * self.timeout


@dataclass
class _Memo:
    """What this process learned of channels through one Gateway. A remote channel is asked once; a local
    one again once its repodata.json changed, which ROOT/rescue does during a run. Every plan makes an
    index of its own, so without this each would ask the engine process again for the same names and
    versions: one round trip a name, a third of a replicate re-run."""

    names: dict[tuple[str, tuple[int, ...]], frozenset[str] | None] = field(
        default_factory=dict)  # (repodata URL, the local file as read; remote: ()) -> names (None: no subdir)
    failed: dict[str, str] = field(default_factory=dict)  # channel URL -> why it could not be read
    versions: dict[tuple[str, str, tuple[tuple[str, tuple[int, ...]], ...]], dict[str, set[str]]] = field(
        default_factory=dict)  # (channel URL, name, its subdirs and their repodata files) -> subdir -> versions


_memos: dict[_Gateway, _Memo] = {}


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


@dataclass(frozen=True)
class _Channel:
    url: str
    names: dict[str, frozenset[str]]  # subdir -> the (normalized) names it lists
    files: dict[str, tuple[int, ...] | None]  # subdir -> its repodata.json as read (fingerprint.settled); remote: ()


class RepodataIndex:
    """Package names of the site's channels, local or remote, read once; versions of a name when asked.

    A channel that cannot be read is listed in `unreadable` with the reason: the preflight then
    cannot call anything missing (it might be in that channel), and says so. A channel whose
    records of a name looked up cannot be read joins it then.
    """

    def __init__(self, site: Site) -> None:
        self._site = site
        self._gateway = _Gateway(cache_dir(site), site.offline, FETCH_TIMEOUT)
        self._subdirs = (qa_platform(site), "noarch")
        self._memo = _memos.setdefault(self._gateway, _Memo())
        self._channels: dict[str, _Channel] = {}
        self._versions: dict[str, dict[str, dict[str, set[str]]]] = {}  # name -> channel -> subdir -> versions
        self.unreadable: dict[str, str] = {}  # channel -> why its repodata could not be read
        for name, url in site.solve_channels():
            try:
                self._channels[name] = self._load(name, url)
            except ConfigError as exc:
                self.unreadable[name] = str(exc)

    def _load(self, channel: str, url: str) -> _Channel:
        scheme = urlparse(url).scheme
        if scheme not in ("file", *REMOTE):
            raise ConfigError(f"channel {channel!r} ({url}): preflight reads file://, http:// and https:// "
                              "channels only")
        if scheme == "file":
            read = {subdir: self._local(channel, url, subdir) for subdir in self._subdirs}
            found = {subdir: names for subdir, (names, _) in read.items()}
            files = {subdir: file for subdir, (_, file) in read.items()}
        else:  # read once per process: nothing to tell apart
            found = _remote(self._site, self._gateway, channel, url, self._subdirs)
            files = dict.fromkeys(self._subdirs, ())
        platform = self._subdirs[0]
        if found["noarch"] is None and not found[platform]:
            raise ConfigError(f"channel {channel!r} ({url}) has no noarch/repodata.json and lists nothing for "
                              f"{platform}: not an indexed conda channel")
        return _Channel(url, {subdir: names for subdir, names in found.items() if names}, files)

    def _local(self, channel: str, url: str, subdir: str) -> tuple[frozenset[str] | None, tuple[int, ...] | None]:
        """The names a local subdir lists (None: it has no repodata.json), and that file as read (None: changed
        too lately to be known again by it, fingerprint.settled)."""
        path = Path(unquote(urlparse(url).path)) / subdir / "repodata.json"
        if not path.exists():
            return None, None
        check_file(path, REPODATA, ConfigError)
        file = settled(path.stat())
        kept = (f"{url}/{subdir}/repodata.json", file) if file is not None else None
        if kept is not None and kept in self._memo.names:
            return self._memo.names[kept], file
        try:
            names = worker.call(_read_names, self._gateway, url, subdir, True, timeout=self._gateway.read_timeout)
        except BuildError as exc:
            raise _unreadable(channel, str(path), exc) from None
        if kept is not None:
            self._memo.names[kept] = names
        return names, file

    def names(self) -> list[str]:
        return sorted({n for channel in self._channels.values() for names in channel.names.values() for n in names})

    def noarch_versions(self, name: str) -> set[str]:
        """Versions of `name` published as noarch packages (installable on any platform)."""
        return {v for subdirs in self._lookup(name).values() for v in subdirs.get("noarch", ())}

    def lookup(self, name: str) -> Available:
        found = {c: {v for versions in subdirs.values() for v in versions} for c, subdirs in self._lookup(name).items()}
        return Available(name, {c: tuple(sorted(v, key=rattler.Version)) for c, v in found.items()})

    def _lookup(self, name: str) -> dict[str, dict[str, set[str]]]:
        """channel -> subdir -> versions of `name`, read once per index, from the channels that list it."""
        key = name.lower()
        if key not in self._versions:
            self._versions[key] = {}
            for channel, listed in self._channels.items():
                subdirs = [subdir for subdir, names in listed.names.items() if key in names]
                if not subdirs or channel in self.unreadable:
                    continue
                files = [file for subdir in subdirs if (file := listed.files.get(subdir)) is not None]
                known = len(files) == len(subdirs)  # else one changed too lately to be known again by it
                asked = (listed.url, key, tuple(zip(subdirs, files, strict=True))) if known else None
                if asked is not None and asked in self._memo.versions:
                    self._versions[key][channel] = self._memo.versions[asked]
                    continue
                try:
                    self._versions[key][channel] = worker.call(_read_versions, self._gateway, listed.url, subdirs,
                                                               key, timeout=self._gateway.read_timeout)
                except BuildError as exc:
                    self.unreadable[channel] = str(_unreadable(channel, f"{key} in {listed.url}", exc))
                    continue
                if asked is not None:
                    self._memo.versions[asked] = self._versions[key][channel]
        return self._versions[key]


def _remote(site: Site, gateway: _Gateway, channel: str, url: str, subdirs: tuple[str, ...]
            ) -> dict[str, frozenset[str] | None]:
    """Names per subdir of a remote channel, asked once per process; a failure is remembered too (a
    channel that does not answer costs its timeout once, not once a plan)."""
    memo = _memos.setdefault(gateway, _Memo())
    if url in memo.failed:
        raise ConfigError(memo.failed[url])
    try:
        return {subdir: _remote_subdir(site, gateway, memo, channel, url, subdir) for subdir in subdirs}
    except ConfigError as exc:
        memo.failed[url] = str(exc)
        raise


def _remote_subdir(site: Site, gateway: _Gateway, memo: _Memo, channel: str, url: str, subdir: str
                   ) -> frozenset[str] | None:
    where = f"{url}/{subdir}/repodata.json"
    kept = (where, ())
    if kept not in memo.names:
        try:
            memo.names[kept] = worker.call(_read_names, gateway, url, subdir, False, timeout=gateway.read_timeout)
        except BuildError as exc:
            if not gateway.offline or not str(exc).startswith(_NO_COPY):
                raise _unreadable(channel, where, exc) from None
            if not _absent_path(site, where).exists():
                raise ConfigError(f"channel {channel!r}: offline = true in {site.file} and no copy of {where} in "
                                  f"{gateway.cache}; run once with offline = false to keep one") from None
            memo.names[kept] = None
        else:
            if not gateway.offline:
                _keep_absence(site, where, memo.names[kept])
    return memo.names[kept]


def _absent_path(site: Site, url: str) -> Path:
    return cache_dir(site) / "absent" / hashlib.sha256(url.encode("utf-8")).hexdigest()[:24]


def _keep_absence(site: Site, url: str, names: frozenset[str] | None) -> None:
    """Note that `url` lists nothing (absent, or empty: 0.28 does not tell a platform's 404 apart), for
    offline runs: the Gateway keeps no copy of a subdir that answered 404. A write that fails costs only
    the offline run, which then says it has no copy."""
    path = _absent_path(site, url)
    try:
        if names:
            path.unlink(missing_ok=True)
        else:
            atomic.write_text(path, f"{url}\n")
    except OSError:
        pass


def _unreadable(channel: str, where: str, exc: BuildError) -> ConfigError:
    """The Gateway's error as condaqa says it: the channel, the URL, and the first and last line of why."""
    lines = [line.strip().removeprefix("Caused by: ") for line in str(exc).splitlines() if line.strip()]
    why = ": ".join(dict.fromkeys([lines[0], lines[-1]])) if lines else "no message"
    if why.startswith(_NETWORK):
        return ConfigError(f"channel {channel!r} is unreachable: {where}: {why}")
    return ConfigError(f"channel {channel!r}: {where} cannot be read: {why}")


# -- in the engine process ------------------------------------------------------------------------

_gateways: dict[_Gateway, rattler.Gateway] = {}  # what each Gateway read stays in memory while the process lives


def _gateway(which: _Gateway) -> rattler.Gateway:
    if which not in _gateways:
        config = rattler.SourceConfig(zstd_enabled=False, bz2_enabled=False, sharded_enabled=False,
                                      cache_action="force-cache-only" if which.offline else "cache-or-fetch")
        _gateways[which] = rattler.Gateway(cache_dir=which.cache, default_config=config,
                                           client=rattler.Client([], timeout=which.timeout))
    return _gateways[which]


def _read_names(which: _Gateway, url: str, subdir: str, again: bool) -> frozenset[str] | None:
    """The names a subdir of the channel at `url` lists (read `again` even if the Gateway holds it: a
    local channel); None if it has no repodata.json; BuildError with py-rattler's reason if it cannot be read."""
    gateway, channel = _gateway(which), rattler.Channel(url)
    if again:
        gateway.clear_repodata_cache(channel, [rattler.Subdir(subdir)])
    try:
        names = asyncio.run(gateway.names([channel], [rattler.Subdir(subdir)], channel_relations="disabled"))
    except GatewayError as exc:
        if str(exc).startswith(_NO_SUBDIR):
            return None
        raise BuildError(str(exc), stage=Stage.PREFLIGHT) from None
    return frozenset(name.normalized for name in names)


def _read_versions(which: _Gateway, url: str, subdirs: list[str], name: str) -> dict[str, set[str]]:
    """subdir -> versions of `name` in the channel at `url`; BuildError if its records cannot be read."""
    query = _gateway(which).query([rattler.Channel(url)], map(rattler.Subdir, subdirs), [name], recursive=False,
                                  channel_relations="disabled")
    try:
        records = asyncio.run(query)[0]
    except GatewayError as exc:
        raise BuildError(str(exc), stage=Stage.PREFLIGHT) from None
    found: dict[str, set[str]] = {}
    for record in records:
        found.setdefault(record.subdir, set()).add(str(record.version))
    return found

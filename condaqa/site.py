"""The site: site.toml, the shared tree it points at, its installations and their environments."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from condaqa import durations, proc
from condaqa.errors import ConfigError, SiteError
from condaqa.inputs import SITE_FILE, load_toml, read_text
from condaqa.sitefile import SITE_ENV_VAR, site_file

# key: (type, default); a default of None means the key is required.
_KEYS: dict[str, tuple[type, object]] = {
    "root": (str, None),
    "current": (str, "current"),
    "qa": (str, "qa"),
    "specs": (str, "env_specs"),
    "kernels": (str, "kernels"),
    "manifest": (str, "environments.ini"),
    "checks": (str, "../env_checks"),
    "reports": (str, ""),  # default: reports/ in the folder condaqa or pytest runs from
    "engine": (str, "rattler"),
    "channels": (list, []),
    "pip_args": (list, []),
    "demo": (bool, False),
    "platform": (str, ""),
    "nb_conda_kernels": (bool, False),  # the hub finds kernels with nb_conda_kernels (names derive from prefixes)
    "offline": (bool, False),  # preflight reads remote channels' repodata from its cache only
    "sandbox_user": (str, "nobody"),  # who foreign code runs as when root owns the environment
    "unqualified_kernels": (list, []),  # kernel specs the gate does not require a start of (none can be found)
    "usage_window": (str, "14d"),  # the cutover warns about export-only environments seen in use this recently
    "notify_webhook": (str, ""),  # the chat incoming webhook `condaqa report --owners --notify` posts to
    "shared_package_cache": (bool, False),  # a sharded run builds from the installation's pkgs/ on every host
    "local_package_cache": (str, "/var/tmp/condaqa-pkgs"),  # else each host's own, on its local disk
    "rescue": (bool, True),  # take packages the channels lost from production into ROOT/rescue
}
DEMO_LEFT_OUT = "demo-left-out.json"  # in the state folder: what the demo was built without, and why


@dataclass(frozen=True)
class Site:
    """Everything site.toml says, with paths made absolute."""

    file: Path
    root: Path
    current_name: str
    qa_name: str
    specs_dir: Path
    kernels_dir: Path
    manifest: Path
    checks_dir: Path
    reports_dir: Path
    engine: str
    channels: tuple[str, ...]
    pip_args: tuple[str, ...]
    demo: bool
    platform: str = field(default="")
    nb_conda_kernels: bool = False
    offline: bool = False
    sandbox_user: str = "nobody"
    unqualified_kernels: tuple[str, ...] = ()
    usage_window: str = "14d"
    notify_webhook: str = ""
    shared_package_cache: bool = False
    local_package_cache: Path = Path("/var/tmp/condaqa-pkgs")
    per_host_cache: bool = False  # set by a sharded run (never by site.toml): package caches are each host's own
    rescue: bool = True

    @property
    def rescue_dir(self) -> Path:
        """The site's channel of packages rescued from production (rescue/channel.py)."""
        return self.root / "rescue"

    def solve_channels(self) -> list[tuple[str, str]]:
        """(name, URL) of the channels a build solves with: the site's, then ROOT/rescue once it is indexed."""
        found = list(zip(self.channels, self.channel_urls(), strict=True))
        if self.rescue and any(self.rescue_dir.glob("*/repodata.json")):
            found.append(("rescue", self.rescue_dir.as_uri()))
        return found

    @property
    def current_link(self) -> Path:
        return self.root / self.current_name

    @property
    def qa_link(self) -> Path:
        return self.root / self.qa_name

    @property
    def envs_link(self) -> Path:
        return self.root / "envs"

    @property
    def state_dir(self) -> Path:
        """condaqa's own bookkeeping under the site root (audit log, locks)."""
        return self.root / ".condaqa"

    def left_out(self) -> dict[str, str]:
        """The manifest's environments a demo site was built without, with why (demo/build.py): each is on an
        old python this machine lacks. A manifest entry whose environment a real site lacks stays an error."""
        if not self.demo:
            return {}
        try:
            found = json.loads((self.state_dir / DEMO_LEFT_OUT).read_text(encoding="utf-8"))
        except OSError:  # not built yet, or built by another user
            return {}
        return {str(name): str(why) for name, why in found.items()}

    def private_home(self, installation: str) -> Path:
        """The HOME of the tools condaqa runs for an installation (conda, pip): none of the invoker's
        configuration reaches them, and nothing they keep lands in the invoker's home."""
        return self.state_dir / "home" / installation

    def package_cache(self, installation: Installation) -> Path:
        """Where builds in `installation` keep packages: its pkgs/, or, in a sharded run on a site without
        `shared_package_cache`, a folder on this host's local disk (conda's advice for shared file systems:
        one writer per cache, no cache extracted over NFS by many hosts at once)."""
        if not self.per_host_cache:
            return installation.path / "pkgs"
        tree = hashlib.sha256(str(self.root).encode("utf-8")).hexdigest()[:12]
        return self.local_package_cache / f"{self.root.name}-{tree}" / installation.name

    def channel_urls(self) -> list[str]:
        """Channels in priority order: a bare name is a channel folder under root."""
        return [channel_url(self.root, c) for c in self.channels]

    def expand(self, arg: str) -> str:
        """Expand `{root}` in pip arguments and similar settings."""
        return arg.replace("{root}", str(self.root))

    def installation(self, link_or_name: str) -> Installation:
        """An installation by symlink name (`current`, `qa`) or folder name (`v4.8`)."""
        path = self.root / link_or_name
        if path.is_symlink():
            target = os.readlink(path)
            path = (path.parent / target).resolve()
        if not path.is_dir():
            raise SiteError(f"{self.root}: no installation {link_or_name!r}")
        return Installation(path.name, path)

    def current_installation(self) -> Installation:
        return self.installation(self.current_name)

    def qa_installation(self) -> Installation:
        return self.installation(self.qa_name)

    def link_target(self, link: str) -> str | None:
        """The installation folder name a site symlink points to, or None if it is absent."""
        path = self.root / link
        if not path.is_symlink():
            return None
        return Path(os.readlink(path)).name

    def installations(self) -> list[Installation]:
        """Real installation folders under root (symlinks and condaqa's folders excluded)."""
        if not self.root.is_dir():
            return []
        found = []
        for child in sorted(self.root.iterdir()):
            if child.is_symlink() or not child.is_dir():
                continue
            if (child / "conda-meta").is_dir() and (child / "envs").is_dir():
                found.append(Installation(child.name, child))
        return found


@dataclass(frozen=True)
class Installation:
    name: str
    path: Path

    @property
    def envs_dir(self) -> Path:
        return self.path / "envs"

    def env_prefix(self, env: str) -> Path:
        return self.envs_dir / env

    def environments(self) -> list[str]:
        """Names of the environments in envs/ (a folder with conda-meta/history, as conda decides)."""
        if not self.envs_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.envs_dir.iterdir() if (p / "conda-meta" / "history").is_file()
        )

    def conda_version(self) -> str | None:
        """The version of conda installed in the base prefix: from its record, else `bin/conda --version`."""
        return _conda_version(self.path, _mtime(self.path / "conda-meta"), _mtime(self.path / "bin" / "conda"))


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


@functools.lru_cache(maxsize=32)
def _conda_version(path: Path, *changed: int) -> str | None:
    """Cached per installation while its conda-meta and bin/conda stay as they are (`changed`)."""
    for record in sorted((path / "conda-meta").glob("conda-[0-9]*.json")):
        return record.name.split("-")[1]
    conda = path / "bin" / "conda"
    if not conda.exists():
        return None
    done = proc.run([str(conda), "--version"], environ=proc.foreign_environ(), timeout=60)
    words = (done.stdout + done.stderr).split()  # conda 4.3 printed it on stderr
    return words[1] if done.ok and len(words) >= 2 and words[0] == "conda" else None


def channel_url(root: Path, channel: str) -> str:
    if "://" in channel:
        return channel.rstrip("/")
    if channel.startswith("/"):
        return Path(channel).as_uri()
    return (root / channel).as_uri()


def unclaimed(path: Path) -> str:
    """Why a site.toml that was found, not named, is not condaqa's ("" when it is): another project may keep a
    manifests/site.toml of its own, and only one whose [site] table names a root is a condaqa site."""
    try:
        data = load_toml(read_text(path, SITE_FILE, ConfigError), str(path), SITE_FILE.what, ConfigError)
    except ConfigError as exc:
        return str(exc)
    table = data.get("site")
    return "" if isinstance(table, dict) and "root" in table else "it has no [site] table naming a root"


def load_site(explicit: str | os.PathLike[str] | None = None, base: Path | None = None) -> Site:
    """Read site.toml; `base` is the folder condaqa runs from (pytest: its rootdir), where reports go
    unless site.toml names a folder inside the site or inside `base`."""
    path = site_file(explicit, base)
    runs_from = (base or Path.cwd()).resolve()
    try:
        data = load_toml(read_text(path, SITE_FILE, ConfigError), str(path), SITE_FILE.what, ConfigError)
    except FileNotFoundError:
        raise ConfigError(f"{path}: site file not found (use --site or {SITE_ENV_VAR})") from None
    table = data.get("site")
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: missing [site] table")
    values = _validated(path, table)

    def rel(value: str) -> Path:
        return (path.parent / Path(value).expanduser()).resolve()

    root = rel(values["root"])
    reports = rel(values["reports"]) if values["reports"] else runs_from / "reports"
    if values["reports"] and not any(reports == r or r in reports.parents for r in (root, runs_from)):
        raise ConfigError(f"{path}: [site] reports = {values['reports']!r} is {reports}, outside both the site root "
                          f"{root} and the folder condaqa runs from ({runs_from})")
    return Site(
        file=path,
        root=root,
        current_name=values["current"],
        qa_name=values["qa"],
        specs_dir=root / values["specs"],
        kernels_dir=root / values["kernels"],
        manifest=rel(values["manifest"]),
        checks_dir=rel(values["checks"]),
        reports_dir=reports,
        engine=values["engine"],
        channels=tuple(values["channels"]),
        pip_args=tuple(values["pip_args"]),
        demo=values["demo"],
        platform=values["platform"],
        nb_conda_kernels=values["nb_conda_kernels"],
        offline=values["offline"],
        sandbox_user=values["sandbox_user"],
        unqualified_kernels=tuple(v.lower() for v in values["unqualified_kernels"]),
        usage_window=values["usage_window"],
        notify_webhook=values["notify_webhook"],
        shared_package_cache=values["shared_package_cache"],
        local_package_cache=Path(values["local_package_cache"]).expanduser(),
        rescue=values["rescue"],
    )


def _validated(path: Path, table: dict[str, object]) -> dict[str, Any]:
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) in [site]: {', '.join(unknown)}; known: {', '.join(_KEYS)}")
    values: dict[str, Any] = {}
    for key, (kind, default) in _KEYS.items():
        if key not in table:
            if default is None:
                raise ConfigError(f"{path}: [site] needs {key!r}")
            values[key] = default
            continue
        value = table[key]
        if not isinstance(value, kind) or (isinstance(value, list) and not all(isinstance(v, str) for v in value)):
            want = "a list of strings" if kind is list else kind.__name__
            raise ConfigError(f"{path}: [site] {key} must be {want}, got {value!r}")
        values[key] = value
    for key in ("current", "qa"):
        if "/" in values[key] or values[key] in ("", ".", ".."):
            raise ConfigError(f"{path}: [site] {key} must be a plain name under root, got {values[key]!r}")
    try:
        durations.seconds(values["usage_window"])
    except ValueError as exc:
        raise ConfigError(f"{path}: [site] usage_window: {exc}") from None
    return values

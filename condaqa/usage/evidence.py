"""The evidence that each environment of current is used, from every source, each with its date and its user.

Strong evidence says someone ran it: a process running from it now (a kernel among them), or
a sighting in the sampler log. The rest is said with its weakness: a kernel spec naming it (a
hub offers it), access times, conda-meta/history, users' environments.txt. `inventory --ini`
proposes REPLICATE from strong evidence and kernel specs; the cutover refuses while a process runs
from an environment that would leave `current`.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from condaqa import durations
from condaqa.kernels.specs import Kernel, find_kernels
from condaqa.kernels.users import group_homes
from condaqa.site import Site
from condaqa.usage import files, kernels, processes, sampler

STRONG = ("process", "kernel", "sampler")


@dataclass(frozen=True)
class Evidence:
    source: str  # process, kernel, sampler, kernel spec, atime, history, environments.txt
    time: str  # local time, to the minute
    user: str
    what: str
    weakness: str = ""  # "" for evidence that someone ran it
    now: bool = False  # running at this moment
    pid: int = 0
    detail: str = ""  # how it was found: the path under the environment

    def line(self) -> str:
        weak = f" [{self.weakness}]" if self.weakness else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.source}: {self.time} {self.user}: {self.what}{detail}{weak}"


@dataclass
class EnvUsage:
    env: str
    prefix: str  # its real path
    evidence: list[Evidence] = field(default_factory=list)

    @property
    def running(self) -> list[Evidence]:
        return [e for e in self.evidence if e.now]

    @property
    def last_seen(self) -> Evidence | None:
        """The newest strong evidence: running now, else the newest sampler sighting."""
        strong = [e for e in self.evidence if e.source in STRONG]
        return max(strong, key=lambda e: (e.now, e.time), default=None)

    @property
    def kernel_specs(self) -> list[Evidence]:
        return [e for e in self.evidence if e.source == "kernel spec"]

    def verdict(self) -> str:
        """In a few words, for the inventory's comment and the owners' pages."""
        seen = self.last_seen
        if seen is not None and seen.now:
            users = sorted({e.user for e in self.running})
            return f"in use now: {len(self.running)} process(es) of {', '.join(users)} ({seen.what})"
        if seen is not None:
            return f"last seen {seen.time} by {seen.user} ({seen.what})"
        if self.kernel_specs:
            return f"kernel spec {', '.join(e.what.split()[2] for e in self.kernel_specs)} runs it; no process seen"
        return "not seen in use"


@dataclass
class Usage:
    environments: list[EnvUsage]
    since: str  # the sampler window, as given (30d)
    sampler: sampler.Log
    unreadable: list[str]  # what could not be read: processes of other users, homes

    def of(self, env: str) -> EnvUsage | None:
        return next((u for u in self.environments if u.env == env), None)


def stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds)) if seconds else "-"


def _iso_stamp(text: str) -> str:
    try:
        return stamp(datetime.datetime.fromisoformat(text).timestamp())
    except ValueError:
        return text


def prefixes(site: Site) -> dict[str, Path]:
    """Each environment of current and its real path (through any link it is reached by)."""
    installation = site.current_installation()
    return {env: Path(os.path.realpath(installation.env_prefix(env))) for env in installation.environments()}


def spellings(site: Site) -> dict[str, tuple[Path, ...]]:
    """Each environment of current: its real path, then the paths users reach it by (current/envs, envs)."""
    return {env: (path, site.current_link / "envs" / env, site.envs_link / env)
            for env, path in prefixes(site).items()}


def running(site: Site, found: Sequence[processes.Process] | None = None,
            specs: Sequence[Kernel] | None = None) -> tuple[list[processes.Sighting], dict[int, str], list[str]]:
    """The processes running from current's environments now, the kernel spec of each kernel among them,
    and what could not be read."""
    found = processes.processes() if found is None else found
    specs = find_kernels(site) if specs is None else specs
    seen = processes.sightings(found, spellings(site))
    kernel_of = {s.process.pid: kernels.spec_of(s.process, specs) or "?" for s in seen if kernels.is_kernel(s.process)}
    return seen, kernel_of, processes.unreadable_words(found)


def sample(site: Site, found: Sequence[processes.Process] | None = None) -> tuple[Path, int]:
    """One sample for the log (`condaqa usage --sample`): where it went and how many sightings it holds."""
    found = processes.processes() if found is None else found
    seen, kernel_of, _ = running(site, found)
    unreadable = sum(1 for p in found if p.unreadable)
    return sampler.append(site, seen, kernel_of, unreadable), len(seen)


def collect(site: Site, since: str = "30d", homes: Sequence[Path] | None = None,
            found: Sequence[processes.Process] | None = None, with_files: bool = True) -> Usage:
    """Every source of evidence for every environment of current."""
    real = prefixes(site)
    specs = find_kernels(site)
    by_env = {env: EnvUsage(env, str(path)) for env, path in real.items()}
    seen, kernel_of, unreadable = running(site, found, specs)
    for s in seen:
        kernel = kernel_of.get(s.process.pid)
        source, what = ("kernel", f"kernel {kernel} ({s.process.command})") if kernel else \
            ("process", s.process.command)
        by_env[s.env].evidence.append(Evidence(source, stamp(s.process.started), s.process.user,
                                               f"pid {s.process.pid}: {what}", now=True, pid=s.process.pid,
                                               detail=f"{s.how} {s.path}"))
    log = sampler.read(site, durations.seconds(since))
    for env, newest in log.last_seen().items():
        if env in by_env:
            kernel = f"kernel {newest.kernel}: " if newest.kernel else ""
            times = f"seen in {log.times_seen(env)} of {log.samples} samples since {_iso_stamp(log.first)}"
            by_env[env].evidence.append(Evidence("sampler", _iso_stamp(newest.time), newest.user,
                                                 f"{kernel}{newest.command}", detail=times))
    for fact in kernels.spec_facts(site, specs):
        if fact.env in by_env:
            by_env[fact.env].evidence.append(Evidence("kernel spec", stamp(fact.modified), "-",
                                                      f"kernel spec {fact.kernel} ({fact.spec_file}) runs it",
                                                      "a hub offers it; that says nothing of who starts it"))
    if with_files:
        unreadable += _file_evidence(site, by_env, real, homes)
    return Usage(list(by_env.values()), since, log, unreadable)


def _file_evidence(site: Site, by_env: dict[str, EnvUsage], real: dict[str, Path],
                   homes: Sequence[Path] | None) -> list[str]:
    known = files.mounts()
    facts = [f for env, path in real.items() for f in (files.access_time(env, path, known), files.history(env, path))
             if f is not None]
    listed, unreadable = files.environments_txt(real, group_homes(site) if homes is None else homes)
    for fact in facts + listed:
        by_env[fact.env].evidence.append(Evidence(fact.source, stamp(fact.time), fact.user, fact.what, fact.weakness))
    return unreadable

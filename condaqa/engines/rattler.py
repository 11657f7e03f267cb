"""The rattler engine: solve and link with py-rattler, no conda binary needed.

It is the embedded default (demo, selftests) and builds real environments: real package
archives, real solver, real linking. It leaves them as conda would (records.py) and writes
conda's own history entry with the specs it built from, which py-rattler leaves empty. The
py-rattler calls run in the engine worker (worker.py). Its package cache is
`<installation>/pkgs/.rattler`, apart from conda's own `pkgs/` layout, so that an installation
built by both engines never has two writers of one cache format.
"""

from __future__ import annotations

import asyncio
import bz2
from pathlib import Path
from typing import TextIO

import rattler
import rattler.index
from rattler.exceptions import SolverError

from condaqa import atomic, channels, worker
from condaqa.engines import Engine, records
from condaqa.engines.history import Dist, append_history, history_entry
from condaqa.errors import BuildError
from condaqa.plan.model import BuildPlan
from condaqa.sandbox.box import sandbox_for
from condaqa.site import Installation, Site
from condaqa.spec.export import canonical_channel
from condaqa.vocab import Stage


def cache_dir(installation: Installation, pkgs: Path | None = None) -> Path:
    """py-rattler's cache inside the package cache `pkgs` (default: the installation's own pkgs/)."""
    return (pkgs or installation.path / "pkgs") / ".rattler"


def bytecode_cache(installation: Installation) -> Path:
    """Bytecode compiled for the cache's noarch:python packages, by interpreter build (bytecode.py)."""
    return cache_dir(installation) / "pyc"


def _solve(
    site: Site, specs: list[str], locked: list[rattler.PrefixRecord] | None = None
) -> list[rattler.RepoDataRecord]:
    try:
        return asyncio.run(
            rattler.solve(
                sources=channels.sources(site),
                specs=specs,
                platforms=[rattler.Subdir(channels.qa_platform(site)), rattler.Subdir("noarch")],
                locked_packages=locked,
                virtual_packages=rattler.VirtualPackage.detect(),
                channel_priority=rattler.ChannelPriority.Strict,
            )
        )
    except SolverError as exc:
        raise BuildError(f"the solver could not satisfy the specs:\n{exc}", stage=Stage.SOLVE) from None


def _install(records_: list[rattler.RepoDataRecord], site: Site, installation: Installation, prefix: Path,
             stage: Stage) -> list[str]:
    """Link `records_`; returns the conda-meta file names it added."""
    meta = prefix / "conda-meta"
    before = set(p.name for p in meta.glob("*.json")) if meta.is_dir() else set()
    cache = cache_dir(installation, site.package_cache(installation))
    try:
        asyncio.run(rattler.install(records_, target_prefix=prefix, cache_dir=cache,
                                    show_progress=False))
    except Exception as exc:
        if not worker.is_engine_failure(exc):  # a bug of condaqa's: the worker reports it as one
            raise
        raise BuildError(f"linking failed: {exc}", stage=stage) from None
    return sorted(p.name for p in meta.glob("*.json") if p.name not in before)


def _create(site: Site, installation: Installation, plan: BuildPlan, prefix: Path) -> list[str]:
    """Solve, link, finish the records and write history; returns the log lines (runs in the worker)."""
    specs = list(plan.conda)
    solved = _solve(site, specs)
    records.finish(prefix, plan.env, specs, _install(solved, site, installation, prefix, Stage.INSTALL),
                   sandbox=sandbox_for(site), cache=bytecode_cache(installation))
    dists = _dists(solved)
    entry = history_entry(f"condaqa replicate --env {plan.env}", dists, specs, installation.conda_version())
    append_history(prefix, entry)
    return [f"  {d}" for d in sorted(dists, key=str)]


def _dists(solved: list[rattler.RepoDataRecord]) -> list[Dist]:
    """The records as conda's history names them: channel as conda shows it (a local one by its URL)."""
    return [Dist(canonical_channel(str(r.channel), {}), str(r.subdir), r.name.normalized, str(r.version), str(r.build))
            for r in solved]


def _add(site: Site, installation: Installation, env: str, prefix: Path, spec: str) -> list[str]:
    """Solve `spec` with every installed record pinned, link only what is new, record history (in the worker)."""
    existing = [rattler.PrefixRecord.from_path(p) for p in sorted((prefix / "conda-meta").glob("*.json"))]
    pins = [f"{r.name.normalized} =={r.version} {r.build}" for r in existing]
    try:
        solved = _solve(site, [*pins, spec], locked=existing)
    except BuildError as exc:
        raise BuildError(f"{spec} cannot be added to the environment as built: {exc}", stage=Stage.POST_STEP) from None
    records.finish(prefix, env, [spec], _install(solved, site, installation, prefix, Stage.POST_STEP),
                   sandbox=sandbox_for(site), cache=bytecode_cache(installation))
    have = {(r.name.normalized, str(r.version), str(r.build)) for r in existing}
    added = [d for d in _dists(solved) if (d.name, d.version, d.build) not in have]
    command = f"condaqa replicate --env {env} (post-create step)"
    append_history(prefix, history_entry(command, added, [spec], installation.conda_version()))
    return [f"  {d}" for d in sorted(added, key=str)]


def _urls(site: Site, specs: list[str]) -> dict[str, str]:
    return {r.name.normalized: r.url for r in _solve(site, specs)}


def solved_urls(site: Site, specs: list[str]) -> dict[str, str]:
    """name -> URL of the package a solve of `specs` picks: which channel each comes from (rescue's tests)."""
    return worker.call(_urls, site, specs)


def _index(channel: Path) -> None:
    asyncio.run(rattler.index.index_fs(channel, write_zst=False, write_shards=False))


def index_channel(channel: Path) -> None:
    """Write repodata.json for every subdir of a local channel folder, and beside it the repodata.json.bz2
    that conda 4.3 fetches from a file:// channel (the conda engine reads ROOT/rescue too)."""
    worker.call(_index, channel)
    for repodata in channel.glob("*/repodata.json"):
        atomic.write_bytes(repodata.with_name("repodata.json.bz2"), bz2.compress(repodata.read_bytes()))


class RattlerEngine(Engine):
    name = "rattler"

    def create(self, site: Site, installation: Installation, plan: BuildPlan, prefix: Path, log: TextIO) -> None:
        log.write(f"solving {len(plan.conda)} specs against {', '.join(site.channels)}; linking into {prefix}\n")
        log.flush()
        for line in worker.call(_create, site, installation, plan, prefix):
            log.write(line + "\n")

    def add(self, site: Site, installation: Installation, env: str, prefix: Path, spec: str, log: TextIO) -> None:
        log.write(f"adding {spec} to {prefix} on its own, every installed package pinned\n")
        log.flush()
        for line in worker.call(_add, site, installation, env, prefix, spec):
            log.write(line + "\n")

    def forget(self, site: Site, installation: Installation, prefix: Path) -> None:
        """py-rattler keeps nothing about a prefix outside it."""


ENGINE = RattlerEngine()

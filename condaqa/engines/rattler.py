"""The rattler engine: solve and link with py-rattler, no conda binary needed.

It is the embedded default (demo, selftests) and builds real environments: real package
archives, real solver, real linking. py-rattler leaves conda-meta/history empty, so the
engine writes conda's own history entry with the specs it built from. The py-rattler calls
run in a child process (see isolated.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TextIO

import rattler
import rattler.index
from rattler.exceptions import SolverError

from condaqa import channels
from condaqa.engines import isolated
from condaqa.engines.history import Dist, append_history, history_entry
from condaqa.errors import BuildError
from condaqa.plan import BuildPlan
from condaqa.site import Installation, Site


def _solve(
    site: Site, specs: list[str], locked: list[rattler.PrefixRecord] | None = None
) -> list[rattler.RepoDataRecord]:
    try:
        return asyncio.run(
            rattler.solve(
                sources=channels.sources(site),
                specs=specs,
                platforms=[channels.qa_platform(site), "noarch"],
                locked_packages=locked,
                virtual_packages=rattler.VirtualPackage.detect(),
                channel_priority=rattler.ChannelPriority.Strict,
            )
        )
    except SolverError as exc:
        raise BuildError(f"the solver could not satisfy the specs:\n{exc}", stage="solve") from None


def _create(site: Site, installation: Installation, plan: BuildPlan, prefix: Path) -> list[str]:
    """Solve, link and record history; returns the log lines (runs in the child)."""
    specs = list(plan.conda)
    records = _solve(site, specs)
    try:
        asyncio.run(
            rattler.install(records, target_prefix=prefix, cache_dir=installation.path / "pkgs", show_progress=False)
        )
    except Exception as exc:  # py-rattler raises one exception type per failure cause
        raise BuildError(f"linking failed: {exc}", stage="install") from None
    dists = _dists(site, records)
    append_history(prefix, history_entry(f"condaqa replicate --env {plan.env}", dists, specs, installation.conda_version()))
    return [f"  {d}" for d in sorted(dists, key=str)]


def _dists(site: Site, records: list[rattler.RepoDataRecord]) -> list[Dist]:
    names = {url.rstrip("/"): name for name, url in zip(site.channels, site.channel_urls())}
    return [
        Dist(names.get(str(r.channel).rstrip("/"), str(r.channel).rstrip("/")), str(r.subdir), r.name.normalized, str(r.version), r.build)
        for r in records
    ]


def _add(site: Site, installation: Installation, env: str, prefix: Path, spec: str) -> list[str]:
    """Solve `spec` with every installed record pinned, link only what is new, record history (in the child)."""
    existing = [rattler.PrefixRecord.from_path(p) for p in sorted((prefix / "conda-meta").glob("*.json"))]
    pins = [f"{r.name.normalized} =={r.version} {r.build}" for r in existing]
    try:
        records = _solve(site, [*pins, spec], locked=existing)
    except BuildError as exc:
        raise BuildError(f"{spec} cannot be added to the environment as built: {exc}", stage="post-step") from None
    try:
        asyncio.run(
            rattler.install(records, target_prefix=prefix, cache_dir=installation.path / "pkgs", show_progress=False)
        )
    except Exception as exc:  # py-rattler raises one exception type per failure cause
        raise BuildError(f"linking {spec} failed: {exc}", stage="post-step") from None
    have = {(r.name.normalized, str(r.version), r.build) for r in existing}
    added = [d for d in _dists(site, records) if (d.name, d.version, d.build) not in have]
    command = f"condaqa replicate --env {env} (post-create step)"
    append_history(prefix, history_entry(command, added, [spec], installation.conda_version()))
    return [f"  {d}" for d in sorted(added, key=str)]


def _index(channel: Path) -> None:
    asyncio.run(rattler.index.index_fs(channel, write_zst=False, write_shards=False))


def index_channel(channel: Path) -> None:
    """Write repodata.json for every subdir of a local channel folder."""
    isolated.call(_index, channel)


class RattlerEngine:
    def create(self, site: Site, installation: Installation, plan: BuildPlan, prefix: Path, log: TextIO) -> None:
        log.write(f"solving {len(plan.conda)} specs against {', '.join(site.channels)}; linking into {prefix}\n")
        log.flush()
        for line in isolated.call(_create, site, installation, plan, prefix):
            log.write(line + "\n")

    def add(self, site: Site, installation: Installation, env: str, prefix: Path, spec: str, log: TextIO) -> None:
        log.write(f"adding {spec} to {prefix} on its own, every installed package pinned\n")
        log.flush()
        for line in isolated.call(_add, site, installation, env, prefix, spec):
            log.write(line + "\n")


ENGINE = RattlerEngine()

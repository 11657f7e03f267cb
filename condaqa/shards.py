"""Shards: a qualification split into N independent pytest processes, one per host of the site's scheduler.

Shard I of N (1-based) runs whole environments only: an environment's build, imports, owner checks and
kernel tests stay together. Every shard computes the same assignment on its own, with no scheduler of
condaqa's: environments are packed longest first into the least loaded shard by the durations of the
last complete qualification (ROOT/.condaqa/durations/<installation>.json, written only when a whole run
or every shard of one is done, so shards that start at different times still agree), and by a stable
hash of the name when there is no such file. Each shard writes reports/junit-I-of-N.xml and a part
(reports/shard-I-of-N.json); merging the parts makes one junit.xml and the summary, and says which
shards are missing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from condaqa import atomic
from condaqa.errors import ConfigError
from condaqa.site import Site

SHARD_ENV = (("CI_NODE_INDEX", "CI_NODE_TOTAL", 1), ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", 0))


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    total: int

    @property
    def label(self) -> str:
        return f"{self.index}/{self.total}"

    @property
    def suffix(self) -> str:
        return f"{self.index}-of-{self.total}"


def parse(text: str, source: str = "--shard") -> Shard:
    """`I/N` with 1 <= I <= N; anything else is a usage error naming where it came from."""
    found = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not found:
        raise ConfigError(f"{source} {text!r}: give the shard as I/N, e.g. 2/3 (the second of three)")
    shard = Shard(int(found[1]), int(found[2]))
    if not 1 <= shard.index <= shard.total:
        raise ConfigError(f"{source} {text!r}: the shard number must lie between 1 and {shard.total}")
    return shard


def from_environ(environ: Mapping[str, str]) -> Shard | None:
    """The shard a CI or batch scheduler gives this process: GitLab's CI_NODE_INDEX (1-based) of
    CI_NODE_TOTAL, or a Slurm array task (SLURM_ARRAY_TASK_ID from SLURM_ARRAY_TASK_MIN) of
    SLURM_ARRAY_TASK_COUNT; None when neither is set, or when the job is not parallel."""
    for index_key, total_key, base in SHARD_ENV:
        if index_key not in environ or total_key not in environ:
            continue
        source = f"${index_key}/${total_key}"
        try:
            index, total = int(environ[index_key]), int(environ[total_key])
            if index_key.startswith("SLURM"):
                index -= int(environ.get("SLURM_ARRAY_TASK_MIN", "0"))
        except ValueError:
            raise ConfigError(f"{source}: {environ[index_key]!r}/{environ[total_key]!r} are not numbers") from None
        if total <= 1:
            return None
        return parse(f"{index + 1 - base}/{total}", source)
    return None


def durations_file(site: Site, installation: str) -> Path:
    return site.state_dir / "durations" / f"{installation}.json"


def load_durations(site: Site, installation: str) -> dict[str, float]:
    """Seconds per environment of the last complete qualification, {} when there was none (or it is unreadable)."""
    try:
        data = json.loads(durations_file(site, installation).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))}


def save_durations(site: Site, installation: str, seconds: Mapping[str, float]) -> None:
    """Kept for the next run's assignment; written only once a run (or every shard of one) is done."""
    rounded = {k: round(v, 3) for k, v in sorted(seconds.items())}
    atomic.write_text(durations_file(site, installation), json.dumps(rounded, indent=1) + "\n")


def _hashed(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def assign(names: Sequence[str], total: int, durations: Mapping[str, float]) -> dict[str, int]:
    """environment -> shard (1-based): greedy longest-first into the least loaded shard, by the last run's
    durations (an environment without one counts as the mean of the others); without any, every environment
    counts the same and they are dealt in the order of a stable hash of their names. Ties break by that hash
    and the shard number, so every process computes the same answer."""
    known = [durations[n] for n in names if n in durations]
    mean = sum(known) / len(known) if known else 1.0
    load = [0.0] * total
    out = {}
    for name in sorted(names, key=lambda n: (-durations.get(n, mean), _hashed(n))):
        target = min(range(total), key=lambda i: (load[i], i))
        load[target] += durations.get(name, mean)
        out[name] = target + 1
    return out


def digest(assignment: Mapping[str, int]) -> str:
    """One word for an assignment: parts of one run carry the same one."""
    text = json.dumps(sorted(assignment.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

"""Environments that leave `current` at a cutover while someone uses them.

An export-only environment is not rebuilt: after the swap `current/envs/<env>` is gone, and a job
started from it gets "No such file". So the cutover (and its dry run) refuses while a process
runs from one, naming each (pid, user, command), and warns about those the sampler log saw within
site.toml's `usage_window`. `--force --reason` overrides it like every other problem, in the
audit log.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from condaqa import durations
from condaqa.site import Installation, Site
from condaqa.usage import processes, sampler

SHOWN = 10  # processes named per environment


@dataclass(frozen=True)
class InUse:
    problems: list[str]  # running now: the cutover refuses
    warnings: list[str]  # seen within the window, and what could not be read


def in_use(site: Site, old: Installation, new: Installation, leaving: Sequence[str],
           found: Sequence[processes.Process] | None = None) -> InUse:
    """Which of `leaving` (environments of `old` that `new` does not hold) run now, or ran lately."""
    if not leaving:
        return InUse([], [])
    real = {env: (Path(os.path.realpath(old.env_prefix(env))), old.env_prefix(env), site.current_link / "envs" / env,
                  site.envs_link / env) for env in leaving}
    found = processes.processes() if found is None else found
    running: dict[str, list[processes.Sighting]] = {}
    for sighting in processes.sightings(found, real):
        running.setdefault(sighting.env, []).append(sighting)
    problems = []
    for env, seen in sorted(running.items()):
        named = "; ".join(f"pid {s.process.pid} ({s.process.user}) {s.process.command}" for s in seen[:SHOWN])
        more = f"; and {len(seen) - SHOWN} more" if len(seen) > SHOWN else ""
        problems.append(f"{env}: in use now by {len(seen)} process(es): {named}{more}; {new.name} does not hold it, "
                        f"so it leaves {site.current_link}/envs at the cutover: wait for them to end, or mark it "
                        "REPLICATE and qualify it")
    window = site.usage_window
    log = sampler.read(site, durations.seconds(window))
    warnings = [f"{env}: seen in use {s.time} by {s.user} ({s.command}) within the last {durations.words(window)} "
                f"(usage_window in {site.file}); it leaves {site.current_link}/envs at the cutover"
                for env, s in sorted(log.last_seen().items()) if env in real and env not in running]
    if os.geteuid() != 0:  # as root, only what root cannot read either (the init process) stays unread
        warnings += [f"could not read {u}" for u in processes.unreadable_words(found)]
    return InUse(problems, warnings)

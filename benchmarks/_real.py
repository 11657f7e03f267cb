"""Steps shared by the benchmarks that build real environments (replicate, qualify, scaling)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from _common import PYTHON, BENCH, Run, condaqa_cmd, log, pytest_cmd, run
from synthetic import RealSite

from condaqa import results
from condaqa.build import STAMP, plan_environment
from condaqa.checks import key_modules
from condaqa.manifest import load_manifest
from condaqa.site import load_site


def write_plans(site: RealSite, n: int, *, modules: bool) -> Path:
    """What condaqa builds for the first n environments, for the plain loop (untimed)."""
    loaded = load_site(site.site_toml(n))
    plans = {}
    for env in load_manifest(loaded.manifest):
        if not env.replicate:
            continue
        plan, _ = plan_environment(loaded, env)
        plans[env.name] = {
            "conda": list(plan.conda), "pip": list(plan.pip), "pip_args": list(plan.pip_args),
            "channels": loaded.channel_urls(), "modules": key_modules(loaded, env) if modules else [],
        }
    path = site.work / f"plans-{n}{'-modules' if modules else ''}.json"
    path.write_text(json.dumps(plans, indent=1), encoding="utf-8")
    return path


def subset(plans: Path, names: list[str]) -> Path:
    """A plans file holding only `names` (for a chunk of the paired comparison)."""
    data = json.loads(plans.read_text(encoding="utf-8"))
    path = plans.with_name(f"{plans.stem}-{names[0]}-{len(names)}.json")
    path.write_text(json.dumps({k: data[k] for k in names}, indent=1), encoding="utf-8")
    return path


def baseline_dir(site: RealSite) -> Path:
    return site.work / "baseline" / "envs"


def plain_loop(site: RealSite, plans: Path, *flags: str) -> Run:
    """The plain py-rattler loop over the plans, into a scratch folder, with qa's package cache."""
    target = baseline_dir(site)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    measured = run([PYTHON, str(BENCH / "plain_loop.py"), str(plans), str(target), str(site.root / "v2" / "pkgs"),
                    *flags]).check()
    measured.extra = json.loads(measured.stdout.strip().splitlines()[-1])
    shutil.rmtree(target, ignore_errors=True)
    return measured


def imports_only(site: RealSite, plans: Path) -> Run:
    """The plain loop's imports alone, in the environments built in qa: what a no-change re-run must redo."""
    measured = run([PYTHON, str(BENCH / "plain_loop.py"), str(plans), str(site.root / "v2" / "envs"),
                    str(site.root / "v2" / "pkgs"), "--no-build", "--imports"]).check()
    measured.extra = json.loads(measured.stdout.strip().splitlines()[-1])
    return measured


def warm_cache(site: RealSite, plans: Path) -> None:
    """Fill qa's package cache so that condaqa and the plain loop both link from a warm cache."""
    log("warming qa's package cache (untimed plain loop, no pip)")
    plain_loop(site, plans)


def replicate(site: RealSite, n: int, start: int = 0, *, command: list[str] | None = None) -> tuple[Run, int]:
    """`condaqa replicate` of environments start..n-1; returns the run and how many were (re)built.

    `command` replaces `python -m condaqa.cli` (the persistent-child prototype).
    """
    toml = site.site_toml(n, start)
    started = time.time()
    cmd = [*command, "--site", str(toml), "replicate"] if command else condaqa_cmd(toml, "replicate")
    measured = run(cmd).check()
    measured.extra = {"started": measured.started_at, "per_env": per_env_seconds(site, n, measured.started_at, start)}
    return measured, rebuilt_since(site, n, started, start)


def built_times(site: RealSite, n: int, start: int = 0) -> dict[str, float]:
    """When each of environments start..n-1 was last built in qa (condaqa's stamp), by name."""
    out = {}
    for env in site.envs[start:n]:
        try:
            out[env.name] = json.loads((site.root / "v2" / "envs" / env.name / STAMP).read_text(encoding="utf-8"))["built"]
        except (OSError, ValueError, KeyError):
            continue
    return out


def rebuilt_since(site: RealSite, n: int, since: float, start: int = 0) -> int:
    return sum(1 for built in built_times(site, n, start).values() if built >= since)


def per_env_seconds(site: RealSite, n: int, started: float, start: int = 0) -> dict[str, float]:
    """Seconds each environment took in a sequential `condaqa replicate`: time between stamps."""
    out, previous = {}, started
    for name, built in sorted(built_times(site, n, start).items(), key=lambda kv: kv[1]):
        if built < started:
            continue
        out[name] = built - previous
        previous = built
    return out


def qualify(site: RealSite, n: int, workers: int) -> tuple[Run, dict]:
    """`pytest -n WORKERS --site ...` on the first n environments (the others are export-only, deselected)."""
    toml = site.site_toml(n)
    measured = run(pytest_cmd(toml, workers, "--deselect", "tests/test_environments.py::test_export_only"))
    if measured.returncode != 0:
        measured.check()
    loaded = load_site(toml)
    recorded = results.load_all(loaded, "v2")
    chosen = {e.name for e in site.envs[:n]}
    summary = {
        "environments": len(chosen),
        "passed": sum(1 for name, r in recorded.items() if name in chosen and r.outcome == results.PASSED),
        "rebuilt": sum(1 for name, r in recorded.items() if name in chosen and r.rebuilt),
    }
    return measured, summary

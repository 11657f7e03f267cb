"""Steps shared by the benchmarks that build real environments (replicate, qualify, scaling)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from _common import BENCH, PYTHON, Run, condaqa_cmd, log, pytest_cmd, run
from synthetic import RealSite

from condaqa.checks.imports import key_modules
from condaqa.engines.rattler import cache_dir
from condaqa.kernels.specs import find_kernels
from condaqa.manifest import load_manifest
from condaqa.plan.planning import plan_environment
from condaqa.qualification import store, verdict
from condaqa.replication.stamp import read_stamp
from condaqa.sandbox.box import sandbox_for
from condaqa.site import Installation, Site, load_site
from condaqa.vocab import Verdict


def write_plans(site: RealSite, n: int, *, modules: bool) -> Path:
    """What condaqa builds for the first n environments, for the plain loop (untimed)."""
    loaded = load_site(site.site_toml(n), base=site.work)
    sandbox = sandbox_for(loaded)
    plans = {}
    for env in load_manifest(loaded.manifest):
        if not env.replicate:
            continue
        plan, _ = plan_environment(loaded, env)
        plans[env.name] = {
            "conda": list(plan.conda), "pip": list(plan.pip), "pip_args": list(plan.pip_args),
            "channels": loaded.channel_urls(), "modules": key_modules(sandbox, env) if modules else [],
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


def qa_cache(site: RealSite) -> Path:
    """qa's package cache as condaqa's rattler engine keeps it: the plain loop links from the same one."""
    return cache_dir(Installation("v2", site.root / "v2"))


def plain_loop(site: RealSite, plans: Path, *flags: str, cache: Path | None = None,
               env: dict[str, str] | None = None) -> Run:
    """The plain loop over the plans (py-rattler's, or conda's with --conda=BIN_CONDA), into a scratch folder,
    with qa's package cache (py-rattler's unless `cache` names another) and `env` added to the environment."""
    target = baseline_dir(site)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    measured = run([PYTHON, str(BENCH / "plain_loop.py"), str(plans), str(target), str(cache or qa_cache(site)),
                    *flags], env=env).check()
    measured.extra = json.loads(measured.stdout.strip().splitlines()[-1])
    shutil.rmtree(target, ignore_errors=True)
    return measured


def imports_only(site: RealSite, plans: Path) -> Run:
    """The plain loop's imports alone, in the environments built in qa: what a no-change re-run must redo."""
    measured = run([PYTHON, str(BENCH / "plain_loop.py"), str(plans), str(site.root / "v2" / "envs"),
                    str(qa_cache(site)), "--no-build", "--imports"]).check()
    measured.extra = json.loads(measured.stdout.strip().splitlines()[-1])
    return measured


def warm_cache(site: RealSite, plans: Path) -> None:
    """Fill qa's package cache so that condaqa and the plain loop both link from a warm cache."""
    log("warming qa's package cache (untimed plain loop, no pip)")
    plain_loop(site, plans)


def conda_environ(site: Site, scratch: Path) -> dict[str, str]:
    """What a plain loop of a real conda runs with: qa's configuration and package cache, a scratch HOME (conda
    writes ~/.conda/environments.txt), nothing of the invoker's conda, pip or python settings, the site's
    pip_args as PIP_NO_INDEX / PIP_FIND_LINKS (for a `conda env create` that runs pip itself)."""
    qa = site.qa_installation().path
    home = scratch / "home"
    home.mkdir(parents=True, exist_ok=True)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CONDA", "PIP_", "PYTHON", "MAMBA"))}
    args = [site.expand(a) for a in site.pip_args]
    environ.update(HOME=str(home), CONDARC=str(qa / ".condarc"), CONDA_PKGS_DIRS=str(qa / "pkgs"),
                   PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1" if "--no-index" in args else "0")
    if "--find-links" in args:
        environ["PIP_FIND_LINKS"] = args[args.index("--find-links") + 1]
    return environ


def replicate(site: RealSite, n: int, start: int = 0, engine: str = "rattler") -> tuple[Run, int]:
    """`condaqa replicate` of environments start..n-1 with `engine`, from the work folder; returns the run and
    how many were (re)built."""
    toml = site.site_toml(n, start, engine)
    started = time.time()
    measured = run(condaqa_cmd(toml, "replicate"), cwd=site.work).check()
    measured.extra = {"started": measured.started_at, "per_env": per_env_seconds(site, n, measured.started_at, start)}
    return measured, rebuilt_since(site, n, started, start)


def built_times(site: RealSite, n: int, start: int = 0) -> dict[str, float]:
    """When each of environments start..n-1 was last built in qa (condaqa's stamp), by name."""
    stamps = {env.name: read_stamp(site.root / "v2" / "envs" / env.name) for env in site.envs[start:n]}
    return {name: stamp.built for name, stamp in stamps.items() if stamp is not None}


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


def qualify(site: RealSite, n: int, workers: int | str) -> tuple[Run, dict]:
    """`pytest --pyargs condaqa.suite -n WORKERS --site ...` on the first n environments (the others are
    export-only, their tests deselected)."""
    return qualify_at(site.site_toml(n), site.work, workers, "-k", "not test_export_only")


def qualify_at(site_toml: Path, work: Path, workers: int | str, *extra: str) -> tuple[Run, dict]:
    """The shipped suite on a site, run from `work` (its reports/ go there). "passed" counts the REPLICATE
    environments condaqa's verdict passes afterwards; "rebuilt" those built during the run."""
    site = load_site(site_toml, base=work)
    chosen = [env for env in load_manifest(site.manifest) if env.replicate]
    before = {env.name: build_id(site, env.name) for env in chosen}
    measured = run(pytest_cmd(site_toml, workers, *extra), cwd=work).check()
    kernels = find_kernels(site)
    qa = site.qa_installation().name
    results = {env.name: store.load(site, qa, env.name) for env in chosen}
    summary = {
        "environments": len(chosen),
        "passed": sum(1 for env in chosen if verdict.standing(site, qa, env, kernels).verdict is Verdict.PASSED),
        "rebuilt": sum(1 for name, r in results.items()
                       if r and r.build and r.build.rebuilt and r.build.build_id != before[name]),
    }
    return measured, summary


def build_id(site: Site, env: str) -> str:
    """The build `env`'s qa result is about ("" if none). A result keeps the record of the build it judges,
    `rebuilt` included, until another build replaces it: a build made by a run is one whose id is new."""
    result = store.load(site, site.qa_installation().name, env)
    return result.build.build_id if result and result.build else ""

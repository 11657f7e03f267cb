"""Choosing -n: `pytest --pyargs condaqa.suite -n W --site PATH` for W = 0, 2, auto and 8, on two sites.

    python benchmarks/bench_workers.py [--workers 0,2,auto,8] [--envs 60] [--repeat 2] [--sites demo,real]

Each W qualifies the site twice, as a site runs the shipped suite (from its qualification
project's folder): a first run from an empty qa, every environment built, then a re-run with
nothing changed, nothing rebuilt and every check run again. The sites are the embedded demo
(its REPLICATE environments built, its two kernels started for real), built under
.work/workers/ with a copy of the repository's manifests and env_checks, and the synthetic
real site of --envs environments (no owner checks, no kernels). qa's package cache is filled
by an untimed pass first (`condaqa replicate` on the demo, the plain loop on the real site)
and kept when qa is emptied before each first run. The Ws take turns in rotating order,
--repeat times; the best run of each counts. `summarize.py --choosing-n` renders the README's
table from the result.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _common import REPO, WORK, Run, condaqa_cmd, log, run, table, write_results
from _real import qualify, qualify_at, warm_cache, write_plans
from synthetic import real_site

from condaqa.demo.site import ensure_demo
from condaqa.manifest import site_manifest
from condaqa.qualification import store
from condaqa.site import Site, load_site

DEMO_ROOT = 'root = "../.condaqa-demo"'  # the line of manifests/site.toml that names the demo's root


@dataclass(frozen=True)
class Target:
    """A site to qualify: how to run the suite on it with -n W, and how to empty its qa."""

    key: str
    label: str
    qualify: Callable[[str], tuple[Run, dict]]
    clear: Callable[[], None]


def auto_workers() -> int:
    """How many workers `-n auto` starts here, counted as pytest-xdist counts them: physical cores (psutil),
    else the cores this process may use."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return int(os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"])
    try:
        import psutil
    except ImportError:
        return len(os.sched_getaffinity(0))
    return int(psutil.cpu_count(logical=False) or psutil.cpu_count() or 1)


def clear_qa(site: Site, work: Path) -> None:
    """Forget every build in qa (environments, results, reports) but keep its package cache."""
    qa = site.qa_installation()
    for child in qa.envs_dir.iterdir():
        shutil.rmtree(child)
    for folder in (store.results_dir(site, qa.name), work / "reports"):
        shutil.rmtree(folder, ignore_errors=True)


def demo_target(work: Path) -> Target:
    """The embedded demo at work/site; its project (work/project) holds a copy of the repository's manifests
    and env_checks, with root pointing at the site."""
    project = work / "project"
    for name in ("manifests", "env_checks"):
        shutil.copytree(REPO / name, project / name, dirs_exist_ok=True)
    text = (REPO / "manifests" / "site.toml").read_text(encoding="utf-8")
    if DEMO_ROOT not in text:
        raise SystemExit(f"{REPO / 'manifests' / 'site.toml'} has no line {DEMO_ROOT}: where is the demo's root?")
    site_toml = project / "manifests" / "site.toml"
    site_toml.write_text(text.replace(DEMO_ROOT, f'root = "{work / "site"}"'), encoding="utf-8")
    site = load_site(site_toml, base=project)
    ensure_demo(site, progress=log)
    log("filling the demo's qa package cache (untimed condaqa replicate)")
    run(condaqa_cmd(site_toml, "replicate"), cwd=project).check()
    replicated = sum(1 for env in site_manifest(site) if env.replicate)
    return Target("demo", f"demo ({replicated} REPLICATE)", lambda w: qualify_at(site_toml, project, w),
                  lambda: clear_qa(site, project))


def real_target(n: int) -> Target:
    """The synthetic site's first n environments (any others there are export-only, their tests deselected)."""
    site = real_site(n)
    warm_cache(site, write_plans(site, n, modules=False))
    return Target("real", f"{n} envs", lambda w: qualify(site, n, w), site.clear_qa)


def measure(target: Target, workers: list[str], repeat: int) -> dict:
    """First run and re-run of every W, `repeat` times in rotating order; the best of each counts."""
    runs: dict[str, dict[str, list[tuple[Run, dict]]]] = {"first": {w: [] for w in workers},
                                                         "rerun": {w: [] for w in workers}}
    for number in range(repeat):
        shift = number % len(workers)
        for w in workers[shift:] + workers[:shift]:
            target.clear()
            for phase in ("first", "rerun"):
                log(f"[{number + 1}/{repeat}] {target.label}: pytest -n {w}, {phase}")
                measured, facts = target.qualify(w)
                built = facts["environments"] if phase == "first" else 0
                if facts["rebuilt"] != built:
                    raise SystemExit(f"{target.label}, -n {w}, {phase}: {facts['rebuilt']} environments rebuilt, "
                                     f"expected {built}")
                runs[phase][w].append((measured, facts))
    out: dict = {"environments": runs["first"][workers[0]][0][1]["environments"]}
    for phase, by_w in runs.items():
        best = {w: min(by_w[w], key=lambda pair: pair[0].seconds) for w in workers}
        out[phase] = {w: {**r.summary(), **facts} for w, (r, facts) in best.items()}
    out["all_seconds"] = {phase: {w: [round(r.seconds, 3) for r, _ in by_w[w]] for w in workers}
                          for phase, by_w in runs.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="0,2,auto,8", help="pytest -n values, comma-separated")
    parser.add_argument("--envs", type=int, default=60, help="environments of the real site")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each W; the best counts")
    parser.add_argument("--sites", default="demo,real", help="demo, real or both, comma-separated")
    args = parser.parse_args(argv)
    workers = args.workers.split(",")
    kinds = args.sites.split(",")
    if not set(kinds) <= {"demo", "real"}:
        parser.error(f"--sites takes demo and real, not {args.sites}")
    targets = [demo_target(WORK / "workers" / "demo") if kind == "demo" else real_target(args.envs) for kind in kinds]
    results = {target.key: {"label": target.label, **measure(target, workers, args.repeat)} for target in targets}

    rows = []
    for target in targets:
        got = results[target.key]
        for phase, words in (("first", "first run"), ("rerun", "re-run, nothing changed")):
            rows.append([f"{target.label}, {words}", *(got[phase][w]["seconds"] for w in workers)])
    auto = auto_workers()
    table(f"pytest --pyargs condaqa.suite -n W, seconds (best of {args.repeat}; -n auto is {auto} here)",
          ["run", *(f"-n {w}" for w in workers)], rows)
    write_results("workers", {
        "workers": workers,
        "auto_workers": auto,
        "repeat": args.repeat,
        "method": "per site, each W in rotating order: qa emptied (package cache kept), a first run, then a re-run "
                  "with nothing changed; the best run of each",
        "sites": results,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())

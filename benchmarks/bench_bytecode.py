"""The bytecode cache (condaqa/engines/bytecode.py): `condaqa replicate` of N real environments,
each compiling its noarch:python packages itself, against the same builds sharing the cache.

    python benchmarks/bench_bytecode.py [--envs 60]

Both passes build every environment with its own `condaqa replicate --env NAME` from the same warm
package cache, so the commands' start-up is the same on both sides; each build's own time (the
"built in" of its log: solve, link, bytecode, pip, records) is kept beside the command's. "compiled per environment"
empties the bytecode cache before every environment, which is what every build did before the
cache: compile every noarch:python source of the environment. "cache shared" empties it once,
before the first environment, and then keeps it, as a site's builds do: the first environment with
a package compiles it, the next ones link its bytecode. The passes alternate, twice; per environment
the faster of each side's builds counts. After a pass sharing the cache, the .pyc files of the N
environments are counted by link count: how many are shared with another environment.
"""

from __future__ import annotations

import argparse
import re
import shutil

from _common import Run, condaqa_cmd, log, run, table, write_results
from _real import warm_cache, write_plans
from synthetic import real_site

from condaqa.engines.rattler import bytecode_cache
from condaqa.site import Installation

SIDES = ("compiled per environment", "cache shared")


def build_all(site, names: list[str], toml, *, empty_each: bool) -> dict[str, tuple[float, float]]:
    """Build every environment again, one command each, the bytecode cache emptied before each or once:
    by name, (the command's seconds, the build's own seconds from its log)."""
    cache = bytecode_cache(Installation("v2", site.root / "v2"))
    shutil.rmtree(cache, ignore_errors=True)
    built = {}
    for name in names:
        shutil.rmtree(site.root / "v2" / "envs" / name, ignore_errors=True)
        if empty_each:
            shutil.rmtree(cache, ignore_errors=True)
        measured: Run = run(condaqa_cmd(toml, "replicate", "--env", name), cwd=site.work).check()
        last = (site.work / "reports" / "logs" / f"{name}.log").read_text(encoding="utf-8").splitlines()[-1]
        built[name] = (measured.seconds, float(re.match(r"built in ([\d.]+)s", last).group(1)))
    return built


def shared_pycs(site, names: list[str]) -> tuple[int, int]:
    """(.pyc files in the environments, of them hard links of the cache's shared by another environment)."""
    pycs = [p for name in names for p in (site.root / "v2" / "envs" / name).rglob("*.pyc")]
    return len(pycs), sum(1 for p in pycs if p.stat().st_nlink > 2)  # the cache's file, and two environments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=2, help="alternating passes of each side")
    args = parser.parse_args(argv)
    n = args.envs
    site = real_site(n)
    toml = site.site_toml(n)
    warm_cache(site, write_plans(site, n, modules=False))
    names = [e.name for e in site.envs[:n]]
    best: dict[str, dict[str, float]] = {side: {} for side in SIDES}
    builds: dict[str, dict[str, float]] = {side: {} for side in SIDES}
    for number in range(args.repeat):
        order = SIDES if number % 2 == 0 else SIDES[::-1]
        for side in order:
            log(f"[{number + 1}/{args.repeat}] {side}")
            site.clear_qa()
            for name, (command, build) in build_all(site, names, toml, empty_each=side == SIDES[0]).items():
                best[side][name] = min(best[side].get(name, command), command)
                builds[side][name] = min(builds[side].get(name, build), build)
            if side == SIDES[1]:
                pycs, shared = shared_pycs(site, names)
    total = {side: sum(best[side].values()) for side in SIDES}
    own = {side: sum(builds[side].values()) for side in SIDES}
    ratio, own_ratio = total[SIDES[1]] / total[SIDES[0]], own[SIDES[1]] / own[SIDES[0]]
    table(f"Bytecode of {n} environments, one `condaqa replicate --env` each (per environment the best of "
          f"{args.repeat})", ["side", "envs", "command s", "ratio", "build s (logs)", "ratio"],
          [[SIDES[0], n, total[SIDES[0]], "", own[SIDES[0]], ""],
           [SIDES[1], n, total[SIDES[1]], f"{ratio:.2f}x", own[SIDES[1]], f"{own_ratio:.2f}x"]])
    table("Bytecode files in the environments", ["pyc files", "shared with another environment"],
          [[pycs, f"{shared} ({shared / pycs:.0%})" if pycs else "0"]])
    write_results("bytecode", {
        "environments": n, "repeat": args.repeat,
        "method": "one replicate command per environment; the cache emptied before each, or once; best of each",
        "compiled_per_environment_seconds": round(total[SIDES[0]], 3),
        "cache_shared_seconds": round(total[SIDES[1]], 3),
        "ratio": round(ratio, 3), "pyc_files": pycs, "pyc_shared": shared,
        "builds_compiled_per_environment_seconds": round(own[SIDES[0]], 3),
        "builds_cache_shared_seconds": round(own[SIDES[1]], 3), "builds_ratio": round(own_ratio, 3),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

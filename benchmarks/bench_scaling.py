"""Scaling: replication and qualification at 10, 30, 60, 120, 250 and 500 environments.

    python benchmarks/bench_scaling.py [--sizes 10,30,60,120,250,500] [--workers 2]

At each size, from an empty qa and the same warm package cache: `condaqa replicate` of the
first N environments, then `pytest -n W` on them (builds included) for each W of --workers
(`--workers 1,2` adds the single-process run; it roughly doubles the time). A least-squares
line t = a + b*N is fitted to each series; growth is linear when R^2 >= 0.99 and the cost per
environment at the largest size is within 15 % of the line's slope.
"""

from __future__ import annotations

import argparse
import sys

from _common import log, table, verdict, write_results
from _real import qualify, replicate, warm_cache, write_plans
from synthetic import real_site

R2_MIN = 0.99
SLOPE_TOLERANCE = 0.15


def fit(points: list[tuple[int, float]]) -> dict:
    """Least squares t = a + b*n, with R^2."""
    k = len(points)
    mean_n = sum(n for n, _ in points) / k
    mean_t = sum(t for _, t in points) / k
    sxx = sum((n - mean_n) ** 2 for n, _ in points)
    sxy = sum((n - mean_n) * (t - mean_t) for n, t in points)
    slope = sxy / sxx
    intercept = mean_t - slope * mean_n
    ss_tot = sum((t - mean_t) ** 2 for _, t in points)
    ss_res = sum((t - (intercept + slope * n)) ** 2 for n, t in points)
    r2 = 1 - ss_res / ss_tot if ss_tot else 1.0
    largest_n, largest_t = max(points)
    per_env_largest = largest_t / largest_n
    linear = r2 >= R2_MIN and abs(per_env_largest - slope) <= SLOPE_TOLERANCE * slope
    return {"intercept_s": round(intercept, 3), "slope_s_per_env": round(slope, 4), "r2": round(r2, 5),
            "per_env_at_largest_s": round(per_env_largest, 4), "linear": linear}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,30,60,120,250,500")
    parser.add_argument("--workers", default="2", help="pytest -n values, comma-separated (default: 2)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    site = real_site(max(sizes))
    warm_cache(site, write_plans(site, max(sizes), modules=False))

    series: dict[str, list[tuple[int, float]]] = {"condaqa replicate": []}
    series.update({f"pytest -n {w}": [] for w in workers})
    memory: dict[str, list[float]] = {k: [] for k in series}
    for n in sizes:
        site.clear_qa()
        log(f"N={n}: condaqa replicate")
        measured, built = replicate(site, n)
        if built != n:
            raise SystemExit(f"condaqa replicate built {built} of {n} environments")
        series["condaqa replicate"].append((n, measured.seconds))
        memory["condaqa replicate"].append(measured.peak_tree_mib)
        for w in workers:
            site.clear_qa()
            log(f"N={n}: pytest -n {w}")
            measured, facts = qualify(site, n, w)
            if facts["passed"] != n:
                raise SystemExit(f"pytest -n {w}: {facts['passed']} of {n} environments passed")
            series[f"pytest -n {w}"].append((n, measured.seconds))
            memory[f"pytest -n {w}"].append(measured.peak_tree_mib)

    fits = {name: fit(points) for name, points in series.items()}
    headers = ["run", *(f"N={n} s" for n in sizes), "s/env (slope)", "R^2", "peak MiB (largest N)", "linear"]
    rows = [[name, *(t for _, t in points), fits[name]["slope_s_per_env"], fits[name]["r2"], max(memory[name]),
             verdict(fits[name]["linear"])] for name, points in series.items()]
    table("Scaling (each run from an empty qa)", headers, rows)
    write_results("scaling", {
        "sizes": sizes,
        "series_seconds": {name: [round(t, 3) for _, t in points] for name, points in series.items()},
        "peak_tree_mib": {name: [round(m, 1) for m in values] for name, values in memory.items()},
        "fits": fits,
        "targets": {"r2_min": R2_MIN, "slope_tolerance": SLOPE_TOLERANCE},
        "met": {"linear": all(f["linear"] for f in fits.values())},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())

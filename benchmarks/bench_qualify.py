"""Qualification: `pytest -n 1` and `-n 2` on N real environments, then a re-run with nothing changed.

    python benchmarks/bench_qualify.py [--envs 60]

Against the plain loop (py-rattler solve + install, pip section, one after another) plus one
`python -c "import <modules>"` per environment, with the modules condaqa imports (the
manifest's `imports`, else the top-level modules that import with current's python). Each
pytest run starts from an empty qa (builds included), from the same warm package cache; the
site has no owner checks. The re-run (-n 2, nothing changed) must rebuild nothing.
"""

from __future__ import annotations

import argparse
import sys

from _common import log, table, verdict, write_results
from _real import imports_only, plain_loop, qualify, warm_cache, write_plans
from synthetic import real_site

TARGET_RATIO = 2.0
TARGET_SPEEDUP = 1.6
TARGET_RERUN = 0.10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=2, help="alternate loop, -n 1 and -n 2 this often; best counts")
    args = parser.parse_args(argv)
    n = args.envs
    site = real_site(n)
    plans = write_plans(site, n, modules=True)
    warm_cache(site, plans)

    loops, ones, twos = [], [], []
    for number in range(args.repeat):
        log(f"[{number + 1}/{args.repeat}] plain loop with imports: {n} environments")
        loops.append(plain_loop(site, plans, "--pip", "--imports"))
        for workers, runs in ((1, ones), (2, twos)):
            site.clear_qa()
            log(f"[{number + 1}/{args.repeat}] pytest -n {workers}: {n} environments")
            runs.append(qualify(site, n, workers))
    loop = min(loops, key=lambda r: r.seconds)
    one, one_facts = min(ones, key=lambda r: r[0].seconds)
    two, two_facts = min(twos, key=lambda r: r[0].seconds)
    log("pytest -n 2 again, nothing changed")
    again, again_facts = qualify(site, n, 2)
    log("plain loop's imports alone, in the environments built in qa")
    imports = imports_only(site, plans)

    ratio = two.seconds / loop.seconds
    speedup = one.seconds / two.seconds
    rerun = again.seconds / two.seconds
    rows = [
        ["plain loop + one import process per env", loop.seconds, loop.seconds / n, "", "", loop.peak_tree_mib, ""],
        ["pytest -n 1", one.seconds, one.seconds / n, f"{one.seconds / loop.seconds:.2f}x loop",
         f"{one_facts['passed']}/{n} passed", one.peak_tree_mib, ""],
        ["pytest -n 2", two.seconds, two.seconds / n, f"{ratio:.2f}x loop, {speedup:.2f}x faster than -n 1",
         f"{two_facts['passed']}/{n} passed", two.peak_tree_mib,
         f"<= {TARGET_RATIO}x loop: {verdict(ratio <= TARGET_RATIO)}; >= {TARGET_SPEEDUP}x -n 1: "
         f"{verdict(speedup >= TARGET_SPEEDUP)}"],
        ["pytest -n 2, nothing changed", again.seconds, again.seconds / n, f"{rerun:.1%} of the first -n 2",
         f"{again_facts['rebuilt']} rebuilt", again.peak_tree_mib,
         f"0 rebuilt: {verdict(again_facts['rebuilt'] == 0)}; <= 10%: {verdict(rerun <= TARGET_RERUN)}"],
        ["plain loop's imports alone (no build)", imports.seconds, imports.seconds / n,
         f"re-run = {again.seconds / imports.seconds:.2f}x this", "", imports.peak_tree_mib, ""],
    ]
    table(f"Qualification of {n} environments (no owner checks; best of {args.repeat})",
          ["run", "seconds", "s/env", "ratio", "result", "peak MiB", "target"], rows)
    write_results("qualify", {
        "environments": n,
        "repeat": args.repeat,
        "all_seconds": {"plain_loop_with_imports": [round(r.seconds, 3) for r in loops],
                        "pytest_n1": [round(r.seconds, 3) for r, _ in ones],
                        "pytest_n2": [round(r.seconds, 3) for r, _ in twos]},
        "plain_loop_with_imports": loop.summary(),
        "pytest_n1": {**one.summary(), **one_facts},
        "pytest_n2": {**two.summary(), **two_facts},
        "rerun_n2": {**again.summary(), **again_facts},
        "plain_loop_imports_only": imports.summary(),
        "ratio_n2_to_loop": round(ratio, 3),
        "ratio_n1_to_loop": round(one.seconds / loop.seconds, 3),
        "speedup_n2_over_n1": round(speedup, 3),
        "rerun_fraction": round(rerun, 4),
        "targets": {"ratio_max": TARGET_RATIO, "speedup_min": TARGET_SPEEDUP, "rerun_fraction_max": TARGET_RERUN},
        "met": {"ratio": ratio <= TARGET_RATIO, "speedup": speedup >= TARGET_SPEEDUP,
                "rerun": rerun <= TARGET_RERUN and again_facts["rebuilt"] == 0},
    })
    return 0 if all(f["passed"] == n for _, f in ones + twos) else 1


if __name__ == "__main__":
    sys.exit(main())

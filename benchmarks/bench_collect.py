"""Collection: `pytest --collect-only` of the shipped qualification suite on a 1,000-environment manifest.

    python benchmarks/bench_collect.py [--envs 1000] [--repeat 3]

The site is the export benchmark's (1,000 environments of 150 packages, all REPLICATE), so the
run parametrizes every test of condaqa.suite by 1,000 environments; it runs from the site's work
folder, as a site's qualification project would. Timed from the command's start to its exit
(interpreter, plugin, manifest, parametrization); the best of --repeat runs counts.
"""

from __future__ import annotations

import argparse
import re
import sys

from _common import PYTHON, log, run, table, verdict, write_results
from synthetic import records_site

TARGET_SECONDS = 3.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, default=1000)
    parser.add_argument("--packages", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    site = records_site(args.envs, args.packages)
    cmd = [PYTHON, "-m", "pytest", "--pyargs", "condaqa.suite", "--collect-only", "-q", "--site", str(site.site_toml),
           "-p", "no:cacheprovider"]
    runs = []
    for number in range(args.repeat):
        log(f"pass {number + 1}/{args.repeat}: {' '.join(cmd[2:])}")
        runs.append(run(cmd, cwd=site.work).check())
    best = min(runs, key=lambda r: r.seconds)
    found = re.search(r"(\d+)(?:/\d+)? tests? collected", best.stdout)
    items = int(found.group(1)) if found else 0
    ok = best.seconds < TARGET_SECONDS
    table(f"Collection of a {args.envs}-environment manifest (best of {args.repeat})",
          ["run", "environments", "tests", "seconds", "peak MiB", "target"],
          [["pytest --collect-only", args.envs, items, best.seconds, best.peak_process_mib,
            f"< {TARGET_SECONDS:.0f} s: {verdict(ok)}"]])
    write_results("collect", {
        "environments": args.envs, "tests_collected": items, "repeat": args.repeat,
        "best": best.summary(), "all_seconds": [round(r.seconds, 3) for r in runs],
        "targets": {"seconds_max": TARGET_SECONDS}, "met": {"seconds": ok},
    })
    return 0 if items else 1


if __name__ == "__main__":
    sys.exit(main())

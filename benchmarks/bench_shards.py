"""Shards (condaqa/shards.py): the real site qualified as one run and as 2 and 3 shards started together.

    python benchmarks/bench_shards.py [--envs 60]

Each configuration starts from an empty qa (builds included) and ends when its last process does:
one `pytest -n 2`, or N processes `pytest -n 1 --shard I/N` at once, each in a UTS namespace of its
own with a host name of its own (`unshare --uts`, as root), on this one machine. Shards are meant for
N machines; on one, the figure is what sharding costs over one run, and whether the shards stay
balanced. The first run leaves the durations the shards balance by. Every configuration must end
with every environment passed, and the shards' merged JUnit must hold the same test cases as the
one run's.
"""

from __future__ import annotations

import argparse
import subprocess
import time
import xml.etree.ElementTree as ET

from _common import log, pytest_cmd, table, wait_quiet, write_results
from synthetic import real_site

from condaqa.kernels.specs import find_kernels
from condaqa.manifest import load_manifest
from condaqa.qualification.verdict import standing
from condaqa.site import load_site
from condaqa.vocab import Verdict


def _host(index: int, total: int) -> list[str]:
    """A shard's own host name, in a UTS namespace of its own (nothing for one run)."""
    if total == 1:
        return []
    return ["unshare", "--uts", "sh", "-c", f'hostname shardhost{index} && exec "$@"', "sh"]


def _cases(junit) -> set[tuple[str, str]]:
    return {(c.get("classname", ""), c.get("name", "")) for c in ET.parse(junit).getroot().iter("testcase")}


def qualify_in_shards(site, n: int, total: int) -> tuple[float, str, list[int]]:
    """(seconds until the last process ended, "passed/replicated", exit codes) for `total` shards (1: one run)."""
    toml = site.site_toml(n)
    site.clear_qa()
    wait_quiet()
    started = time.perf_counter()
    runs = [subprocess.Popen([*_host(i, total), *pytest_cmd(toml, 2 if total == 1 else 1, "-k", "not test_export_only",
                                                            *([] if total == 1 else ["--shard", f"{i}/{total}"]))],
                             cwd=site.work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for i in range(1, total + 1)]
    codes = [run.wait() for run in runs]
    seconds = time.perf_counter() - started
    loaded = load_site(toml, base=site.work)
    kernels, qa = find_kernels(loaded), loaded.qa_installation().name
    replicated = [env for env in load_manifest(loaded.manifest) if env.replicate]
    passed = sum(standing(loaded, qa, env, kernels).verdict is Verdict.PASSED for env in replicated)
    return seconds, f"{passed}/{len(replicated)}", codes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, default=60)
    args = parser.parse_args(argv)
    site = real_site(args.envs)
    rows, figures, one_run = [], {}, set()
    for total in (1, 2, 3):
        log(f"{total} shard(s)")
        (site.work / "reports" / "junit.xml").unlink(missing_ok=True)
        seconds, passed, codes = qualify_in_shards(site, args.envs, total)
        cases = _cases(site.work / "reports" / "junit.xml")
        one_run = one_run or cases
        figures[str(total)] = {"seconds": round(seconds, 1), "passed": passed, "exit_codes": codes,
                               "test_cases": len(cases), "same_cases_as_one_run": cases == one_run}
        rows.append([f"{total} shards on {total} hosts" if total > 1 else "one run (-n 2)", args.envs, seconds,
                     f"{seconds / figures['1']['seconds']:.2f}x", passed, codes, len(cases), cases == one_run])
    table(f"Qualification of {args.envs} environments on one 2-core machine, builds included",
          ["configuration", "envs", "seconds", "of one run", "passed", "exit codes", "JUnit cases",
           "same cases as one run"], rows)
    write_results("shards", {"environments": args.envs, "configurations": figures,
                             "method": "from an empty qa each; shards -n 1 each, started together; one run -n 2"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

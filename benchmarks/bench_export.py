"""Export: read 1,000 environment prefixes of 150 packages and write their specs.

    python benchmarks/bench_export.py [--envs 1000] [--packages 150] [--repeat 3]

Against two baselines that only parse the same conda-meta records, each measured in a fresh
process after an untimed pass that brings the records into the page cache:

* baseline: json.load of every conda-meta/*.json of every environment, nothing else;
* fastest parse: the same files read and decoded by msgspec into the fields condaqa's reader uses
  (condaqa.prefix's record schema), nothing else: no input caps, no pip distributions, no spec;
* export: condaqa.spec.export.export_environment for every environment (records, pip
  distributions, channel names: the spec in memory);
* export + write: the same plus writing ROOT/env_specs/<env>.yml, what `condaqa export` does;
* `condaqa export`: the command itself, interpreter start and manifest included;
* export + write over two processes (a ProcessPoolExecutor here, not condaqa's code): what the
  command would reach with one process per core.
The best of --repeat runs counts (the usual rule for wall-clock benchmarks on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from _common import PYTHON, condaqa_cmd, log, run, table, verdict, write_results
from synthetic import records_site

TARGET_RATIO = 1.2  # issue #23: within 1.2x of parsing the records alone
TARGET_RATE = 50.0


def _export_one(site, name: str) -> None:
    from condaqa.spec.export import export_environment, spec_path, write_export

    write_export(site, spec_path(site, name), export_environment(site, name))


def _records(envs, names: list[str]):
    """Every conda-meta/*.json of every environment, as conda lists them."""
    for name in names:
        for entry in os.scandir(envs / name / "conda-meta"):
            if entry.name.endswith(".json") and not entry.name.startswith("._"):
                yield entry.path


def child(mode: str, site_toml: str) -> None:
    """One timed pass in this (fresh) process; prints {"seconds": ...}."""
    from condaqa.manifest import load_manifest
    from condaqa.site import load_site
    from condaqa.spec.export import export_environment, spec_path, write_export

    site = load_site(site_toml)
    names = [e.name for e in load_manifest(site.manifest)]
    envs = site.installation(site.current_name).envs_dir
    started = time.perf_counter()
    if mode == "baseline":
        for path in _records(envs, names):
            with open(path, encoding="utf-8") as handle:
                json.load(handle)
    elif mode == "fastest-parse":
        import msgspec

        from condaqa.prefix import _Record

        decoder = msgspec.json.Decoder(_Record)
        for path in _records(envs, names):
            with open(path, "rb") as handle:
                decoder.decode(handle.read())
    elif mode == "export":
        for name in names:
            export_environment(site, name)
    elif mode == "write":
        for name in names:
            write_export(site, spec_path(site, name), export_environment(site, name))
    elif mode == "write-2proc":  # what `condaqa export` would do with one process per core
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(2) as pool:
            list(pool.map(_export_one, [site] * len(names), names, chunksize=25))
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps({"seconds": time.perf_counter() - started, "environments": len(names)}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, default=1000)
    parser.add_argument("--packages", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "SITE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    site = records_site(args.envs, args.packages)
    toml = site.site_toml
    me = [PYTHON, __file__]
    log("untimed pass: records into the page cache")
    run([*me, "--child", "baseline", str(toml)], cwd=site.work).check()
    best: dict[str, dict] = {}
    for number in range(args.repeat):
        for mode in ("baseline", "fastest-parse", "export", "write", "cli", "write-2proc"):
            log(f"pass {number + 1}/{args.repeat}: {mode}")
            if mode == "cli":
                measured = run(condaqa_cmd(toml, "export"), cwd=site.work).check()
                seconds = measured.seconds
            else:
                measured = run([*me, "--child", mode, str(toml)], cwd=site.work).check()
                seconds = json.loads(measured.stdout.strip().splitlines()[-1])["seconds"]
            entry = {"seconds": round(seconds, 3), "wall_seconds": round(measured.seconds, 3),
                     "peak_process_mib": round(measured.peak_process_mib, 1),
                     "cpu_s": round(measured.cpu_s, 1), "foreign_cpu_s": round(measured.foreign_cpu_s, 1),
                     "busy_before": round(measured.busy_before, 2)}
            if mode not in best or seconds < best[mode]["seconds"]:
                best[mode] = entry
    n = args.envs
    base, fastest = best["baseline"]["seconds"], best["fastest-parse"]["seconds"]
    rows = []
    labels = {"baseline": "json.load of the records only",
              "fastest-parse": "msgspec decode of the records' used fields only",
              "export": "export_environment (spec in memory)",
              "write": "export + write spec YAML", "cli": "`condaqa export` (whole command)",
              "write-2proc": "export + write, 2 processes (not condaqa's code)"}
    for mode, label in labels.items():
        seconds = best[mode]["seconds"]
        rate = n / seconds
        target = ""
        if mode in ("write", "cli"):
            ok = (seconds / base <= TARGET_RATIO, seconds / fastest <= TARGET_RATIO, rate >= TARGET_RATE)
            target = (f"<= {TARGET_RATIO}x json.load: {verdict(ok[0])}; <= {TARGET_RATIO}x fastest parse: "
                      f"{verdict(ok[1])}; >= {TARGET_RATE:.0f} env/s: {verdict(ok[2])}")
        rows.append([label, seconds, rate, f"{seconds / base:.2f}x", f"{seconds / fastest:.2f}x",
                     best[mode]["peak_process_mib"], target])
    table(f"Export of {n} environments of {args.packages} packages (best of {args.repeat})",
          ["run", "seconds", "env/s", "vs json.load", "vs fastest parse", "peak MiB", "target"], rows)
    cli = best["cli"]["seconds"]
    write_results("export", {
        "environments": n, "packages_per_environment": args.packages, "repeat": args.repeat,
        "site": _site_facts(site),
        "best": best,
        "environments_per_second": {m: round(n / best[m]["seconds"], 1) for m in best},
        "ratio_to_baseline": {m: round(best[m]["seconds"] / base, 3) for m in best},
        "ratio_to_fastest_parse": {m: round(best[m]["seconds"] / fastest, 3) for m in best},
        "targets": {"ratio_max": TARGET_RATIO, "environments_per_second_min": TARGET_RATE},
        "met": {"ratio": cli / base <= TARGET_RATIO, "ratio_fastest_parse": cli / fastest <= TARGET_RATIO,
                "rate": n / cli >= TARGET_RATE},
    })
    return 0


def _site_facts(site) -> dict:
    """Sizes of what was read: records, files listed in them, bytes."""
    envs = site.root / "v1" / "envs"
    sample = sorted(envs.iterdir())[:50]
    records = files = size = 0
    for prefix in sample:
        for path in (prefix / "conda-meta").glob("*.json"):
            records += 1
            size += path.stat().st_size
            files += len(json.loads(path.read_text(encoding="utf-8"))["files"])
    k = len(sample)
    return {"records_per_env": round(records / k, 1), "files_listed_per_env": round(files / k),
            "conda_meta_mib_per_env": round(size / k / 2**20, 2)}


if __name__ == "__main__":
    sys.exit(main())

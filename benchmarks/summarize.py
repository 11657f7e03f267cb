"""Print the README's "Performance" section, or its "Choosing -n" table, from benchmarks/results/*.json.

    python benchmarks/summarize.py > benchmarks/PERFORMANCE.md
    python benchmarks/summarize.py --choosing-n      # from results/workers.json (bench_workers.py)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

RESULTS = Path(os.environ.get("CONDAQA_BENCH_RESULTS", Path(__file__).resolve().parent / "results"))


NOTES = [
    "What the benchmarks changed in condaqa (each measured on the synthetic sites):",
    "",
    "- `prefix.read_prefix` reads one record at a time and keeps only what it uses (a 150-package record "
    "set is 7 MiB of parsed JSON), finds dist-info/egg-info anchors with one search over a record's file "
    "list, and sorts names instead of Paths: export 27.2 s -> 19.3 s for 1,000 environments "
    "(1.72x -> 1.22x the parse-only baseline; `condaqa export` 1.95x -> 1.40x).",
    "- Export (issue #23), profiled with py-spy: records are decoded with msgspec into the fields condaqa reads "
    "(`prefix._Record`; `paths_data`, most of a record, is skipped and never built) with the same input policy, "
    "read from the descriptor, a record the folder lists as a regular file opened without a stat first; one "
    "search for egg markers a record; a spec of plain strings written without PyYAML's emitter (the same text); "
    "and `condaqa export` writes each spec, two fsyncs, while it reads the next environment. `condaqa export` of "
    "1,000 environments: 43.9 s -> 17.8 s (23 -> 56 env/s; the code before and after run in turn, best of two, "
    "2026-12-07). Before, json's decoder was 40 % of the time; now the nesting check is 25 %, msgspec's decode "
    "17 %, opening each record with its type checks 9 %, reading it 9 % and the search of its file list for "
    "anchors 9 %.",
    "- `permissions.match_group` walks with `os.scandir` (one lstat per entry) and calls chmod/chown only "
    "where something changes: 11 -> 3.8 microseconds per file, about 70 -> 27 ms per built environment.",
    "- `fingerprint` keeps, within a process, each file's digest by device, inode, size, mtime and ctime as "
    "well as by path (2026-12-07). Every build links the same package files and shared bytecode into its "
    "prefix, which moves the ctime of the files earlier environments hold, so the per-prefix digest cache "
    "missed and a `condaqa replicate` re-run right after building the 60 environments read every file of each "
    "again: 32.8 s (21.3 % of the first run) before, 25.1 s (16.7 %) after, the second on a slower hour (the "
    "loop took 263 s against 215 s). Only a file whose ctime is a second older than its hashing is kept by "
    "inode: where ctime ticks coarsely, a same-size edit in the same tick keeps its key.",
    "- A re-run looks at every path again, so its cost per path counts (2026-12-07, later): a known file now "
    "costs its lstat and a comparison with its cache entry, reused as it is, and the digest caches are read "
    "and written with msgspec (the same JSON). Each plan made a channel index of its own and asked the engine "
    "process again for the names of every local channel and the versions of each package looked up, one round "
    "trip a name: the process now keeps what it read while the repodata.json it came from is unchanged (device, "
    "inode, size, mtime, ctime, once a second old; ROOT/rescue indexed again is read again). The plan's export "
    "reuses the records of current's environment its rules read. A `condaqa replicate` re-run of the 60 "
    "environments with every digest known: 17.0-17.9 s before, 15.5 s with the listing, 11.2 s with the "
    "channels kept, 10.1 s with the records read once (two runs each, one after another; 12.0 s on a slower "
    "hour after the benchmarks). Right after the "
    "builds (row 5): 25.1 s -> 20.8 s, 16.7 % -> 13.6 % of the first run.",
    "- The digest cache on disk keeps a file's digest only once the file's last change is over a second old, "
    "as the digests kept by inode already did (2026-12-07, last): where ctime ticks coarsely, a same-size edit "
    "in the tick a file was hashed in would keep its key. Its cost is a second read of each file a build wrote "
    "or linked, at the next look (the verdict in a pytest run, the re-run after `condaqa replicate`): reading "
    "every file of 10 of the 60 environments takes 2.8 s, so at most about 17 s of CPU over a first run of the "
    "60. Measured after it, one run each: `condaqa replicate` 163.6 s (153.1 s before) and its re-run 17.9 s, "
    "11.0 % (20.8 s, 13.6 %); `pytest -n 2` 131.2 s (109.7 s), `-n 1` 202.5 s (195.5 s), the re-run 32.5 s, "
    "24.8 % (34.6 s, 31.6 %). The plain loops took 290 s and 233 s (302 s and 232 s before); other processes "
    "took 78 s of CPU during the best `-n 2` run against 60 s before, so the machine's drift and this cost "
    "are not told apart by one run.",
    "- `fingerprint` reads a file's content with bare `os.read` instead of a buffered file object (2026-12-07, "
    "night): most files of an environment are a few KiB, where the file object cost more than the hash, 22 "
    "against 13 µs a file. A fingerprint of 10 of the 60 environments with nothing kept (52,886 paths, as a "
    "build's stamp takes it) went from 2.70 s to 1.64 s (best of 3, in turn). Every build reads each file it "
    "left once for its stamp, and the next look reads it again (the rule above), so this is on every build's "
    "path. Measured after it, one run each: `condaqa replicate` 133.1 s (163.6 s before), its re-run 15.1 s "
    "(17.9 s), 11.3 % of the faster first run (11.0 %); `pytest -n 2` 112.9 s (131.2 s), `-n 1` 188.0 s "
    "(202.5 s), so 1.67x (1.54x), and its re-run 36.9 s, 32.6 % (32.5 s, 24.8 %). The plain loops took 273 s "
    "and 216 s (290 s and 233 s before): part of the gain is the machine's speed. The bare reads can only make "
    "the `pytest` re-run cheaper, so its 4.4 s more (13 %) is the machine's drift of 10-20 %. A history plan "
    "also reuses the records of current's environment its rules read, as an exported one did already.",
    "- `checks.imports.import_modules`: each key module is still imported in a fresh process, now forked from one "
    "interpreter started per environment instead of one interpreter started per module (same flags, "
    "`sys.argv`, exit code, output, finalization and timeout): 333 -> 134 ms for an environment of 40 "
    "modules. `condaqa/suite/test_environments.py::test_key_packages_import` uses it.",
    "",
    "Left as they are:",
    "",
    "- `pytest` re-run with nothing changed: no environment is rebuilt, but every check runs again by "
    "design (a re-run is a qualification); the time is the checks', mostly one fresh process per key module. "
    "On a real site, where a build takes minutes, the fraction is far below this synthetic site's. It grew "
    "from 5.6 s (2026-11-25) to about 21 s with the fence around every check and the prefix fingerprint each "
    "result now records (issue #9). Profiled on 12 environments (2026-12-02): the fence adds about 6 ms per "
    "process; the fingerprint was taken three times per environment at the end of a run, and is now taken once "
    "(re-run 5.7 s -> 5.3 s). The rest is the checks' own processes: each key module imported in a fresh "
    "forked process. Current's import probe, which finds the key modules, is now asked once per state of "
    "current's environment (kept in `ROOT/.condaqa/key-modules`), not twice per run: the demo's re-run "
    "(`pytest -n 2`, 53 tests) went from 12.2 s to 9.4 s on 2026-12-02. On 2026-12-07 the 60 environments' "
    "re-run took 37.7 s (31.3 % of a first run of 120.3 s; 20.6 s and 19.3 % on 2026-12-02): since then each "
    "environment is known by the content of its files (issue #18) and holds its shared bytecode as links. "
    "With the listing and the channels' memo below it took 34.6 s (31.6 % of a first run that took 109.7 s); "
    "with the digest cache's second rule, 32.5 s (24.8 % of 131.2 s); with the bare reads, 36.9 s (32.6 % "
    "of a first run of 112.9 s, which gained most from them). "
    "Profiled serially (`-n 0`, 56.5 s under cProfile, 2026-12-07): 162 listings of about 9,650 paths, each "
    "environment's at its build and at its verdict and current's for the import probe's kept answer, 29.5 s "
    "(9.6 s of it lstat); the key modules imported in fresh processes in the sandbox, 16.3 s; the rest is "
    "planning, the results and the report. A verdict lists the environment again after its checks ran, so "
    "that nothing they or anyone did to it since the build goes unseen; that is the price of a verdict that "
    "cannot be forged, and it stays.",
    "- `condaqa replicate` re-run with nothing changed: 11.3 % (15.1 s), not 10 % (4.2 % on 2026-12-02, before "
    "fingerprints by content). It rebuilds nothing. For each environment it plans again and compares the "
    "environment with its stamp's fingerprint, every path listed with one lstat: 574,000 paths over the 60 "
    "environments, 9,500 each with their bytecode. With every digest known (a second re-run) it takes 10.1 to "
    "12.0 s, 7 to 8 % of the first run; under cProfile (15.9 s) the listing is 11.0 s of it, 3.9 s of which the "
    "lstat calls themselves and 1.0 s decoding the digest caches, and planning 3.0 s (current's records 1.1 s, "
    "the engine process's start and its 246 calls 0.8 s) (2026-12-07). Row 5 is the "
    "first re-run, right after the builds: each build links the same package files and bytecode, which moves "
    "the ctime of every link of them, so that re-run reads each shared file once more (once, not once an "
    "environment: the digests kept by inode), as it reads the files each build wrote, hashed then under a "
    "second old; its digests are kept by the new ctime. A digest cannot be kept "
    "across a ctime change: a same-size edit with its mtime put back moves nothing else. That listing is what "
    "makes \"up to date\" mean the content the build left, not only its stamp: a `pip install` into the "
    "environment since, or an edit with its mtime put back, is a rebuild.",
    "- The sandbox and the fingerprint by content (issue #18) cost the demo's warm re-run (`pytest -n auto`, 53 "
    "tests, nothing rebuilt) about 2 s: 6.0 s before, 8.0 s after (best of three, 2026-12-06). A sandboxed "
    "process starts 12 ms later than a bare one (bubblewrap: 29 ms against 17 ms for `python -c pass`); most of "
    "the rest is listing every file of each environment three times a run (its build, its verdict, current's "
    "probe), about 25 ms an environment of 4,000 files once their digests are kept in `ROOT/.condaqa/digests`; "
    "the first fingerprint after a build reads every file once.",
    "- Export against the fastest parse of its records, msgspec's decode of the fields it reads and nothing "
    "else: 3.2x, not the 1.2x of issue #23 (against json.load of them, the baseline before, 0.83x). The "
    "difference is the input policy and the rest of an export. The 64-level nesting cap, checked on each record "
    "before msgspec sees it, is a quarter of the time (a few passes of bytes methods over 7 MiB an environment): "
    "msgspec stops at the interpreter's recursion limit by itself, but with a RecursionError at 1,000 to 10,000 levels "
    "by Python version instead of a message, and on Python 3.13 a thread of small stack crashes before it, so "
    "the check stays. Then the type checks around each open, the search of 23,800 listed files for the anchors "
    "conda owns, the pip distributions' METADATA, the spec and its atomic write. Two processes would export "
    "twice as fast (the benchmark's last row); `condaqa export` runs one, as the machine it runs on is shared.",
    "- Both sides of (3) to (6) compile the bytecode of noarch-python packages as conda does (the loop with "
    "`compileall`), which is most of a build: figures from before 2026-12-02 are not comparable. Since "
    "2026-12-06 condaqa compiles each noarch-python package once per interpreter build, in parallel, and links its "
    "bytecode into every environment (3b); rows 3 to 6 were measured with it (3 to 5 on 2026-12-07): the loop "
    "compiles every environment's bytecode again, so condaqa's builds now take about half the loop's (0.49x "
    "in row 3, 0.52x in row 4).",
    "- The peer rows (3p) are measured at 2 environments, not the 60 of issue #23: real conda 4.3.16 compiles "
    "each `.py` file of a noarch-python package in a process of its own (`python -Wi -m py_compile FILE`; "
    "py-spy: 97 % of a warm `conda create --file` of nhis_0001, 42 s for its 1,100 files), 60 to 70 s an "
    "environment here, so the run's 8 conda builds of 60 environments would take about 9 hours; at 2 the whole "
    "run took 22 min (2026-12-07). Against it the rattler engine is 22x (cold) and 33x (warm) faster, and the "
    "conda engine, its solve included (the explicit lists have none), 1.03x and 0.99x conda's own loop.",
    "- `condaqa replicate` (engine rattler) against the raw py-rattler loop at those 2 environments: 1.43x cold "
    "(6.0 s vs 4.2 s) and 1.31x warm (3.6 s vs 2.8 s), not the 1.1x of issue #23. Profiled with py-spy (warm, "
    "5.0 s under the profiler): the engine's solve, link and bytecode 1.7 s and pip 1.3 s, the loop's work; then "
    "the fingerprint by content each build's stamp records (issue #18; the loop has none) 1.1 s, every file of "
    "the new environments read once (9,700 files, about 110 µs a file under the profiler; the bare reads "
    "since take a full fingerprint of 10 environments from 2.70 s to 1.64 s, and the peer rows were not run "
    "again); the command's imports 0.4 s, plan and "
    "preflight 0.3 s, permissions 0.1 s. The fingerprint is the price of knowing a build by its content and "
    "grows with the files built; the imports are once a command. At 60 environments (3) the shared bytecode "
    "more than pays for it: 0.49x the loop.",
]


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def ok(flag: bool) -> str:
    return "met" if flag else "**missed**"


def mib(value: float) -> str:
    return f"{value:.0f} MiB"


def performance() -> list[str]:
    """The README's "Performance" section: every target and what was measured against it."""
    out = ["## Performance", ""]
    machines: dict[tuple[int, str, str], set[str]] = {}  # one line a machine, whatever kernel build each run had
    for r in map(load, ("export", "collect", "replicate", "bytecode", "peer", "qualify", "scaling")):
        if r:
            system, release, arch = r["machine"]["system"].split()  # "Linux 6.18.44-fc-v669 x86_64"
            version, _, build = release.partition("-")
            machines.setdefault((r["machine"]["cores"], r["machine"]["python"], f"{system} {version} {arch}"),
                                set()).add(build)
    for (cores, python, system), builds in sorted(machines.items()):
        kernels = f" (kernel builds {', '.join(sorted(b for b in builds if b))})" if len(builds) > 1 else ""
        out.append(f"Measured on {cores} cores, CPython {python}, {system}{kernels}; "
                   "figures are wall-clock seconds of whole commands (`benchmarks/README.md` says how).")
    out += ["", "| # | what | target | measured | | peak memory | command |", "|---|---|---|---|---|---|---|"]
    rows = []
    exp = load("export")
    if exp:
        n, cli, base, fastest = (exp["environments"], exp["best"]["cli"]["seconds"], exp["best"]["baseline"]["seconds"],
                                 exp["best"]["fastest-parse"]["seconds"])
        met = exp["met"]
        rows.append(["1", f"export of {n} environments of {exp['packages_per_environment']} packages "
                     f"({exp['site']['conda_meta_mib_per_env']} MiB of records each), `condaqa export`",
                     f"<= {exp['targets']['ratio_max']}x parsing the records alone (json.load; msgspec's decode of "
                     "the fields read); >= 50 env/s",
                     f"{n / cli:.0f} env/s; {cli / base:.2f}x json.load ({cli:.1f} s vs {base:.1f} s); "
                     f"{cli / fastest:.2f}x msgspec's decode ({fastest:.1f} s)",
                     f"{ok(met['ratio'])} (json.load), {ok(met['ratio_fastest_parse'])} (msgspec); {ok(met['rate'])}",
                     mib(exp["best"]["cli"]["peak_process_mib"]), "`python benchmarks/bench_export.py`"])
    col = load("collect")
    if col:
        rows.append(["2", f"`pytest --collect-only`, {col['environments']}-environment manifest "
                     f"({col['tests_collected']} tests)", "< 3 s", f"{col['best']['seconds']:.2f} s",
                     ok(col["met"]["seconds"]), mib(col["best"]["peak_tree_mib"]),
                     "`python benchmarks/bench_collect.py`"])
    rep = load("replicate")
    if rep:
        n = rep["environments"]
        rows.append(["3", f"`condaqa replicate` of {n} environments vs the plain py-rattler loop (pip included)",
                     f"<= {rep['targets']['ratio_max']}x",
                     f"{rep['ratio']:.2f}x ({rep['replicate']['seconds']:.1f} s vs "
                     f"{rep['plain_loop']['seconds']:.1f} s)", ok(rep["met"]["ratio"]),
                     mib(rep["replicate"]["peak_tree_mib"]), "`python benchmarks/bench_replicate.py`"])
    byt = load("bytecode")
    if byt:
        rows.append(["3b", f"the bytecode cache: {byt['environments']} environments built one `condaqa replicate "
                     "--env` each, compiling their own bytecode against sharing the cache", "faster",
                     f"{byt['ratio']:.2f}x ({byt['cache_shared_seconds']:.1f} s vs "
                     f"{byt['compiled_per_environment_seconds']:.1f} s; the builds alone "
                     f"{byt['builds_cache_shared_seconds']:.1f} s vs "
                     f"{byt['builds_compiled_per_environment_seconds']:.1f} s, {byt['builds_ratio']:.2f}x); "
                     f"{byt['pyc_shared']:,} of {byt['pyc_files']:,} `.pyc` files "
                     f"({byt['pyc_shared'] / byt['pyc_files']:.0%}) are links shared with another environment",
                     ok(byt["ratio"] < 1), "", "`python benchmarks/bench_bytecode.py`"])
    rows += peer_rows(load("peer"))
    qua = load("qualify")
    if qua:
        n = qua["environments"]
        rows.append(["4", f"`pytest -n 2` on {n} environments (builds included) vs the loop + one import "
                     "process per environment", "<= 2x", f"{qua['ratio_n2_to_loop']:.2f}x "
                     f"({qua['pytest_n2']['seconds']:.1f} s vs {qua['plain_loop_with_imports']['seconds']:.1f} s)",
                     ok(qua["met"]["ratio"]), mib(qua["pytest_n2"]["peak_tree_mib"]),
                     "`python benchmarks/bench_qualify.py`"])
        rows.append(["4", "`pytest -n 2` vs `pytest -n 1`", ">= 1.6x faster",
                     f"{qua['speedup_n2_over_n1']:.2f}x ({qua['pytest_n2']['seconds']:.1f} s vs "
                     f"{qua['pytest_n1']['seconds']:.1f} s; -n 1 is {qua['ratio_n1_to_loop']:.2f}x the loop)",
                     ok(qua["met"]["speedup"]), mib(qua["pytest_n1"]["peak_tree_mib"]) + " (-n 1)", "(same)"])
    if rep:
        rows.append(["5", "`condaqa replicate` again, nothing changed", "<= 10 % of the first run, 0 rebuilt",
                     f"{rep['rerun_fraction']:.1%} ({rep['rerun']['seconds']:.2f} s), "
                     f"{rep['rerun']['rebuilt']} rebuilt", ok(rep["met"]["rerun"]), mib(rep["rerun"]["peak_tree_mib"]),
                     "`python benchmarks/bench_replicate.py`"])
    if qua:
        r = qua["rerun_n2"]
        rows.append(["5", "`pytest -n 2` again, nothing changed (every check runs again)",
                     "<= 10 % of the first run, 0 rebuilt",
                     f"{qua['rerun_fraction']:.1%} ({r['seconds']:.1f} s), {r['rebuilt']} rebuilt; the checks "
                     f"alone in the plain loop take {qua['plain_loop_imports_only']['seconds']:.1f} s",
                     f"{ok(r['rebuilt'] == 0)} (0 rebuilt); {ok(qua['rerun_fraction'] <= 0.10)} (10 %)",
                     mib(r["peak_tree_mib"]), "`python benchmarks/bench_qualify.py`"])
    sca = load("scaling")
    if sca:
        parts = []
        for name, f in sca["fits"].items():
            secs = ", ".join(f"{t:.1f}" for t in sca["series_seconds"][name])
            parts.append(f"{name}: {secs} s; {f['slope_s_per_env']:.3f} s/env, R² {f['r2']:.4f}")
        rows.append(["6", f"growth at {', '.join(map(str, sca['sizes']))} environments", "linear",
                     "<br>".join(parts), ok(sca["met"]["linear"]),
                     ", ".join(mib(max(v)) for v in sca["peak_tree_mib"].values()),
                     "`python benchmarks/bench_scaling.py`"])
    out += ["| " + " | ".join(r) + " |" for r in rows]
    named = ("export", "collect", "replicate", "bytecode", "peer", "qualify", "scaling")
    dates = [f"{name} {r['measured_at'][:10]}" for name in named if (r := load(name))]
    out += ["", f"Measured on: {', '.join(dates)}. A row older than the others was taken on the code of that date."]
    out += ["", "Peak memory (7) is the summed resident memory of the command's process tree, sampled every "
            "200 ms (export: the measured process)."]
    if rep and rep.get("method"):
        out += ["", f"Replication (3) runs both sides on chunks of {rep['chunk']} environments in turn "
                f"({rep['repeat']} passes, per chunk the faster run of each side), because this machine's speed "
                "drifts by 10-20 % from minute to minute."]
    if qua and qua.get("repeat"):
        out += ["", f"Qualification (4, 5) alternates the loop, `-n 1` and `-n 2` {qua['repeat']} times; the best run "
                "of each counts."]
    if rep:
        out += ["", engine_process(rep)]
    out += ["", *NOTES]
    return out


PEER_SITE = 60  # the benchmark sites' size, which the issue's peer targets are about


def peer_rows(peer: dict | None) -> list[list[str]]:
    """Rows 3p from results/peer.json: condaqa's engines against real conda's loop and the raw py-rattler loop,
    each figure cold and warm with its ratio."""
    if not peer:
        return []
    n, sides = peer["environments"], {phase: peer[phase]["sides"] for phase in ("cold", "warm")}
    size = f"{n} environments" + (f" (not {PEER_SITE}: real conda's loop is too slow for the run to fit, "
                                  "benchmarks/README.md)" if n < PEER_SITE else "")
    where = f"{size} on python {peer['python']}, cold / warm package cache, best of {peer['repeat']}"

    def figures(ratio: str, ours: str, theirs: str) -> str:
        return "; ".join(f"{phase} {peer[phase]['ratios'][ratio]:.2f}x "
                         f"({sides[phase][ours]['seconds']:.1f} s vs {sides[phase][theirs]['seconds']:.1f} s)"
                         for phase in ("cold", "warm"))

    def met(key: str) -> str:
        return ", ".join(f"{ok(peer[phase]['met'][key])} ({phase})" for phase in ("cold", "warm"))

    conda = f"real conda {peer['conda']}'s loop of `conda create --file <explicit>` + pip"
    command = f"`{peer['command']}`"
    targets = peer["targets"]
    return [
        ["3p", f"`condaqa replicate` (engine rattler) vs {conda}; {where}",
         f">= {targets['conda_loop_over_rattler_min']:.0f}x faster",
         "conda's loop over condaqa: " + figures("conda_loop_over_rattler", "conda loop", "condaqa rattler"),
         met("rattler_vs_conda"), mib(sides["cold"]["condaqa rattler"]["peak_tree_mib"]), command],
        ["3p", "(same) `condaqa replicate` (engine rattler) vs the raw py-rattler loop",
         f"<= {targets['rattler_over_raw_max']}x", figures("rattler_over_raw", "condaqa rattler", "py-rattler loop"),
         met("rattler_vs_raw"), "", "(same)"],
        ["3p", f"(same) `condaqa replicate` (engine conda, real conda {peer['conda']} as qa's) vs {conda}",
         f"<= {targets['conda_engine_over_conda_loop_max']}x",
         figures("conda_engine_over_conda_loop", "condaqa conda", "conda loop"), met("conda_engine"),
         mib(sides["cold"]["condaqa conda"]["peak_tree_mib"]), "(same)"],
    ]


def engine_process(rep: dict) -> str:
    """What the engine process costs, from a replicate.json of either kind: measured with the engine process
    (engine_process_seconds), or before it, when each build started a child of its own (isolation_seconds)."""
    conda_only = rep["per_env_split"].get("conda only", {})
    extra = conda_only.get("extra_seconds_per_env", 0)
    cost = (f"{extra:.2f} s" if extra > 0 else f"less than nothing: {-extra:.2f} s a build below the loop, "
            "which compiles every environment's bytecode again (3b)") + (
        f" (environments without a pip section: {conda_only.get('ratio', 0):.2f}x the loop's solve and link)")
    worker = ("py-rattler runs in one engine process per command, or per xdist worker (condaqa/worker.py, "
              "which keeps py-rattler 0.28's crash at interpreter exit out of condaqa)")
    engine = rep.get("engine_process_seconds")
    if engine:
        return (f"condaqa's own cost per build is {cost}. {worker}: its first call, which starts it and imports "
                f"the engine, takes {engine['first_call_start_and_import_engine'] * 1000:.0f} ms once; each build "
                f"after that adds a round trip of {engine['later_call_round_trip'] * 1000:.1f} ms.")
    iso = rep["isolation_seconds"]
    text = (f"condaqa's own cost per build was {cost} when each build started an engine child of its own: "
            f"{iso['child_with_engine_imports'] * 1000:.0f} ms per build to start a child and import the engine, of "
            f"which {iso['bare_child'] * 1000:.0f} ms is the bare interpreter. Now {worker}.")
    proto = rep.get("prototype_persistent_child")
    if proto:
        text += (f" Its prototype, measured then, replicated in {proto['seconds']:.1f} s "
                 f"({proto['seconds'] / rep['plain_loop']['seconds']:.2f}x the loop).")
    return text


def choosing_n() -> list[str] | None:
    """The README's "Choosing -n" table from results/workers.json: seconds of a first run (everything built)
    and a re-run (nothing rebuilt) of each site for each -n."""
    wor = load("workers")
    if not wor:
        return None
    workers = wor["workers"]
    auto = wor.get("auto_workers", wor["machine"]["cores"])
    head = ["run", *(f"`-n {w}`" + (f" ({auto} here)" if w == "auto" else "") for w in workers)]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, site in wor["sites"].items():
        name = "demo" if key == "demo" else f"{site['environments']} envs"
        for phase, words in (("first", "first run"), ("rerun", "re-run")):
            cells = [f"{name} {words}", *(f"{site[phase][w]['seconds']:.1f} s" for w in workers)]
            out.append("| " + " | ".join(cells) + " |")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--choosing-n", action="store_true",
                        help="print the README's \"Choosing -n\" table (results/workers.json) instead")
    args = parser.parse_args(argv)
    lines = choosing_n() if args.choosing_n else performance()
    if lines is None:
        print(f"no {RESULTS / 'workers.json'}: run python benchmarks/bench_workers.py first", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

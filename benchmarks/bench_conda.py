"""conda engine: condaqa's cost on top of the conda it drives, against a plain loop of `conda env create`.

    python benchmarks/bench_conda.py --conda /opt/miniforge3/bin/conda [--repeat 2]

It needs a real conda, 4.11 or newer: the demo's python is this interpreter (3.10 or newer), which
older conda misplaces. Without --conda it takes the first `conda` on PATH; with neither it says so
and exits 0 having measured nothing (results/conda.json is left as it was).

The site is the embedded demo, built under benchmarks/.work/conda/ on first use, with engine =
"conda" and its qa installation's bin/conda a link to the given conda. The environments are the
demo's REPLICATE ones without post-create steps (a plain `conda env create` has none), built from
the very plans condaqa makes:

* plain loop: one process running `conda env create -p PREFIX -f SPEC.yml` for each environment
  into a scratch folder; the file holds the plan's conda specs, the site's channels and the pip
  section, pip gets the site's pip_args as PIP_NO_INDEX / PIP_FIND_LINKS (as the recordings in
  ../shared/realconda were made); qa's .condarc and package cache, a scratch HOME. What an
  administrator would script;
* condaqa: `condaqa replicate` of the same environments, their previous builds removed first (plan
  and preflight, `conda create` under the cache lock with a private HOME, pip with the
  environment's own python, permissions, stamps, results).

Both link from the same package cache, filled by an untimed pass of the loop first, and run in turn
(who goes first alternates), --repeat times; the best run of each side counts.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from _common import PYTHON, REPO, WORK, condaqa_cmd, log, run, table, write_results
from _real import conda_environ

from condaqa.demo.site import ensure_demo
from condaqa.manifest import load_manifest, site_manifest
from condaqa.plan.planning import plan_environment
from condaqa.site import Site, load_site

MINIMUM = (4, 11)  # conda before 4.11 reads python 3.10+ as 3.1 (conda #10969)

# The plain loop: argv[1] is a JSON file of [name, prefix, spec file] rows, argv[2] conda; prints one JSON line.
LOOP = """\
import json, subprocess, sys, time
rows, conda = json.load(open(sys.argv[1])), sys.argv[2]
seconds = {}
for name, prefix, spec in rows:
    started = time.perf_counter()
    done = subprocess.run([conda, "env", "create", "-p", prefix, "-f", spec], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"conda env create -p {prefix} -f {spec} failed (exit {done.returncode}):\\n{done.stderr[-2000:]}")
    seconds[name] = time.perf_counter() - started
print(json.dumps(seconds))
"""


def find_conda(given: str | None) -> Path | None:
    """The conda to measure: --conda, else the first on PATH (a link is followed to the real bin/conda)."""
    found = given or shutil.which("conda")
    return Path(found).resolve() if found and Path(found).is_file() else None


def conda_version(conda: Path) -> tuple[int, ...]:
    done = subprocess.run([str(conda), "--version"], capture_output=True, text=True, timeout=120)
    words = (done.stdout + done.stderr).split()  # conda 4.3 printed it on stderr
    if done.returncode or len(words) < 2 or words[0] != "conda":
        raise SystemExit(f"{conda} --version did not print a conda version: {(done.stdout + done.stderr)[-300:]}")
    return tuple(int(part) for part in re.findall(r"\d+", words[1])[:3])


def prepare(work: Path, conda: Path) -> tuple[Site, list[str]]:
    """The demo site under `work` with engine = "conda", qa's bin/conda linked to `conda`, and the names
    of the environments both sides build (the manifest lists the others as export-only)."""
    project = work / "project"
    shutil.copytree(REPO / "manifests", project / "manifests", dirs_exist_ok=True)
    site_toml = project / "manifests" / "site.toml"
    text = (REPO / "manifests" / "site.toml").read_text(encoding="utf-8")
    text = text.replace('root = "../.condaqa-demo"', f'root = "{work / "site"}"')
    text = text.replace('engine = "rattler"', 'engine = "conda"')
    site_toml.write_text(text, encoding="utf-8")
    site = load_site(site_toml, base=work)
    ensure_demo(site, progress=log, real_conda=False)
    link = site.root / "v4.8" / "bin" / "conda"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(conda)
    chosen = []
    manifest = site_manifest(site)  # less what this machine's demo was built without
    for env in manifest:
        if env.replicate and not plan_environment(site, env)[0].post:
            chosen.append(env.name)
    rows = "".join(f"{e.name} = {'REPLICATE' if e.name in chosen else 'export'}\n" for e in manifest)
    (project / "manifests" / "environments.ini").write_text("[environments]\n" + rows, encoding="utf-8")
    return load_site(site_toml, base=work), chosen


def loop_specs(site: Site, names: list[str], scratch: Path) -> Path:
    """One environment file per environment, from condaqa's plan, and the loop's rows file."""
    specs = scratch / "specs"
    specs.mkdir(parents=True, exist_ok=True)
    rows = []
    for env in load_manifest(site.manifest):
        if env.name not in names:
            continue
        plan, _ = plan_environment(site, env)
        deps: list[object] = [*plan.conda, *([{"pip": list(plan.pip)}] if plan.pip else [])]
        spec = specs / f"{env.name}.yml"
        spec.write_text(json.dumps({"name": env.name, "channels": site.channel_urls(), "dependencies": deps}),
                        encoding="utf-8")  # JSON is YAML
        rows.append([env.name, str(scratch / "envs" / env.name), str(spec)])
    path = scratch / "rows.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def plain_loop(site: Site, rows: Path, conda: Path, scratch: Path) -> tuple[float, dict[str, float]]:
    shutil.rmtree(scratch / "envs", ignore_errors=True)
    measured = run([PYTHON, "-c", LOOP, str(rows), str(conda)], env=conda_environ(site, scratch)).check()
    per_env: dict[str, float] = json.loads(measured.stdout.strip().splitlines()[-1])
    shutil.rmtree(scratch / "envs", ignore_errors=True)
    return measured.seconds, per_env


def replicate(site: Site, names: list[str], work: Path) -> tuple[float, dict[str, float], float]:
    """`condaqa replicate` from `work` (its reports/ go there), the previous builds removed first, untimed
    as the loop's: seconds, each environment's build seconds as it prints them, peak MiB."""
    for name in names:
        shutil.rmtree(site.qa_installation().env_prefix(name), ignore_errors=True)
    measured = run(condaqa_cmd(site.file, "replicate"), cwd=work).check()
    per_env = {m.group(1): float(m.group(2)) for m in re.finditer(r"\] (\S+): built in ([\d.]+)s", measured.stdout)}
    if sorted(per_env) != sorted(names):
        raise SystemExit(f"condaqa replicate built {sorted(per_env)}, not {sorted(names)}:\n{measured.stdout[-2000:]}")
    return measured.seconds, per_env, measured.peak_tree_mib


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conda", metavar="PATH", help="a real conda's bin/conda (default: the first conda on PATH)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side; the best counts")
    args = parser.parse_args(argv)
    conda = find_conda(args.conda)
    if conda is None:
        where = f"{args.conda} is not a file" if args.conda else "no --conda PATH given and no conda on PATH"
        print(f"bench_conda: skipped: {where}; it measures a real conda (4.11 or newer), which is not here")
        return 0
    version = conda_version(conda)
    if version < MINIMUM:
        print(f"bench_conda: skipped: {conda} is conda {'.'.join(map(str, version))}; the demo's python "
              f"{sys.version_info[0]}.{sys.version_info[1]} needs conda {'.'.join(map(str, MINIMUM))} or newer")
        return 0
    work = WORK / "conda"
    site, names = prepare(work, conda)
    scratch = work / "loop"
    rows = loop_specs(site, names, scratch)
    log(f"conda {'.'.join(map(str, version))} at {conda}; environments: {', '.join(names)}")
    log("filling qa's package cache (untimed plain loop)")
    plain_loop(site, rows, conda, scratch)

    loops: list[tuple[float, dict[str, float]]] = []
    ours: list[tuple[float, dict[str, float], float]] = []
    for number in range(args.repeat):
        for side in (("loop", "condaqa") if number % 2 == 0 else ("condaqa", "loop")):
            log(f"[{number + 1}/{args.repeat}] {side}")
            if side == "loop":
                loops.append(plain_loop(site, rows, conda, scratch))
            else:
                ours.append(replicate(site, names, work))
    loop_s, loop_env = min(loops, key=lambda r: r[0])
    our_s, our_env, peak = min(ours, key=lambda r: r[0])
    ratio = our_s / loop_s
    n = len(names)
    table(f"conda {'.'.join(map(str, version))}: {n} environments (best of {args.repeat})",
          ["run", "envs", "seconds", "s/env", "ratio", "peak MiB"],
          [["plain loop of `conda env create`", n, loop_s, loop_s / n, "", ""],
           ["condaqa replicate (engine conda)", n, our_s, our_s / n, f"{ratio:.2f}x loop", peak]])
    table("Per environment (condaqa: the build time it prints)", ["environment", "loop s", "condaqa s", "extra s"],
          [[name, loop_env[name], our_env[name], our_env[name] - loop_env[name]] for name in names])
    write_results("conda", {
        "conda": {"path": str(conda), "version": ".".join(map(str, version))},
        "environments": names,
        "repeat": args.repeat,
        "method": "the plain loop and condaqa replicate in turn, the same plans and package cache, previous "
                  "builds removed untimed; the best run of each side",
        "plain_loop": {"seconds": round(loop_s, 3), "per_env": {k: round(v, 3) for k, v in loop_env.items()},
                       "all_seconds": [round(r[0], 3) for r in loops]},
        "replicate": {"seconds": round(our_s, 3), "per_env": {k: round(v, 3) for k, v in our_env.items()},
                      "all_seconds": [round(r[0], 3) for r in ours], "peak_tree_mib": round(peak, 1)},
        "ratio": round(ratio, 3),
        "overhead_seconds_per_env": round((our_s - loop_s) / n, 3),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())

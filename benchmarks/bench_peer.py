"""Peer benchmark: real conda 4.3.16 against condaqa's two engines and the raw py-rattler loop (issue #23).

    python benchmarks/bench_peer.py [--envs 60] [--repeat 2]

The site is the real synthetic site built on python 3.6 (`synthetic.py real N --python 3.6`, under
benchmarks/.work/real-py3.6): conda 4.3 misplaces noarch packages of python 3.10 and newer, so the
site it builds must hold an older python. Its qa installation is made a real conda 4.3.16 root from
the package registry (condaqa/demo/realconda.py), with the site's two local channels, offline.
Four sides build the same N environments of current, one after another, pip sections included:

* conda loop: per environment `conda create --yes --quiet --prefix PREFIX --file EXPLICIT`, the
  environment's @EXPLICIT list as `conda list --explicit` prints it in current, then its own pip
  install of the pip section (plain_loop.py --conda). Explicit lists, not `conda env create`: they
  are what an administrator moving environments feeds a conda (conda 4.3.16's `env export
  --no-builds` keeps the builds, and an explicit list needs no solve);
* condaqa replicate, engine = "rattler" (site-N.toml);
* condaqa replicate, engine = "conda", qa's bin/conda the real 4.3.16 (site-N-conda.toml);
* the raw py-rattler loop (plain_loop.py), what bench_replicate compares with.

Each pass runs the four cold, then the four warm, who goes first rotating. Cold: the side's caches
emptied just before: qa's pkgs/ for the conda sides, pkgs/.rattler for the rattler ones, with
condaqa's bytecode cache in it for condaqa (the raw loop compiles in each environment and keeps
none); the channels are local, so cold means extracting every archive, not downloading. Warm: the
caches as the cold runs left them. Previous builds are removed untimed before each run.
The best of --repeat passes of each side counts. Without python 3.6 or the registry it says so and
exits 0 having measured nothing (results/peer.json is left as it was).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from _common import Run, log, table, verdict, write_results
from _real import baseline_dir, conda_environ, plain_loop, qa_cache, replicate, write_plans
from synthetic import RealSite, real_site

from condaqa.demo import realconda
from condaqa.engines.rattler import bytecode_cache
from condaqa.errors import SiteError
from condaqa.prefix import read_prefix
from condaqa.site import Installation, load_site
from condaqa.spec.export import explicit_text

PYTHON = "3.6"
SIDES = ("conda loop", "condaqa rattler", "condaqa conda", "py-rattler loop")
PHASES = ("cold", "warm")
TARGET_VS_CONDA = 5.0  # the rattler engine at least 5x faster than conda's loop
TARGET_VS_RAW = 1.10  # ... and within 1.1x of the raw py-rattler loop
TARGET_CONDA_ENGINE = 1.05  # the conda engine within 1.05x of conda's own loop


def conda_python() -> tuple[Path | None, str]:
    """The python 3.6 with conda 4.3.16 installed in its cached venv, or None and why not (one line)."""
    python = realconda.python36()
    if python is None:
        return None, realconda.unavailable()
    try:
        realconda.conda_venv(realconda.cache_dir(), python)
    except SiteError as exc:
        return None, str(exc)
    return python, ""


def make_qa_conda(site: RealSite, python: Path) -> Path:
    """qa (v2) as a real conda 4.3.16 root on the site's channels (once; its environments are the benchmark's)."""
    qa = site.root / "v2"
    if not (qa / "bin" / "conda").is_file():
        shutil.rmtree(qa)
        channels = [(site.root / name).as_uri() for name in ("main", "internal")]
        realconda.make_root(qa, channels, realconda.cache_dir(), python)
    return qa / "bin" / "conda"


def write_explicit(site: RealSite, n: int, plans: Path) -> Path:
    """The plans with each environment's @EXPLICIT list of current, as `conda list --explicit` prints it."""
    folder = site.work / "explicit"
    folder.mkdir(exist_ok=True)
    data = json.loads(plans.read_text(encoding="utf-8"))
    for env in site.envs[:n]:
        text = explicit_text(read_prefix(site.root / "v1" / "envs" / env.name))
        if "# no URL for" in text:
            raise SystemExit(f"{env.name}: current's records lack package URLs:\n{text}")
        path = folder / f"{env.name}.txt"
        path.write_text(text, encoding="utf-8")
        data[env.name]["explicit"] = str(path)
    out = plans.with_name(f"{plans.stem}-explicit.json")
    out.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return out


def empty(folder: Path, keep: str = "") -> None:
    """Everything in `folder` gone but `keep`: a cold package cache."""
    for child in folder.iterdir() if folder.is_dir() else ():
        if child.name == keep:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def measure(site: RealSite, n: int, side: str, cold: bool, plans: Path, conda: Path, scratch: Path) -> Run:
    """One side's build of the n environments; qa's builds and the loops' scratch removed first, untimed."""
    qa = Installation("v2", site.root / "v2")
    pkgs = qa.path / "pkgs"
    if cold and side in ("conda loop", "condaqa conda"):
        empty(pkgs, keep=qa_cache(site).name)
    elif cold:  # the raw loop compiles in each environment: it leaves condaqa's bytecode cache alone
        empty(qa_cache(site), keep="" if side == "condaqa rattler" else bytecode_cache(qa).name)
    shutil.rmtree(baseline_dir(site), ignore_errors=True)
    for env in site.envs[:n]:
        shutil.rmtree(site.root / "v2" / "envs" / env.name, ignore_errors=True)
    if side == "conda loop":
        loaded = load_site(site.site_toml(n, engine="conda"), base=site.work)
        return plain_loop(site, plans, "--pip", f"--conda={conda}", cache=pkgs, env=conda_environ(loaded, scratch))
    if side == "py-rattler loop":
        return plain_loop(site, plans, "--pip")
    measured, built = replicate(site, n, engine="conda" if side == "condaqa conda" else "rattler")
    if built != n:
        raise SystemExit(f"{side} built {built} of {n} environments")
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=2, help="passes; the best run of each side counts")
    args = parser.parse_args(argv)
    python, why = conda_python()
    if python is None:
        print(f"bench_peer: skipped, nothing measured: {why}")
        return 0
    n = args.envs
    site = real_site(n, python=PYTHON)
    conda = make_qa_conda(site, python)
    plans = write_explicit(site, n, write_plans(site, n, modules=False))
    scratch = site.work / "conda-loop"
    log(f"conda {realconda.VERSION} as qa; {n} environments of python {PYTHON}; {args.repeat} pass(es)")

    runs: dict[str, dict[str, list[Run]]] = {phase: {side: [] for side in SIDES} for phase in PHASES}
    for number in range(args.repeat):
        for step, phase in enumerate(PHASES):
            shift = (number * len(PHASES) + step) % len(SIDES)
            for side in SIDES[shift:] + SIDES[:shift]:  # rotate who goes first
                log(f"[{number + 1}/{args.repeat}] {phase}: {side}")
                measured = measure(site, n, side, phase == "cold", plans, conda, scratch)
                runs[phase][side].append(measured)
                log(f"  {measured.seconds:.1f} s")

    figures, rows = {}, []
    for phase in PHASES:
        best = {side: min(runs[phase][side], key=lambda r: r.seconds) for side in SIDES}
        seconds = {side: best[side].seconds for side in SIDES}
        ratios = {"conda_loop_over_rattler": seconds["conda loop"] / seconds["condaqa rattler"],
                  "rattler_over_raw": seconds["condaqa rattler"] / seconds["py-rattler loop"],
                  "conda_engine_over_conda_loop": seconds["condaqa conda"] / seconds["conda loop"]}
        met = {"rattler_vs_conda": ratios["conda_loop_over_rattler"] >= TARGET_VS_CONDA,
               "rattler_vs_raw": ratios["rattler_over_raw"] <= TARGET_VS_RAW,
               "conda_engine": ratios["conda_engine_over_conda_loop"] <= TARGET_CONDA_ENGINE}
        figures[phase] = {
            "sides": {side: {**best[side].summary(), "cpu_s": round(best[side].cpu_s, 1),
                             "all_seconds": [round(r.seconds, 3) for r in runs[phase][side]]} for side in SIDES},
            "ratios": {k: round(v, 3) for k, v in ratios.items()}, "met": met}
        notes = {"condaqa rattler": f"{ratios['conda_loop_over_rattler']:.2f}x faster than conda's loop (>= "
                 f"{TARGET_VS_CONDA}x: {verdict(met['rattler_vs_conda'])}); {ratios['rattler_over_raw']:.2f}x the "
                 f"py-rattler loop (<= {TARGET_VS_RAW}x: {verdict(met['rattler_vs_raw'])})",
                 "condaqa conda": f"{ratios['conda_engine_over_conda_loop']:.2f}x conda's loop (<= "
                 f"{TARGET_CONDA_ENGINE}x: {verdict(met['conda_engine'])})"}
        rows += [[phase, side, seconds[side], seconds[side] / n, best[side].peak_tree_mib, notes.get(side, "")]
                 for side in SIDES]
    table(f"{n} environments on python {PYTHON}, conda {realconda.VERSION} against condaqa (best of {args.repeat})",
          ["cache", "side", "seconds", "s/env", "peak MiB", "ratio and target"], rows)
    write_results("peer", {
        "environments": n,
        "python": PYTHON,
        "conda": realconda.VERSION,
        "repeat": args.repeat,
        "method": "per pass the four sides cold (their package cache emptied first), then warm, in rotating "
                  "order; the same environments' plans, previous builds removed untimed; the best run of each",
        "conda_loop": "conda create --yes --quiet --prefix PREFIX --file EXPLICIT, then the environment's pip "
                      "install of its pip section",
        **figures,
        "targets": {"conda_loop_over_rattler_min": TARGET_VS_CONDA, "rattler_over_raw_max": TARGET_VS_RAW,
                    "conda_engine_over_conda_loop_max": TARGET_CONDA_ENGINE},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())

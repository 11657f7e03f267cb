"""The plain loops condaqa is measured against: py-rattler (or conda) builds, one after another.

    python benchmarks/plain_loop.py PLANS.json TARGET_ENVS_DIR CACHE_DIR [--pip] [--imports] [--no-build]
                                    [--conda=BIN_CONDA]

PLANS.json (written by the benchmarks, untimed) holds, per environment, exactly what condaqa
builds: the conda specs of its plan, the channel URLs, and, for --pip, the pip requirements
and arguments; for --imports the modules condaqa imports. This script is what an administrator
would write by hand with no harness: one process, VirtualPackage.detect() once, a solve and an
install per environment, the bytecode of its noarch:python packages compiled as conda's link
step does (`python -Wi -m compileall -q -l -i -`; condaqa's engine compiles too), then (--pip)
the environment's own `pip install` of its pip section and (--imports) one
`python -c "import a, b, ..."` per environment; --no-build only imports, in the environments
already in TARGET_ENVS_DIR. With --conda=BIN_CONDA the build is that conda's instead, as an
administrator moving environments to a new conda runs it: `conda create --yes --quiet --prefix
PREFIX --file EXPLICIT` with the plan's @EXPLICIT list (no solve: the exact packages), CACHE_DIR as
its package cache; conda compiles the bytecode itself; pip and imports are the same steps. It
prints a JSON line of timings and leaves with os._exit, which py-rattler 0.28 needs (see
condaqa/worker.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

Build = Callable[[Path, dict], None]  # (prefix, plan): the conda part of one environment


def main() -> None:
    started = time.perf_counter()
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = dict(a.partition("=")[::2] for a in sys.argv[1:] if a.startswith("--"))
    plans = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    target, cache = Path(args[1]), Path(args[2])
    build = conda_build(Path(flags["--conda"]), cache) if "--conda" in flags else rattler_build(cache)
    per_env: dict[str, float] = {}
    pip_env = {**os.environ, "PIP_NO_INPUT": "1", "PYTHONNOUSERSITE": "1"}  # as condaqa runs pip
    for name, plan in plans.items():
        t0 = time.perf_counter()
        prefix = target / name
        python = str(prefix / "bin" / "python")
        if "--no-build" not in flags:
            if prefix.exists():
                shutil.rmtree(prefix)
            build(prefix, plan)
        if "--pip" in flags and plan["pip"] and "--no-build" not in flags:
            subprocess.run([python, "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
                            *plan["pip_args"], *plan["pip"]], check=True, capture_output=True, env=pip_env)
        if "--imports" in flags and plan["modules"]:
            subprocess.run([python, "-c", "import " + ", ".join(plan["modules"])], check=True, capture_output=True)
        per_env[name] = time.perf_counter() - t0
    print(json.dumps({"seconds": time.perf_counter() - started, "per_env": per_env}), flush=True)
    os._exit(0)


def rattler_build(cache: Path) -> Build:
    """Solve and install with py-rattler, then compile the noarch:python bytecode as conda's link step does."""
    import rattler

    virtual = rattler.VirtualPackage.detect()
    platforms = [str(rattler.Subdir.current()), "noarch"]

    def build(prefix: Path, plan: dict) -> None:
        records = asyncio.run(rattler.solve(
            sources=[rattler.Channel(u) for u in plan["channels"]], specs=plan["conda"], platforms=platforms,
            virtual_packages=virtual, channel_priority=rattler.ChannelPriority.Strict,
        ))
        asyncio.run(rattler.install(records, target_prefix=prefix, cache_dir=cache, show_progress=False))
        compile_noarch(prefix, str(prefix / "bin" / "python"))

    return build


def conda_build(conda: Path, cache: Path) -> Build:
    """`conda create` of the plan's @EXPLICIT list, `cache` as conda's package cache."""
    environ = {**os.environ, "CONDA_PKGS_DIRS": str(cache)}

    def build(prefix: Path, plan: dict) -> None:
        argv = [str(conda), "create", "--yes", "--quiet", "--prefix", str(prefix), "--file", plan["explicit"]]
        done = subprocess.run(argv, capture_output=True, text=True, env=environ)
        if done.returncode:
            sys.exit(f"{' '.join(argv)} failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-2000:]}")

    return build


def compile_noarch(prefix: Path, python: str) -> None:
    sources = []
    for meta in (prefix / "conda-meta").glob("*.json"):
        record = json.loads(meta.read_text(encoding="utf-8"))
        if record.get("noarch") == "python":
            sources += [str(prefix / f) for f in record.get("files", []) if f.endswith(".py")]
    if sources:
        subprocess.run([python, "-Wi", "-m", "compileall", "-q", "-l", "-i", "-"], input="\n".join(sources).encode(),
                       capture_output=True)


if __name__ == "__main__":
    main()

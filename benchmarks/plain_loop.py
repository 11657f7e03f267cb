"""The plain loop condaqa is measured against: py-rattler solves and installs, one after another.

    python benchmarks/plain_loop.py PLANS.json TARGET_ENVS_DIR CACHE_DIR [--pip] [--imports] [--no-build]

PLANS.json (written by the benchmarks, untimed) holds, per environment, exactly what condaqa
builds: the conda specs of its plan, the channel URLs, and, for --pip, the pip requirements
and arguments; for --imports the modules condaqa imports. This script is what an administrator
would write by hand with no harness: one process, VirtualPackage.detect() once, a solve and an
install per environment, the bytecode of its noarch:python packages compiled as conda's link
step does (`python -Wi -m compileall -q -l -i -`; condaqa's engine compiles too), then (--pip)
the environment's own `pip install` of its pip section and (--imports) one
`python -c "import a, b, ..."` per environment; --no-build only imports, in the environments
already in TARGET_ENVS_DIR. It prints a JSON line of timings and leaves with os._exit, which
py-rattler 0.28 needs (see condaqa/worker.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    started = time.perf_counter()
    import rattler

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    plans = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    target, cache = Path(args[1]), Path(args[2])
    virtual = rattler.VirtualPackage.detect()
    platforms = [str(rattler.Subdir.current()), "noarch"]
    per_env: dict[str, float] = {}
    pip_env = {**os.environ, "PIP_NO_INPUT": "1", "PYTHONNOUSERSITE": "1"}  # as condaqa runs pip
    for name, plan in plans.items():
        t0 = time.perf_counter()
        prefix = target / name
        if "--no-build" not in flags:
            if prefix.exists():
                shutil.rmtree(prefix)
            records = asyncio.run(rattler.solve(
                sources=[rattler.Channel(u) for u in plan["channels"]], specs=plan["conda"], platforms=platforms,
                virtual_packages=virtual, channel_priority=rattler.ChannelPriority.Strict,
            ))
            asyncio.run(rattler.install(records, target_prefix=prefix, cache_dir=cache, show_progress=False))
        python = str(prefix / "bin" / "python")
        if "--no-build" not in flags:
            compile_noarch(prefix, python)
        if "--pip" in flags and plan["pip"] and "--no-build" not in flags:
            subprocess.run([python, "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
                            *plan["pip_args"], *plan["pip"]], check=True, capture_output=True, env=pip_env)
        if "--imports" in flags and plan["modules"]:
            subprocess.run([python, "-c", "import " + ", ".join(plan["modules"])], check=True, capture_output=True)
        per_env[name] = time.perf_counter() - t0
    print(json.dumps({"seconds": time.perf_counter() - started, "per_env": per_env}), flush=True)
    os._exit(0)


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

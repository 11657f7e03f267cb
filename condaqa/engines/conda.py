"""The conda engine: the new installation's own conda (or mamba) creates the environment.

For sites that want the new conda itself to solve and link. Pip and post-create steps run
afterwards in build.py exactly as with the rattler engine. There is no conda binary on the
machines that build condaqa, so the selftests drive this engine through a stand-in
`bin/conda` that accepts the same command line (see selftests/test_engines.py).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TextIO

from condaqa.errors import BuildError
from condaqa.plan import BuildPlan
from condaqa.site import Installation, Site

TIMEOUT = 3600


def executable(installation: Installation) -> Path:
    """mamba when the installation has it (same command line, faster solver), else conda."""
    for name in ("mamba", "conda"):
        candidate = installation.path / "bin" / name
        if candidate.exists():
            return candidate
    raise BuildError(f"{installation.path}/bin has neither conda nor mamba; use engine = \"rattler\"", stage="engine")


def command(site: Site, installation: Installation, plan: BuildPlan, prefix: Path) -> list[str]:
    channels = [arg for url in site.channel_urls() for arg in ("-c", url)]
    return [str(executable(installation)), "create", "--yes", "--quiet", "--prefix", str(prefix),
            "--override-channels", *channels, *plan.conda]


class CondaEngine:
    def create(self, site: Site, installation: Installation, plan: BuildPlan, prefix: Path, log: TextIO) -> None:
        cmd = command(site, installation, plan, prefix)
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONDA_", "MAMBA", "_CE_"))}
        env["CONDARC"] = str(installation.path / ".condarc")
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT, env=env)
        except subprocess.TimeoutExpired:
            raise BuildError(f"conda create did not finish within {TIMEOUT}s", stage="solve") from None
        log.write(proc.stdout)
        if proc.returncode != 0:
            unsat = "UnsatisfiableError" in proc.stdout or "PackagesNotFoundError" in proc.stdout
            raise BuildError(f"conda create failed:\n{proc.stdout.strip()[-2000:]}", stage="solve" if unsat else "install")

    def add(self, site: Site, installation: Installation, env: str, prefix: Path, spec: str, log: TextIO) -> None:
        """`conda install --freeze-installed SPEC`: one legacy package, nothing already there changed."""
        channels = [arg for url in site.channel_urls() for arg in ("-c", url)]
        cmd = [str(executable(installation)), "install", "--yes", "--quiet", "--prefix", str(prefix),
               "--override-channels", *channels, "--freeze-installed", spec]
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        env_vars = {k: v for k, v in os.environ.items() if not k.startswith(("CONDA_", "MAMBA", "_CE_"))}
        env_vars["CONDARC"] = str(installation.path / ".condarc")
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT,
                                  env=env_vars)
        except subprocess.TimeoutExpired:
            raise BuildError(f"conda install {spec} did not finish within {TIMEOUT}s", stage="post-step") from None
        log.write(proc.stdout)
        if proc.returncode != 0:
            raise BuildError(f"conda install {spec} failed:\n{proc.stdout.strip()[-2000:]}", stage="post-step")


ENGINE = CondaEngine()

"""The conda engine: the new installation's own conda (or mamba) creates the environment.

For sites that want the new conda itself to solve and link. Pip and post-create steps run
afterwards in build/replicate.py exactly as with the rattler engine. conda runs fenced off
from whoever runs condaqa: a private HOME under ROOT/.condaqa/home/<installation>
(so no ~/.condarc, no ~/.conda/environments.txt and no notices cache of the invoker's),
the installation's own .condarc and package cache named explicitly, and one writer of that
cache at a time (conda corrupts a cache two processes extract into: conda #13037, #9484).
The selftests drive this engine through a real conda 4.3.16 installed from the package registry
(selftests/test_realconda_live.py) and, for conda 4.8 to 25.11, a stand-in that replays what they
wrote and printed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TextIO

from packaging.version import Version

from condaqa import atomic, locks, proc
from condaqa.engines import Engine
from condaqa.errors import BuildError
from condaqa.plan.model import BuildPlan
from condaqa.site import Installation, Site
from condaqa.vocab import Stage

TIMEOUT = 3600.0
# conda's error classes as it prints them (PackagesNotFoundError, ResolvePackageNotFound, CondaEnvException,
# InvalidMatchSpec ...), or argparse's complaint; pip's own `ERROR:` lines are no conda error.
_ERROR = re.compile(r"^(?:[A-Z]\w*(?:Error|Exception|NotFound|MatchSpec)|conda: error)\b[:(]")
_PROGRESS = re.compile(r"\r|\d+%\|| it/s\]|^\s*[-\\|/]( [-\\|/])*\s*$")
_SPINNER = re.compile(r"[-\\|/] \x08\x08|\x08")  # conda 24+'s spinner frames, each erased by two backspaces
_SOLVE_ERRORS = ("PackagesNotFoundError", "ResolvePackageNotFound", "UnsatisfiableError",
                 "SpecsConfigurationConflictError", "PackageNotFoundError")
# `conda env create` running the pip section: 4.4+ print pip's stderr under this line, then "Pip failed".
_PIP_STDERR = "Pip subprocess error:"
_FREEZE_INSTALLED = Version("4.4")  # the 4.3 line (4.3.16 real, 4.3.31 recorded) has no install --freeze-installed
_EXACT_PIN = re.compile(r"(?P<name>[^\s=<>!~]+) ==(?P<version>[^\s=<>!*|,]+) (?P<build>[^\s=<>!*|,]+)")
_PIP_FAILED = (_PIP_STDERR, "CondaEnvException: Pip failed", "CondaValueError: Value error: pip returned")


def executable(installation: Installation) -> Path:
    """mamba when the installation has it (same command line, faster solver), else conda."""
    for name in ("mamba", "conda"):
        candidate = installation.path / "bin" / name
        if candidate.exists():
            return candidate
    raise BuildError(f"{installation.path}/bin has neither conda nor mamba; use engine = \"rattler\"",
                     stage=Stage.ENGINE)


def home(site: Site, installation: Installation) -> Path:
    """The HOME conda runs with: condaqa's own, so nothing of the invoker's configuration reaches qa."""
    return site.private_home(installation.name)


def environ(site: Site, installation: Installation) -> dict[str, str]:
    private = home(site, installation)
    private.mkdir(parents=True, exist_ok=True)
    return proc.foreign_environ({
        "HOME": str(private),
        "XDG_CACHE_HOME": str(private / ".cache"),
        "CONDARC": str(installation.path / ".condarc"),
        "CONDA_PKGS_DIRS": str(site.package_cache(installation)),
        "CONDA_ENVS_DIRS": str(installation.envs_dir),
        "CONDA_AUTO_UPDATE_CONDA": "false",
        "CONDA_NOTIFY_OUTDATED_CONDA": "false",
        "PIP_CONFIG_FILE": "/dev/null",
    })


def _channels(site: Site) -> list[str]:
    return [arg for _, url in site.solve_channels() for arg in ("-c", url)]


def command(site: Site, installation: Installation, plan: BuildPlan, prefix: Path) -> list[str]:
    return [str(executable(installation)), "create", "--yes", "--quiet", "--prefix", str(prefix),
            "--override-channels", *_channels(site), *map(cli_spec, plan.conda)]


def cli_spec(spec: str) -> str:
    """An exact pin `name ==version build` as `name=version=build`, the form every conda's command line
    reads as that pin: conda 4.3 drops the spaces of the first and looks for version "1.0py_0"."""
    exact = _EXACT_PIN.fullmatch(spec)
    return f"{exact['name']}={exact['version']}={exact['build']}" if exact else spec


def _readable(stream: str) -> list[str]:
    """A stream's lines without tqdm bars, spinner frames or lines they leave empty."""
    lines = (_SPINNER.sub("", line) for line in stream.splitlines() if not _PROGRESS.search(line))
    return [line for line in lines if line.strip()]


def conda_error(done: proc.Finished) -> str:
    """conda's own error: from its `SomethingError:` line on (from pip's stderr on, when conda's pip
    step failed), progress bars and spinners left out; else the last lines it printed."""
    for stream in (done.stderr, done.stdout):
        lines = _readable(stream)
        start = next((i for i, line in enumerate(lines) if _ERROR.match(line.strip())), None)
        if start is not None:
            pip = next((i for i, line in enumerate(lines[:start]) if line.startswith(_PIP_STDERR)), start)
            return "\n".join(lines[pip:])
    return "\n".join((_readable(done.stdout) + _readable(done.stderr))[-10:])


def _stage(message: str, default: Stage) -> Stage:
    """A solve error of `conda create` is the solver's, its pip step's failure pip's; a post-create
    install's failure is the post step's."""
    if default is not Stage.INSTALL:
        return default
    if message.startswith(_SOLVE_ERRORS):
        return Stage.SOLVE
    return Stage.PIP if message.startswith(_PIP_FAILED) else default


def failure(done: proc.Finished, what: str, stage: Stage) -> BuildError:
    """The error of a conda run that failed: what ran and its exit code (or timeout), then conda's own
    words, at the stage they show it stopped at (`stage` is where the command itself belongs)."""
    message = "" if done.timed_out else conda_error(done)
    return BuildError(done.problem(what) + (f":\n{message}" if message else ""), stage=_stage(message, stage))


class CondaEngine(Engine):
    name = "conda"

    def _run(self, site: Site, installation: Installation, argv: list[str], log: TextIO, what: str,
             stage: Stage) -> None:
        with locks.package_cache(site, installation):
            done = proc.run(argv, environ=environ(site, installation), timeout=TIMEOUT, log=log)
        if not done.ok:
            raise failure(done, what, stage)

    def create(self, site: Site, installation: Installation, plan: BuildPlan, prefix: Path, log: TextIO) -> None:
        self._run(site, installation, command(site, installation, plan, prefix), log, "conda create", Stage.INSTALL)

    def add(self, site: Site, installation: Installation, env: str, prefix: Path, spec: str, log: TextIO) -> None:
        """`conda install --freeze-installed SPEC`: one legacy package, nothing already there changed.
        conda 4.3 has no --freeze-installed (its argparse refuses it): that is said before conda runs."""
        version = installation.conda_version()
        if version and Version(version) < _FREEZE_INSTALLED:
            raise BuildError(f"conda {version} in {installation.name} has no `install --freeze-installed`, so it "
                             f"cannot add {spec} without changing what is installed; build with "
                             'engine = "rattler", or install a newer conda as qa', stage=Stage.POST_STEP)
        argv = [str(executable(installation)), "install", "--yes", "--quiet", "--prefix", str(prefix),
                "--override-channels", *_channels(site), "--freeze-installed", spec]
        self._run(site, installation, argv, log, f"conda install {spec}", Stage.POST_STEP)

    def forget(self, site: Site, installation: Installation, prefix: Path) -> None:
        """Take a removed prefix out of the environments.txt conda keeps in condaqa's private HOME."""
        listing = home(site, installation) / ".conda" / "environments.txt"
        try:
            lines = listing.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        kept = [line for line in lines if line.strip() and Path(line.strip()) != prefix]
        if kept != lines:
            atomic.write_text(listing, "".join(f"{line}\n" for line in kept))


ENGINE = CondaEngine()

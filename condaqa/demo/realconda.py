"""A real conda 4.3.16, installed from the package registry: the production conda of an old site.

conda published its releases up to 4.3.16 as source distributions on PyPI. pip installs one into a
python 3.6 venv; the `bin/conda` pip writes refuses to run ("not compatible with using conda as an
application"), so `bin/conda` is written the way conda's own package writes it. With `conda-meta/`,
`pkgs/`, `envs/` and a `.condarc` naming the site's local channels (as `channels` and
`default_channels`, with `offline: true`) the venv is a conda root that builds environments from
those channels with no network. The selftests' real-conda tier and the demo's production
installation (where a python 3.6 and the registry can be had) are made this way. conda 4.3 reads a
python's minor version from its first two digits, so it misplaces noarch python packages of python
3.10 and newer (`lib/python3.1`): its environments run a python of 3.9 or older.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

from condaqa.demo import pythons
from condaqa.errors import SiteError

VERSION = "4.3.16"
PIP_FIRST = "pip<22"  # the newest pip that still installs on python 3.6 and reads conda's old metadata
# conda 4.3.16's own requirements, each at the last release that still runs on python 3.6
REQUIREMENTS = (f"conda=={VERSION}", "pycosat==0.6.3", "requests==2.27.1", "idna<3.5", "urllib3<1.27",
                "certifi<2023", "charset-normalizer<2.1", "ruamel.yaml==0.15.100")
PIP_TIMEOUT = 600.0
# conda's own bin/conda and bin/conda-env (its package's, not pip's console scripts); `conda env` runs conda-env
ENTRIES = {"conda": "conda.cli", "conda-env": "conda_env.cli.main"}
ENTRY = "#!{python}\nimport sys\nfrom {module} import main\nif __name__ == '__main__':\n    sys.exit(main())\n"


def python36() -> Path | None:
    """The python 3.6 that conda 4.3.16 is installed into (pythons.py finds it), None when there is none."""
    found = pythons.find("3.6")
    return found.executable if found else None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _pip(venv: Path, *args: str) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CONDA"))}
    # a machine without the registry is told in seconds, not after pip's default five retries of 15 s
    argv = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--retries", "1",
            "--timeout", "15", *args]
    try:
        done = subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise SiteError(f"pip install of conda {VERSION} did not finish within {PIP_TIMEOUT:.0f}s") from None
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise SiteError(f"pip could not install conda {VERSION} (is the package registry reachable?): {tail}")


def conda_venv(cache: Path, python: Path) -> Path:
    """The venv with conda 4.3.16 installed, made once under `cache` (one maker at a time) and reused."""
    venv = cache / f"conda-{VERSION}"
    done = venv / ".condaqa-complete"
    with _locked(cache / f"conda-{VERSION}.lock"):
        if done.is_file():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([str(python), "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        _pip(venv, "install", "--quiet", PIP_FIRST)
        _pip(venv, "install", "--quiet", *REQUIREMENTS)
        done.write_text(f"{python}\n", encoding="utf-8")
    return venv


def cache_dir() -> Path:
    """Where the venv with conda 4.3.16 is kept between demo builds: the invoker's cache folder."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "condaqa"


def make_root(target: Path, channel_urls: Sequence[str], cache: Path, python: Path, *, add_pip: bool = True) -> Path:
    """A conda 4.3.16 root at `target` (a copy of the cached venv) whose channels are `channel_urls` only."""
    if target.exists():
        raise SiteError(f"{target}: already exists")
    venv = conda_venv(cache, python)
    shutil.copytree(venv, target, symlinks=True, ignore=shutil.ignore_patterns(".condaqa-complete"))
    for sub in ("conda-meta", "pkgs", "envs"):
        (target / sub).mkdir(exist_ok=True)
    (target / "conda-meta" / "history").touch()
    configure(target, channel_urls, add_pip=add_pip)
    return target


def configure(target: Path, channel_urls: Sequence[str], *, add_pip: bool = True) -> None:
    """Point the root's bin/conda at its own python and its .condarc at `channel_urls` (again, after a copy).
    `add_pip=False` where the channels have no pip for the pythons it installs (conda adds pip to python)."""
    for name, module in ENTRIES.items():
        script = target / "bin" / name
        script.unlink(missing_ok=True)
        script.write_text(ENTRY.format(python=target / "bin" / "python", module=module), encoding="utf-8")
        script.chmod(0o755)
    condarc: dict[str, object] = {"channels": list(channel_urls), "default_channels": list(channel_urls),
                                  "offline": True}
    if not add_pip:
        condarc["add_pip_as_python_dependency"] = False
    (target / ".condarc").write_text(yaml.safe_dump(condarc, sort_keys=False), encoding="utf-8")


def can_place(python_version: str) -> bool:
    """Whether conda 4.3 puts noarch python packages where a python of this version finds them."""
    major, minor = (int(part) for part in python_version.split(".")[:2])
    return minor < 10 or major != 3


def unavailable() -> str:
    """Why no real conda can be made here ("" when it can): no python 3.6."""
    return "" if python36() else f"{pythons.missing_reason('3.6')}: conda {VERSION} needs it"

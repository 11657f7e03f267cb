"""Build the embedded demo site offline, in seconds, entirely of real parts.

Channels of real conda packages indexed by py-rattler, a wheelhouse of real wheels, two
installations side by side with `current`, `qa` and `envs` symlinks, environments created in
`current` by the rattler engine and pip, and kernel specs that point into them. An environment
on an old python is built where this machine has that interpreter (demo/pythons.py), else left
out: the build says why, and records it for Site.left_out.
"""

from __future__ import annotations

import ensurepip
import json
import os
import shutil
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import rattler

from condaqa import atomic
from condaqa.demo import catalog, realconda
from condaqa.demo.distributions import write_kernel_channel
from condaqa.demo.gitrepo import make_repo
from condaqa.demo.packages import (
    old_python_package,
    python_build,
    python_package,
    wheel_to_package,
    write_package,
    write_wheel,
)
from condaqa.demo.pythons import Interpreter, find, missing_reason
from condaqa.demo.site import COMPLETE, NOT_ASKED, REAL_CONDA, catalog_digest, holding
from condaqa.engines import get_engine
from condaqa.engines.rattler import index_channel
from condaqa.errors import SiteError
from condaqa.lifecycle.installations import create_bare
from condaqa.plan.model import BuildPlan
from condaqa.replication.pip import pip_install
from condaqa.replication.replicate import pip_home
from condaqa.sandbox.box import Sandbox, sandbox_for
from condaqa.site import DEMO_LEFT_OUT, Installation, Site
from condaqa.vocab import Stage


def build_demo(site: Site, progress: Callable[[str], object] = print, real_conda: bool | None = None,
               only: Collection[str] | None = None) -> None:
    """`real_conda`: current is a real conda 4.3.16 (demo/realconda.py), which makes the environments on old
    pythons; conda 4.3 misplaces the packages of python 3.10 and newer, so py-rattler makes the others.
    None: a real conda where one can be had, else py-rattler's bare installation, saying why.
    `only`: the catalog's environments the site holds (the rest left out, as for a missing python), for
    the small sites a test of one failure family needs."""
    started = time.monotonic()
    # before anything is written: a machine without python 3.6 or the registry is told so first
    conda_python = _installed_conda(progress, required=bool(real_conda)) if real_conda is not False else None
    real_conda = conda_python is not None
    root = site.root
    root.mkdir(parents=True, exist_ok=True)
    site = replace(site, channels=("main", "mpc"))
    wanted = [env for env in catalog.ENVIRONMENTS if only is None or env.name in only]
    found = _old_pythons(wanted)
    environments = [env for env in wanted if not env.python or found[env.python]]
    left_out = {env.name: missing_reason(env.python) if env in wanted else NOT_ASKED
                for env in catalog.ENVIRONMENTS if env not in environments}
    progress(f"demo: building channels and wheelhouse in {root}")
    kernels = any("ipykernel" in env.conda for env in environments)
    _channels_and_wheels(root, [python for python in found.values() if python is not None], kernels)
    commits = {pkg.name: make_repo(root / "git" / pkg.name, pkg.name, pkg.version) for pkg in catalog.GIT_PACKAGES}
    old = Installation(catalog.OLD, _production(site, conda_python))
    create_bare(site, catalog.NEW)
    by_conda = {env.name for env in environments if real_conda and env.python}  # conda 4.3 places old pythons only
    for env in environments:
        progress(f"demo: creating environment {env.name} in {catalog.OLD}"
                 + (" with its conda" if env.name in by_conda else ""))
        _create_env(site, old, env, "conda" if env.name in by_conda else "rattler")
    for name, why in left_out.items():
        progress(f"demo: leaving out {name}: {why}")
    progress("demo: pip installs into the environments")
    sandbox = sandbox_for(site)
    with ThreadPoolExecutor(max_workers=4) as pool:  # pip spends most of a second starting up: overlap them
        list(pool.map(lambda env: _pip_installs(site, sandbox, old, env, commits), environments))
    for env in environments:
        if env.name not in by_conda:  # conda wrote its own
            _write_old_history(old.env_prefix(env.name), old.path, env)
    # current appears once its environments are made: the demo is the one builder of production, whose
    # own writes the sandbox's watch over current (where nothing isolates) would otherwise take for a check's
    os.symlink(catalog.OLD, root / site.current_name)
    os.symlink(catalog.NEW, root / site.qa_name)
    os.symlink(f"{site.current_name}/envs", root / "envs")
    _withdraw(root)
    _kernels(site, environments)
    atomic.write_text(site.state_dir / DEMO_LEFT_OUT, json.dumps(left_out, indent=1) + "\n")
    (root / COMPLETE).parent.mkdir(parents=True, exist_ok=True)
    production = f"{REAL_CONDA} {realconda.VERSION}\n" if real_conda else ""
    (root / COMPLETE).write_text(f"built in {time.monotonic() - started:.1f}s\ncatalog {catalog_digest()}\n"
                                 + production + holding(only), encoding="utf-8")
    progress(f"demo: site ready at {root} ({time.monotonic() - started:.1f}s)")


def _old_pythons(environments: list[catalog.DemoEnv]) -> dict[str, Interpreter | None]:
    """Each old python `environments` are on ("2.7"), as this machine has it (or not)."""
    return {short: find(short) for short in sorted({env.python for env in environments if env.python})}


def _channels_and_wheels(root: Path, old_pythons: list[Interpreter], kernels: bool) -> None:
    """`kernels`: with the packages of ipykernel's closure, which are half of a build's time and a site
    whose environments have no kernel does without."""
    platform = str(rattler.Subdir.current())
    main, mpc, wheelhouse = root / "main", root / "mpc", root / "wheelhouse"
    write_package(main, python_package(platform))
    for python in old_pythons:
        write_package(main, old_python_package(platform, python.executable, python.version))
    if kernels:
        write_kernel_channel(main, platform, leave_out=catalog.KERNEL_OPTIONAL)
    for wheel in sorted((Path(ensurepip.__file__).parent / "_bundled").glob("*.whl")):
        write_package(main, python_build(wheel_to_package(wheel), platform))
    staging = root / ".condaqa" / "wheels"
    for lib in catalog.LIBRARIES:
        target = wheelhouse if lib.channel == "wheelhouse" else staging
        wheel = write_wheel(target, lib.name, lib.version, {f"{lib.module}/__init__.py": lib.source()})
        if lib.channel != "wheelhouse":
            write_package(root / lib.channel, wheel_to_package(wheel, depends=["python", *lib.depends]))
    shutil.rmtree(staging)
    for channel in (main, mpc):
        (channel / platform).mkdir(exist_ok=True)
        index_channel(channel)


def _log_file(site: Site, env: catalog.DemoEnv) -> Path:
    path = site.root / ".condaqa" / "demo-logs" / f"{env.name}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _installed_conda(progress: Callable[[str], object], required: bool) -> Path | None:
    """The python 3.6 whose venv holds conda 4.3.16, installed from the package registry unless kept already;
    None (said) where that cannot be had and a real conda is not `required`."""
    python = realconda.python36()
    try:
        if python is None:
            raise SiteError(realconda.unavailable())
        progress(f"demo: conda {realconda.VERSION} from the package registry, kept in {realconda.cache_dir()}")
        realconda.conda_venv(realconda.cache_dir(), python)
    except SiteError as exc:
        if required:
            raise SiteError(f"--real-conda: {exc}") from None
        progress(f"demo: current is made by py-rattler, not by a real conda: {exc}")
        return None
    return python


def _production(site: Site, conda_python: Path | None) -> Path:
    """current's installation: a bare one that py-rattler fills, or a real conda 4.3.16 root in a venv of
    `conda_python`."""
    if conda_python is None:
        return create_bare(site, catalog.OLD)
    channels = [(site.root / name).as_uri() for name in site.channels]
    return realconda.make_root(site.root / catalog.OLD, channels, realconda.cache_dir(), conda_python, add_pip=False)


def _create_env(site: Site, installation: Installation, env: catalog.DemoEnv, engine: str) -> None:
    with open(_log_file(site, env), "w", encoding="utf-8") as log:
        prefix = installation.env_prefix(env.name)
        get_engine(engine).create(site, installation, BuildPlan(env.name, env.conda), prefix, log)


def _pip_installs(site: Site, sandbox: Sandbox, installation: Installation, env: catalog.DemoEnv,
                  commits: dict[str, str]) -> None:
    """The environment's pip section, then its installs from git (a commit of a local repository)."""
    python, home = installation.env_prefix(env.name) / "bin" / "python", pip_home(site, installation.name, env.name)
    args = ("--no-index", "--find-links", str(site.root / "wheelhouse"))
    with open(_log_file(site, env), "a", encoding="utf-8") as log:
        if env.pip:
            pip_install(sandbox, env.name, python, list(env.pip), (*args, *env.pip_args), log, Stage.PIP, home)
        for name in env.git:
            pip_install(sandbox, env.name, python, [f"git+{(site.root / 'git' / name).as_uri()}@{commits[name]}"],
                        args, log, Stage.PIP, home)


def _withdraw(root: Path) -> None:
    """Remove the withdrawn versions from their channels, as an internal channel is cleaned up over the years."""
    channels = set()
    for lib in catalog.LIBRARIES:
        if lib.withdrawn:
            for archive in (root / lib.channel).glob(f"*/{lib.name}-{lib.version}-*.tar.bz2"):
                archive.unlink()
            channels.add(root / lib.channel)
    for channel in sorted(channels):
        index_channel(channel)


def _write_old_history(prefix: Path, installation: Path, env: catalog.DemoEnv) -> None:
    """Rewrite history as conda 4.3 wrote it: `channel::dist` lines and comma-joined install specs."""
    dists = []
    for record in sorted((prefix / "conda-meta").glob("*.json")):
        data = json.loads(record.read_text(encoding="utf-8"))
        channel = data["channel"].rstrip("/").rsplit("/", 1)[-1]
        dists.append(f"+{channel}::{data['name']}-{data['version']}-{data['build']}")
    text = (
        "==> 2019-06-03 09:14:27 <==\n"
        f"# cmd: {installation}/bin/conda create -n {env.name} {' '.join(env.history)}\n"
        + "\n".join(dists)
        + f"\n# install specs: {','.join(env.history)}\n"
    )
    (prefix / "conda-meta" / "history").write_text(text, encoding="utf-8")


def _kernels(site: Site, environments: list[catalog.DemoEnv]) -> None:
    for env in environments:
        if not env.kernel:
            continue
        via = site.current_name if env.kernel == "current" else catalog.OLD
        python = site.root / via / "envs" / env.name / "bin" / "python"
        spec: dict[str, object] = {
            "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"Python ({env.name})",
            "language": "python",
            "metadata": {"debugger": True},
        }
        if env.kernel == "versioned":  # as the hub admins wrote it: the data folder and PATH of that very prefix
            bin_dir = python.parent
            spec["env"] = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LINKAGE_DATA": str(bin_dir.parent / "share" / env.name)}
        folder = site.kernels_dir / env.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")


"""A kernel on an old python, started for real: ipykernel from the package registry in an environment
of python 3.6 (ipykernel 5.5) and of python 2.7 (ipykernel 4.10).

Sites keep Jupyter kernels on python 3.6 and 2.7 environments; the last ipykernel for 3.6 is 5.5.x,
for 2.7 it is 4.10.x. Each environment is made once per session as the demo makes its old
environments (a conda-style copy of the interpreter, demo/packages.py), given the pip its python
bundles, and pip installs the kernel (pip's own cache makes later sessions quick); the kernel is
then started in condaqa's sandbox. A version is skipped with its reason where this machine has
no such python or the registry cannot serve its pins. The demo carries no such kernel: it is
built offline and cannot download one.
"""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest

from condaqa.demo.packages import old_python_package, write_package
from condaqa.demo.pythons import find, missing_reason
from condaqa.kernels.launch import start
from condaqa.kernels.specs import Kernel
from condaqa.sandbox.box import sandbox_for
from condaqa.site import Site

SIJ = "super_important_jupyter_kernel"
# An index that serves no Requires-Python leaves pip picking the newest of everything, which refuses the old
# python at install: ipykernel and each package it needs are pinned to the last versions for that python.
# ipykernel 5.5 at the last versions for python 3.6 (pip 18, 3.6's bundled one).
PY36_KERNEL = ("ipykernel>=5.5,<6", "jupyter-client<7.2", "jupyter-core<4.10", "ipython<7.17", "traitlets<5",
               "tornado<6.2", "pyzmq<23", "jedi<0.18", "parso<0.8", "pygments<2.14", "prompt-toolkit<3.0.30",
               "decorator<5.2", "setuptools<60", "entrypoints<0.5", "nest-asyncio<1.6", "python-dateutil<2.9",
               "wcwidth<0.2.7", "pexpect<4.9", "six<1.17", "backcall<0.3", "pickleshare<0.8", "ptyprocess<0.8",
               "ipython-genutils<0.3")
# ipykernel 4.10 and everything it pulls in, at the last versions for python 2.7 (pip 19.2, 2.7's bundled one):
# the whole set installs with pip's --ignore-requires-python too, so it holds without the index's help. pyzmq
# 19.0.2 has cp27 manylinux wheels; tornado 5.1, scandir (pathlib2's, for ipython and pickleshare) and
# simplegeneric are sdists, built once into pip's cache: their C parts are optional speedups, left out where
# the environment has no python headers (the copy has none), so no compiler is needed.
PY27_KERNEL = ("ipykernel>=4.10,<4.11", "ipython<6", "traitlets<4.4", "jupyter-client<5.4", "jupyter-core<4.7",
               "tornado<6", "pyzmq<20", "prompt-toolkit<2", "pygments<2.6", "decorator<5", "python-dateutil<2.10",
               "pexpect<4.10", "ptyprocess<0.8", "pickleshare<0.8", "simplegeneric<0.9", "wcwidth<0.2.14",
               "six<1.18", "ipython-genutils<0.3", "backports-abc<0.6", "backports.functools-lru-cache<1.7",
               "backports.shutil-get-terminal-size<1.1", "enum34<1.2", "futures<3.5", "pathlib2<2.4",
               "scandir<1.11", "singledispatch<3.8", "typing<3.11", "setuptools<45")
KERNELS = {"3.6": PY36_KERNEL, "2.7": PY27_KERNEL}


@pytest.fixture(scope="session", params=sorted(KERNELS), ids=lambda short: f"python{short}")
def old_kernel(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(the python's short version, the python of an environment holding its ipykernel)."""
    short: str = request.param
    found = find(short)
    if found is None:
        pytest.skip(missing_reason(short))
    work = tmp_path_factory.mktemp(f"py{short.replace('.', '')}-kernel")
    # One way for both pythons, neither venv (2.7 has none) nor virtualenv: the sandbox shows a run only the
    # environment and what its bin/python resolves to, never an installation the environment names (sandbox/box.py),
    # and a 2.7 virtualenv's bin/python is a copy whose libpython and standard library lie in that installation. A
    # conda-style copy of the interpreter (the demo's) needs nothing outside the environment, and is what sites
    # hold; ensurepip gives it the pip its python bundles (19.2 for 2.7, 18.1 for 3.6) without the registry.
    archive = write_package(work / "channel", old_python_package("linux-64", found.executable, found.version))
    env = work / "env"
    with tarfile.open(archive) as tar:
        tar.extractall(env, filter="tar")
    python = env / "bin" / "python"
    subprocess.run([str(python), "-E", "-s", "-m", "ensurepip"], check=True, capture_output=True, timeout=300)
    _pip(f"wheel for python {short}", python, "wheel<0.38")  # before the kernel: pip caches the wheels it builds
    _pip(f"ipykernel for python {short}", python, *KERNELS[short])
    for parent in env.parents:  # the sandbox user reads the environment: make the folders above it passable
        if parent == Path(tmp_path_factory.getbasetemp()).parent:
            break
        parent.chmod(parent.stat().st_mode | 0o711)
    return short, python


def _pip(what: str, python: Path, *requirements: str) -> None:
    """pip installs `requirements` into `python`'s environment, or the test is skipped with pip's last word."""
    done = subprocess.run([str(python), "-E", "-s", "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           *requirements], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        pytest.skip(f"{what} could not be installed from the registry: "
                    f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")


def test_a_kernel_on_an_old_python_starts_for_real_and_imports_its_modules(demo_site: Site,
                                                                           old_kernel: tuple[str, Path]) -> None:
    short, python = old_kernel
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = Kernel(f"py{short.replace('.', '')}", Path("kernel.json"), tuple(argv), "", "", f"Python {short}")
    run = start(sandbox_for(demo_site), SIJ, spec, argv, {}, ["json", "ipykernel", "no_such_module"], 120,
                python=python)
    assert run.problem == "cannot import no_such_module", run.stderr
    assert run.prefix == str(python.parent.parent)
    [(name, error)] = run.failed
    missing = "ImportError" if short == "2.7" else "ModuleNotFoundError"  # 3.6 brought ModuleNotFoundError
    assert name == "no_such_module" and error.startswith(missing + ": "), error

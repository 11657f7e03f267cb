"""A kernel on an old python, started for real: ipykernel from the package registry in a venv of python 3.6.

Sites keep Jupyter kernels on python 3.6 environments; the last ipykernel for 3.6 is 5.5.x. The
venv is made once per session (pip's own cache makes later sessions quick); the test is skipped
with its reason where this machine has no python 3.6 or the registry cannot be reached. The demo
carries no such kernel: it is built offline and cannot download one.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from condaqa.demo.pythons import find, missing_reason
from condaqa.kernels.launch import start
from condaqa.kernels.specs import Kernel
from condaqa.sandbox.box import sandbox_for
from condaqa.site import Site

SIJ = "super_important_jupyter_kernel"
# ipykernel 5.5 and what it needs, at the last versions for python 3.6: an index that serves no Requires-Python
# leaves pip 18 (3.6's bundled one) picking the newest, which refuses 3.6 at install.
PY36_KERNEL = ("ipykernel>=5.5,<6", "jupyter-client<7.2", "jupyter-core<4.10", "ipython<7.17", "traitlets<5",
               "tornado<6.2", "pyzmq<23", "jedi<0.18", "parso<0.8", "pygments<2.14", "prompt-toolkit<3.0.30",
               "decorator<5.2", "setuptools<60", "entrypoints<0.5", "nest-asyncio<1.6", "python-dateutil<2.9",
               "wcwidth<0.2.7", "pexpect<4.9", "six<1.17", "backcall<0.3", "pickleshare<0.8", "ptyprocess<0.8",
               "ipython-genutils<0.3")


@pytest.fixture(scope="session")
def py36_kernel_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    found = find("3.6")
    if found is None:
        pytest.skip(missing_reason("3.6"))
    venv = tmp_path_factory.mktemp("py36-kernel") / "venv"
    subprocess.run([str(found.executable), "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           *PY36_KERNEL], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        pytest.skip(f"ipykernel for python 3.6 could not be installed from the registry: "
                    f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")
    venv.chmod(0o755)
    for parent in venv.parents:  # the sandbox user reads the venv: make the folders above it passable
        if parent == Path(tmp_path_factory.getbasetemp()).parent:
            break
        parent.chmod(parent.stat().st_mode | 0o711)
    return venv / "bin" / "python"


def test_a_kernel_on_python_3_6_starts_for_real_and_imports_its_modules(demo_site: Site,
                                                                        py36_kernel_python: Path) -> None:
    argv = [str(py36_kernel_python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = Kernel("py36", Path("kernel.json"), tuple(argv), "", "", "Python 3.6")
    run = start(sandbox_for(demo_site), SIJ, spec, argv, {}, ["json", "ipykernel", "no_such_module"], 120,
                python=py36_kernel_python)
    assert run.problem == "cannot import no_such_module", run.stderr
    assert run.prefix == str(py36_kernel_python.parent.parent)
    [(name, error)] = run.failed
    assert name == "no_such_module" and error.startswith("ModuleNotFoundError")

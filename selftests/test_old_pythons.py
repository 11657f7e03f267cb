"""The code condaqa hands to an environment's own interpreter runs on the pythons old sites hold.

The key-module probe, the forked imports and the kernel's import probe run in the environment's
python, which on a site migrating off conda 4.3 is often 2.7 or 3.6. Each snippet is run here by
every old interpreter this machine has (pyenv's, or pythonX.Y on PATH), and gives the answer
condaqa parses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from condaqa.checks import imports
from condaqa.kernels import launch

OLD = ("2.7", "3.5", "3.6", "3.7", "3.8")


def _interpreter(version: str) -> str | None:
    found = shutil.which(f"python{version}")
    if found and subprocess.run([found, "-c", "pass"], capture_output=True).returncode == 0:
        return found
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(root.glob(f"{version}.*/bin/python{version}")) if root.is_dir() else []
    return str(candidates[-1]) if candidates else None


PYTHONS = [pytest.param(_interpreter(v), id=v, marks=pytest.mark.skipif(_interpreter(v) is None,
                                                                         reason=f"no python {v} here"))
           for v in OLD]


def _run(python: str, *args: str) -> str:
    done = subprocess.run([python, "-E", "-s", "-B", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("python", PYTHONS)
def test_the_key_module_probe_runs_on_old_pythons(python: str) -> None:
    assert json.loads(_run(python, "-c", imports._PROBE, "json", "no_such_module")) == ["json"]


@pytest.mark.parametrize("python", PYTHONS)
def test_the_forked_imports_run_on_old_pythons(python: str) -> None:
    found = json.loads(_run(python, "-c", imports._FORKED_IMPORTS, "5", "json", "no_such_module", "os"))
    assert [(name, code) for name, code, _ in found] == [("json", 0), ("no_such_module", 1), ("os", 0)]
    assert "ImportError" in found[1][2] or "ModuleNotFoundError" in found[1][2]


@pytest.mark.parametrize("python", PYTHONS)
def test_the_kernel_probe_runs_on_old_pythons(python: str) -> None:
    said = _run(python, "-c", launch._PROBE.format(modules=["json", "no_such_module"]))
    answer = json.loads(said.removeprefix("condaqa-probe "))
    [(name, error)] = answer["failed"]
    assert name == "no_such_module" and error.split(":")[0] in ("ImportError", "ModuleNotFoundError")

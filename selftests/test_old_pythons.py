"""The code condaqa hands to an environment's own interpreter runs on the pythons old sites hold.

The key-module probe, the forked imports, a single import, the kernel's import probe, the
bytecode compiler of noarch packages and the owner check every environment runs (env_checks/_all)
run in the environment's python, which on a site migrating off conda 4.3 is often 2.7 or 3.6.
Each is compiled and run here by every old interpreter this machine has (pythonX.Y on PATH, or
pyenv's), and gives the answer condaqa parses. The versions and executables checks read the
prefix and run nothing in it. A guard finds every `-c` snippet condaqa passes to a process, so
a new one cannot escape these tests. The demo holds an environment on 2.7 and one on 3.6 where
this machine has them: each runs its interpreter in current and in qa, and qualifies green.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import QA
from fixture_sites import REPO

from condaqa.checks import imports
from condaqa.demo import catalog, pythons
from condaqa.demo.packages import old_python_package, write_package
from condaqa.demo.pythons import find, missing_reason
from condaqa.engines import bytecode
from condaqa.kernels import launch
from condaqa.kernels.specs import find_kernels
from condaqa.manifest import site_manifest
from condaqa.qualification.required import OWNER, CheckId, required_checks
from condaqa.qualification.verdict import standing
from condaqa.site import Site
from condaqa.vocab import Verdict

OLD = ("2.7", "3.5", "3.6", "3.7", "3.8")
FOUND = {version: find(version) for version in OLD}
PYTHONS = [pytest.param(str(found.executable) if found else "", id=version,
                        marks=pytest.mark.skipif(found is None, reason=missing_reason(version)))
           for version, found in FOUND.items()]
DEMO_ENVS = [pytest.param(env.name, env.python, id=env.name,
                          marks=pytest.mark.skipif(FOUND[env.python] is None, reason=missing_reason(env.python)))
             for env in catalog.ENVIRONMENTS if env.python]

# Every `-c` snippet in condaqa, by its source text: what runs it.
FOREIGN = {"_PROBE", "_FORKED_IMPORTS", "f'import {module}'", "_COMPILE", "_ASK"}  # old pythons: tested here
OWN = {"script": "the sandbox probe, run by sh", "SCRIPT": "the sandbox without bubblewrap, run by sh",
       "'from condaqa.worker import serve; serve()'": "condaqa's own python (sys.executable)"}


def _run(python: str, *args: str, stdin: str = "", environ: dict[str, str] | None = None) -> str:
    done = subprocess.run([python, "-E", "-s", "-B", *args], capture_output=True, text=True, timeout=60, input=stdin,
                          env={"PATH": os.environ["PATH"], **(environ or {})})
    assert done.returncode == 0, done.stderr
    return (done.stdout.strip().splitlines() or [""])[-1]


def _compiles(python: str, source: str) -> None:
    _run(python, "-c", "import sys; compile(sys.stdin.read(), '<snippet>', 'exec')", stdin=source)


def test_every_c_snippet_condaqa_runs_is_known_to_these_tests() -> None:
    found = set()
    for module in sorted((REPO / "condaqa").rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.List):
                for flag, snippet in zip(node.elts, node.elts[1:], strict=False):
                    if isinstance(flag, ast.Constant) and flag.value == "-c":
                        found.add(ast.unparse(snippet))
    found -= {"url"}  # conda's `-c CHANNEL` (engines/conda.py), not code
    assert found == FOREIGN | set(OWN), "a `-c` snippet neither run on old pythons here nor known as condaqa's own"


@pytest.mark.parametrize("python", PYTHONS)
def test_the_version_question_runs_on_old_pythons(python: str) -> None:
    version, executable = _run(python, "-c", pythons._ASK).split(" ", 1)
    assert version.count(".") == 2 and os.path.samefile(executable, python)


@pytest.mark.parametrize("python", PYTHONS)
def test_the_key_module_probe_runs_on_old_pythons(python: str) -> None:
    _compiles(python, imports._PROBE)
    assert json.loads(_run(python, "-c", imports._PROBE, "json", "no_such_module")) == ["json"]


@pytest.mark.parametrize("python", PYTHONS)
def test_the_forked_imports_run_on_old_pythons(python: str) -> None:
    _compiles(python, imports._FORKED_IMPORTS)
    found = json.loads(_run(python, "-c", imports._FORKED_IMPORTS, "5", "json", "no_such_module", "os"))
    assert [(name, code) for name, code, _ in found] == [("json", 0), ("no_such_module", 1), ("os", 0)]
    assert "ImportError" in found[1][2] or "ModuleNotFoundError" in found[1][2]


@pytest.mark.parametrize("python", PYTHONS)
def test_one_import_runs_on_old_pythons(python: str) -> None:
    module = "json"
    assert _run(python, "-c", f"import {module}; print('imported')") == "imported"


@pytest.mark.parametrize("python", PYTHONS)
def test_the_kernel_probe_runs_on_old_pythons(python: str) -> None:
    probe = launch._PROBE.format(modules=["json", "no_such_module"])
    _compiles(python, probe)
    answer = json.loads(_run(python, "-c", probe).removeprefix("condaqa-probe "))
    [(name, error)] = answer["failed"]
    assert name == "no_such_module" and error.split(":")[0] in ("ImportError", "ModuleNotFoundError")


@pytest.mark.parametrize("python", PYTHONS)
def test_the_bytecode_compiler_runs_on_old_pythons(python: str, tmp_path: Path) -> None:
    _compiles(python, bytecode._COMPILE)
    good, bad = tmp_path / "pkg" / "good.py", tmp_path / "pkg" / "bad.py"
    good.parent.mkdir()
    good.write_text("VALUE = 1\n", encoding="utf-8")
    bad.write_text("print 'python 2 only' if False else\n", encoding="utf-8")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "sources").write_text(f"{good}\0{bad}", encoding="utf-8")
    _run(python, "-Wi", "-c", bytecode._COMPILE, str(scratch))
    tag = (scratch / "tag").read_text(encoding="ascii")
    assert sorted(p.name for p in scratch.glob("*.pyc")) == ["0.pyc"]
    major = _run(python, "-c", "import sys; print(sys.version_info[0])")
    assert (tag == "") == (major == "2") and (not tag or tag.startswith("cpython-3"))


@pytest.mark.parametrize("python", PYTHONS)
def test_the_check_every_environment_runs_passes_on_old_pythons(python: str) -> None:
    check = REPO / "env_checks" / "_all" / "check_interpreter.py"
    prefix = _run(python, "-c", "import sys; print(sys.prefix)")
    said = _run(python, str(check), environ={"CONDAQA_ENV_PREFIX": prefix, "CONDAQA_ENV_NAME": "old"})
    assert said.startswith("old: python ") and said.endswith(prefix)


@pytest.mark.parametrize("python", PYTHONS)
def test_a_python_package_of_an_old_interpreter_gives_an_environment_its_own_prefix(python: str,
                                                                                   tmp_path: Path) -> None:
    found = next(f for f in FOUND.values() if f is not None and str(f.executable) == python)
    archive = write_package(tmp_path / "channel", old_python_package("linux-64", found.executable, found.version))
    prefix = tmp_path / "env"
    with tarfile.open(archive) as tar:
        tar.extractall(prefix, filter="tar")
    ask = "import json, sys; print(json.dumps([sys.prefix, sys.version.split()[0], sys.path]))"
    where, version, path = json.loads(_run(str(prefix / "bin" / "python"), "-c", ask))
    assert where == str(prefix) and version == found.version
    assert str(prefix / "lib" / f"python{found.short}" / "site-packages") in path
    assert _run(str(prefix / "bin" / "python"), "-c", "import json, encodings, ctypes; print('stdlib')") == "stdlib"


@pytest.mark.parametrize("short", ["2.7", "3.6"])
def test_an_old_python_package_needs_nothing_of_the_installation_it_was_made_from(short: str, tmp_path: Path) -> None:
    """The sandbox shows a run nothing an environment names outside itself: with the interpreter's
    installation hidden, the environment's python still finds its libpython, its standard library
    and its extension modules in the environment (conda 4.3 links the package's files as copies)."""
    found, bwrap = FOUND[short], shutil.which("bwrap")
    if found is None or bwrap is None:
        pytest.skip(missing_reason(short) if found is None else "no bubblewrap to hide the installation with")
    archive = write_package(tmp_path / "channel", old_python_package("linux-64", found.executable, found.version))
    prefix = tmp_path / "env"
    with tarfile.open(archive) as tar:
        tar.extractall(prefix, filter="tar")
    hidden = [bwrap, "--ro-bind", "/", "/", "--tmpfs", str(found.executable.parent.parent), "--dev", "/dev"]
    ask = "import sys, ctypes, json, sqlite3, zlib; print(sys.prefix + ' ' + json.dumps(sys.path))"
    done = subprocess.run([*hidden, str(prefix / "bin" / "python"), "-E", "-s", "-B", "-c", ask], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    where, path = done.stdout.strip().split(" ", 1)
    assert where == str(prefix) and all(p.startswith(str(prefix)) for p in json.loads(path) if p)


@pytest.mark.parametrize(("name", "short"), DEMO_ENVS)
def test_the_demos_old_python_environments_run_their_interpreter_and_qualify_green(
        name: str, short: str, qualified_site: Site) -> None:
    """Built on the interpreter they claim, in current and in qa, with an owner check and key modules of
    their own, and passed in the demo's full qualification."""
    found = FOUND[short]
    assert found is not None
    ask = "import sys; print(sys.version.split()[0] + ' ' + sys.prefix)"
    for installation in (catalog.OLD, QA):
        prefix = qualified_site.root / installation / "envs" / name
        version, where = _run(str(prefix / "bin" / "python"), "-c", ask).split(" ", 1)
        assert version == found.version and os.path.samefile(where, prefix)
    env = next(e for e in site_manifest(qualified_site) if e.name == name)
    kernels = find_kernels(qualified_site)
    owners = [c for c in required_checks(qualified_site, env, kernels, QA) if c.startswith(f"{OWNER}{name}/")]
    assert env.imports and owners and all(CheckId.parse(c).target.endswith(".py") for c in owners)
    verdict = standing(qualified_site, QA, env, kernels)
    assert verdict.verdict is Verdict.PASSED, verdict.reason

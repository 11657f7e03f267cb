"""Checks run in the sandbox: the forked import probe's failure paths, owner checks' processes, and what
keeps current unchanged: read-only in a sandbox, watched where none works."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_sites import NEW, OLD, PY, make_site, processes_with

from condaqa.checks import imports
from condaqa.checks.imports import import_modules, importable_in, key_modules, probe_path
from condaqa.checks.owner import run_owner_check
from condaqa.checks.runs import run_python
from condaqa.manifest import load_manifest
from condaqa.sandbox import box
from condaqa.sandbox.box import sandbox_for
from condaqa.site import Site
from condaqa.triage import classify_owner_check
from condaqa.vocab import Category

MODULES = {
    "fine_mod": "print('imported fine')\n",
    "segv_mod": "import ctypes\nctypes.string_at(0)\n",
    "slow_mod": "import time\ntime.sleep(60)\n",
    "exit_mod": "raise SystemExit(3)\n",
    "raise_mod": "raise ImportError('needs the data folder')\n",
}


@pytest.fixture
def site(tmp_path: Path) -> Site:
    site = make_site(tmp_path, kernels=False)
    for installation in (OLD, NEW):
        site_packages = site.root / installation / "envs" / "alpha" / "lib" / PY / "site-packages"
        for name, source in MODULES.items():
            (site_packages / f"{name}.py").write_text(source)
    return site


def python(site: Site, installation: str = NEW) -> Path:
    return site.root / installation / "envs" / "alpha" / "bin" / "python"


def test_the_forked_import_probe_reports_each_way_an_import_can_end(site: Site) -> None:
    runs = {r.name: r for r in import_modules(sandbox_for(site), "alpha", python(site), list(MODULES), timeout=2)}
    assert list(runs) == list(MODULES)
    assert runs["fine_mod"].passed and "imported fine" in runs["fine_mod"].output
    assert runs["segv_mod"].returncode == -11 and not runs["segv_mod"].passed  # SIGSEGV, the probe survived it
    assert runs["slow_mod"].timed_out and "did not finish within 2s" in runs["slow_mod"].output
    assert runs["exit_mod"].returncode == 3 and not runs["exit_mod"].passed
    assert runs["raise_mod"].returncode == 1 and "ImportError: needs the data folder" in runs["raise_mod"].output


def test_the_import_probe_of_current_finds_what_imports(site: Site) -> None:
    modules = ["fine_mod", "raise_mod", "exit_mod", "no_such"]
    found = importable_in(sandbox_for(site), "alpha", python(site, OLD), modules)
    assert found == ["fine_mod"]


def test_current_is_probed_for_its_key_modules_once_per_state_of_its_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_site(tmp_path, ("alpha",), kernels=False)
    site.manifest.with_suffix(".toml").unlink()  # no `imports`: the key modules are found in current
    env = next(e for e in load_manifest(site.manifest) if e.name == "alpha")
    site_packages = site.root / OLD / "envs" / "alpha" / "lib" / PY / "site-packages"
    (site_packages / "counted.py").write_text("")
    started: list[str] = []  # the processes the key modules were asked in

    def counting(*args: Any, **kwargs: Any) -> Any:
        started.append(args[2])
        return run_python(*args, **kwargs)

    monkeypatch.setattr(imports, "run_python", counting)
    sandbox = sandbox_for(site)
    assert "counted" in key_modules(sandbox, env) and started == ["the import probe"]
    assert "counted" in key_modules(sandbox, env) and len(started) == 1  # the kept answer
    (site_packages / "added.py").write_text("")
    assert "added" in key_modules(sandbox, env) and len(started) == 2
    (site_packages / "kills.py").write_text("import os\nos._exit(1)\n")  # takes the one-process probe down
    found = key_modules(sandbox, env)
    assert "kills" not in found and {"added", "counted"} <= set(found)  # each asked in a process of its own
    assert started[2:] == ["the import probe", "the imports"]  # the probe that died, then one fork per module
    assert key_modules(sandbox, env) == found and len(started) == 4
    assert "kills" in probe_path(site, "alpha").read_text()  # among the candidates the kept answer is for


def test_an_owner_check_is_killed_with_its_children_and_a_child_holding_stdout_does_not_hold_it(
        site: Site, tmp_path: Path) -> None:
    marker = f"condaqa-selftest-{os.getpid()}-{time.monotonic_ns()}"
    check = tmp_path / "checks" / "check_leaves_a_child.py"
    check.parent.mkdir()
    check.write_text("import os, subprocess, sys\n"
                     f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', {marker!r}])\n"
                     f"if os.fork() == 0:\n    os.setsid()\n    os.execv(sys.executable, [sys.executable, '-c', "
                     f"'import time; time.sleep(300)', {marker!r}])\n"
                     "print('done, the children keep our stdout')\n")
    # The children sleep 300 s holding the check's stdout: waiting for the end of its output would time out.
    run = run_owner_check(sandbox_for(site), check, python(site), "alpha", site.root / NEW / "envs" / "alpha", 5)
    assert run.passed and not run.timed_out, run.output
    deadline = time.monotonic() + 5  # killed at once; reaped in the kernel's own time
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(marker) == [], "the check's children outlived it"


WRITES_INTO_CURRENT = """import os, pathlib
target = pathlib.Path(os.environ["CONDAQA_ENV_PREFIX"].replace("/{new}/", "/{old}/")) / "conda-meta" / "planted.json"
try:
    target.write_text("{{}}")
    print("wrote", target)
except OSError as exc:
    print("could not write:", exc)
    raise SystemExit(1)
"""


def _writer(tmp_path: Path) -> Path:
    check = tmp_path / "checks" / "check_writes_into_current.py"
    check.parent.mkdir(exist_ok=True)
    check.write_text(WRITES_INTO_CURRENT.format(new=NEW, old=OLD))
    return check


def test_in_the_sandbox_a_check_cannot_write_under_current(site: Site, tmp_path: Path) -> None:
    sandbox = sandbox_for(site)
    if sandbox.mode == box.NONE:
        pytest.skip(f"no sandbox works here: {sandbox.describe()}")
    run = run_owner_check(sandbox, _writer(tmp_path), python(site), "alpha", site.root / NEW / "envs" / "alpha", 60)
    assert not run.passed and "Read-only file system" in run.output
    assert not (site.root / OLD / "envs" / "alpha" / "conda-meta" / "planted.json").exists()


@pytest.fixture
def no_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As where no sandbox works: change detection only."""
    monkeypatch.setenv(box.MODE_VARIABLE, box.NONE)
    sandbox_for.cache_clear()
    yield
    sandbox_for.cache_clear()


def test_where_no_sandbox_works_a_change_under_current_fails_the_check(
        site: Site, tmp_path: Path, no_sandbox: None) -> None:
    sandbox = sandbox_for(site)
    assert sandbox.mode == box.NONE and "not isolated" in sandbox.describe()
    planted = site.root / OLD / "envs" / "alpha" / "conda-meta" / "planted.json"
    run = run_owner_check(sandbox, _writer(tmp_path), python(site), "alpha", site.root / NEW / "envs" / "alpha", 60)
    assert not run.passed and run.current_changed == (
        f"{planted} appeared while checks/check_writes_into_current.py ran: qualification must leave current as it is")
    env = next(e for e in load_manifest(site.manifest) if e.name == "alpha")
    assert classify_owner_check(sandbox, env, _writer(tmp_path), run).category is Category.CURRENT_CHANGED


def test_where_no_sandbox_works_a_probe_that_changes_current_is_reported(tmp_path: Path, no_sandbox: None) -> None:
    site = make_site(tmp_path, ("alpha",), kernels=False)
    site.manifest.with_suffix(".toml").unlink()  # no `imports`: the key modules are found in current
    env = next(e for e in load_manifest(site.manifest) if e.name == "alpha")
    meta = site.root / OLD / "envs" / "alpha" / "conda-meta"
    site_packages = site.root / OLD / "envs" / "alpha" / "lib" / PY / "site-packages"
    (site_packages / "plants.py").write_text(f"open({str(meta / 'planted.json')!r}, 'w').write('{{}}')\n")
    with pytest.raises(box.CurrentChanged, match=f"{meta / 'planted.json'} appeared while the import probe ran"):
        key_modules(sandbox_for(site), env)
    assert not probe_path(site, "alpha").exists()

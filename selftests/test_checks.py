"""Checks run fenced: the forked import probe's failure paths, owner checks' process groups, and the
fence that keeps current unchanged, read-only or watched."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_sites import NEW, OLD, PY, make_site

from condaqa import fence as fences
from condaqa.checks.imports import import_modules, importable_in, key_modules, probe_path
from condaqa.checks.owner import run_owner_check
from condaqa.fence import fence_for
from condaqa.manifest import load_manifest
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
    runs = {r.name: r for r in import_modules(fence_for(site), "alpha", python(site), list(MODULES), timeout=2)}
    assert list(runs) == list(MODULES)
    assert runs["fine_mod"].passed and "imported fine" in runs["fine_mod"].output
    assert runs["segv_mod"].returncode == -11 and not runs["segv_mod"].passed  # SIGSEGV, the probe survived it
    assert runs["slow_mod"].timed_out and "did not finish within 2s" in runs["slow_mod"].output
    assert runs["exit_mod"].returncode == 3 and not runs["exit_mod"].passed
    assert runs["raise_mod"].returncode == 1 and "ImportError: needs the data folder" in runs["raise_mod"].output


def test_the_import_probe_of_current_finds_what_imports(site: Site) -> None:
    found = importable_in(fence_for(site), "alpha", python(site, OLD), ["fine_mod", "raise_mod", "exit_mod", "no_such"])
    assert found == ["fine_mod"]


def test_current_is_probed_for_its_key_modules_once_per_state_of_its_environment(tmp_path: Path) -> None:
    site = make_site(tmp_path, ("alpha",), kernels=False)
    site.manifest.with_suffix(".toml").unlink()  # no `imports`: the key modules are found in current
    env = next(e for e in load_manifest(site.manifest) if e.name == "alpha")
    site_packages = site.root / OLD / "envs" / "alpha" / "lib" / PY / "site-packages"
    probes = tmp_path / "probes"
    (site_packages / "counted.py").write_text(f"open({str(probes)!r}, 'a').write('probe\\n')\n")
    fence = fence_for(site)
    assert "counted" in key_modules(fence, env) and probes.read_text() == "probe\n"
    assert "counted" in key_modules(fence, env) and probes.read_text() == "probe\n"  # the kept answer
    (site_packages / "added.py").write_text("")
    assert "added" in key_modules(fence, env) and probes.read_text() == "probe\n" * 2
    (site_packages / "kills.py").write_text("import os\nos._exit(1)\n")  # takes the one-process probe down
    found = key_modules(fence, env)
    assert "kills" not in found and {"added", "counted"} <= set(found)  # each asked in a process of its own
    assert probes.read_text() == "probe\n" * 4  # the probe that died, then counted's own process
    assert key_modules(fence, env) == found and probes.read_text() == "probe\n" * 4
    assert "kills" in probe_path(site, "alpha").read_text()  # among the candidates the kept answer is for


def test_an_owner_check_is_killed_with_its_children_and_a_child_holding_stdout_does_not_hold_it(site, tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    check = tmp_path / "checks" / "check_leaves_a_child.py"
    check.parent.mkdir()
    check.write_text("import subprocess, sys\n"
                     "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
                     f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
                     "print('done, the child keeps our stdout')\n")
    # The child sleeps 300 s holding the check's stdout: waiting for the end of its output would time out.
    run = run_owner_check(fence_for(site), check, python(site), "alpha", site.root / NEW / "envs" / "alpha", 5)
    assert run.passed and not run.timed_out, run.output
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild), "the check's child outlived it"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return state not in ("Z", "X")


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


def test_in_a_read_only_namespace_a_check_cannot_write_under_current(site: Site, tmp_path: Path) -> None:
    fence = fence_for(site)
    if fence.mode != fences.NAMESPACE:
        pytest.skip(f"no read-only mount namespace here: {fence.describe()}")
    run = run_owner_check(fence, _writer(tmp_path), python(site), "alpha", site.root / NEW / "envs" / "alpha", 60)
    assert not run.passed and "Read-only file system" in run.output
    assert not (site.root / OLD / "envs" / "alpha" / "conda-meta" / "planted.json").exists()


@pytest.fixture
def detect_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The fence as it is where no mount namespace is possible: change detection only."""
    monkeypatch.setenv("CONDAQA_FENCE", fences.DETECT)
    fences._mode.cache_clear()
    yield
    fences._mode.cache_clear()


def test_where_no_namespace_is_possible_a_change_under_current_fails_the_check(site, tmp_path, detect_only):
    fence = fence_for(site)
    assert fence.mode == fences.DETECT and "change detection only" in fence.describe()
    planted = site.root / OLD / "envs" / "alpha" / "conda-meta" / "planted.json"
    run = run_owner_check(fence, _writer(tmp_path), python(site), "alpha", site.root / NEW / "envs" / "alpha", 60)
    assert not run.passed and run.current_changed == (
        f"{planted} appeared while checks/check_writes_into_current.py ran: qualification must leave current as it is")
    env = next(e for e in load_manifest(site.manifest) if e.name == "alpha")
    assert classify_owner_check(fence, env, _writer(tmp_path), run).category is Category.CURRENT_CHANGED


def test_where_no_namespace_is_possible_a_probe_that_changes_current_is_reported(tmp_path, detect_only):
    site = make_site(tmp_path, ("alpha",), kernels=False)
    site.manifest.with_suffix(".toml").unlink()  # no `imports`: the key modules are found in current
    env = next(e for e in load_manifest(site.manifest) if e.name == "alpha")
    meta = site.root / OLD / "envs" / "alpha" / "conda-meta"
    site_packages = site.root / OLD / "envs" / "alpha" / "lib" / PY / "site-packages"
    (site_packages / "plants.py").write_text(f"open({str(meta / 'planted.json')!r}, 'w').write('{{}}')\n")
    with pytest.raises(fences.CurrentChanged, match=f"{meta / 'planted.json'} appeared while the import probe ran"):
        key_modules(fence_for(site), env)
    assert not probe_path(site, "alpha").exists()


def test_the_fence_probe_runs_the_site_read_only(site: Site) -> None:
    fence = fence_for(site)
    if fence.mode != fences.NAMESPACE:
        pytest.skip(f"no read-only mount namespace here: {fence.describe()}")
    done = subprocess.run(fence.wrap(["sh", "-c", f"touch {site.root}/x"]), capture_output=True, text=True)
    assert done.returncode != 0 and "Read-only file system" in done.stderr
    assert not (site.root / "x").exists()
    assert subprocess.run(fence.wrap([sys.executable, "-c", "print(1)"]), capture_output=True).returncode == 0

"""Shared fixtures: one demo site per worker, reset between tests, and project folders pointing at it.

Building the demo takes tens of seconds and it holds some 18,000 files, so each xdist worker
builds it once. Between tests, what a qualification may change is reset: the qa
installation (its package cache kept warm), condaqa's state, kernel specs, links, and
anything new at the root. What a qualification must never change, the installation
`current` points to, the channels and the git repository, is checked after each test that
uses `demo_site`: a test that changes them must ask for `demo_copy` instead, a private copy
made of hard links with the files tests edit in place (records, dist-info, kernel specs)
copied for real.

The full green qualification of the demo that many tests start from is made once per worker
that needs it. Its fixture has one parameter, GREEN, so every test that starts from it (directly or
through qualified_site) carries GREEN in its id, and the scheduler (condaqa's, the one the harness
uses) sends those tests to one worker together, so that one worker makes it. No list of tests to keep.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers_sites import tree_state

from condaqa.demo.site import ensure_demo
from condaqa.fingerprint import cache_file, fingerprint
from condaqa.replication.stamp import STAMP
from condaqa.scheduling import GroupScheduling
from condaqa.site import Site, load_site

REPO = Path(__file__).resolve().parent.parent
# What real conda wrote and printed (its README.md says what each file is): beside the repository, or a copy.
REALCONDA = Path(os.environ.get("CONDAQA_REALCONDA") or REPO.parent / "shared" / "realconda")
QA = "v4.8"
# what stays as built: current is, and so is the key that signs results, and the digests of unchanged files
_KEPT_STATE = {"demo-complete", "demo-left-out.json", "demo-logs", "demo.lock", "key-modules", "digests", "results.key"}


def write_project(folder: Path, root: Path, **site_overrides: str) -> Path:
    """A copy of the repository's manifests, env_checks, tests and pytest settings whose site.toml points at `root`."""
    for name in ("manifests", "env_checks", "tests"):
        shutil.copytree(REPO / name, folder / name, dirs_exist_ok=True)
    shutil.copy(REPO / "pyproject.toml", folder / "pyproject.toml")
    (folder / "condaqa").mkdir(exist_ok=True)  # pyproject's testpaths name condaqa/suite: the installed one
    if not (folder / "condaqa" / "suite").exists():
        (folder / "condaqa" / "suite").symlink_to(REPO / "condaqa" / "suite")
    text = (REPO / "manifests" / "site.toml").read_text(encoding="utf-8")
    text = text.replace('root = "../.condaqa-demo"', f'root = "{root}"')
    for key, value in site_overrides.items():
        text += f"{key} = {value}\n"
    site_file = folder / "manifests" / "site.toml"
    site_file.write_text(text, encoding="utf-8")
    return site_file


def no_rescue(site_file: Path) -> None:
    """Turn rescue off in a project's site.toml: for tests of a pin that no channel has, which stops a build."""
    text = site_file.read_text(encoding="utf-8")
    site_file.write_text(text.replace("[site]\n", "[site]\nrescue = false\n", 1), encoding="utf-8")


GREEN = "green_qualification"  # the id of green_qualification's one parameter: in the id of every test using it


REAL_CONDA_TIER = "test_realconda_live.py"  # one worker builds its conda site once


def _group(nodeid: str) -> str:
    """The scheduling group of a test: GREEN for those that start from the green qualification, the real
    conda tier as one, any other test on its own."""
    if nodeid.partition("::")[0].endswith(REAL_CONDA_TIER):
        return REAL_CONDA_TIER
    params = nodeid.partition("[")[2].removesuffix("]")
    return GREEN if GREEN in params.split("-") else nodeid


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's `load`, except that the tests starting from the green qualification go to one worker, as one unit."""
    if config.getoption("dist") != "load":
        return None
    from xdist.workermanage import parse_tx_spec_config

    return GroupScheduling(len(parse_tx_spec_config(config)), _group, log)


@pytest.fixture(autouse=True)
def _run_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs from its own folder, so reports/ and sanitized/ land there, never in the repository."""
    monkeypatch.chdir(tmp_path)


@dataclass(frozen=True)
class Demo:
    root: Path
    pristine: Path  # the demo as built, never used directly
    guarded: dict[str, str]  # fingerprints of what no test may change through demo_site


GUARDED = ("v4.3", "main", "mpc", "wheelhouse", "git")  # current's installation, the channels, the git repository


def _parts(root: Path) -> list[Path]:
    """What no test may change through demo_site, in the pieces a demo_copy test gets back:
    each of current's environments, the rest of its installation, each channel, the git folder."""
    envs = root / "v4.3" / "envs"
    return [*(envs.iterdir() if envs.is_dir() else ()), *(root / name for name in GUARDED)]


def _digest(part: Path) -> str:
    """A digest of every path under `part` (v4.3: without its envs, which are parts of their own)."""
    if not part.exists():
        return "absent"
    state = tree_state(part, skip="envs" if part.name == "v4.3" else "")
    return hashlib.sha256("\n".join(f"{path} {st}" for path, st in sorted(state.items())).encode()).hexdigest()


def _guarded(root: Path) -> dict[str, str]:
    return {str(part.relative_to(root)): _digest(part) for part in _parts(root)}


@pytest.fixture(scope="session")
def _demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    base = tmp_path_factory.mktemp("demo")
    site = load_site(write_project(base / "project", base / "site"), base=base / "project")
    ensure_demo(site, progress=lambda line: None, real_conda=False)  # test_realconda_live builds one with it
    subprocess.run(["cp", "-a", str(base / "site"), str(base / "pristine")], check=True)
    return Demo(base / "site", base / "pristine", _guarded(base / "site"))


def _reset(demo: Demo, keep_qa_envs: bool = False) -> None:
    """Put back what a qualification or lifecycle test may change, keeping qa's package cache warm
    (and qa's environments, for put_qualification to check and keep if they are the kept ones)."""
    root, pristine = demo.root, demo.pristine
    for child in root.iterdir():
        if not (pristine / child.name).exists() and not child.name.startswith(".nfs"):
            _remove(child)
    for link in ("current", "qa", "envs"):
        path = root / link
        if path.is_symlink() or path.exists():
            _remove(path)
        os.symlink(os.readlink(pristine / link), path)
    qa = root / QA
    kept = {"pkgs", "envs"} if keep_qa_envs else {"pkgs"}
    for child in qa.iterdir():
        if child.name not in kept:
            _remove(child)
    for child in (pristine / QA).iterdir():
        if child.name not in kept:
            subprocess.run(["cp", "-a", str(child), str(qa)], check=True)
    for child in (root / ".condaqa").iterdir():
        if child.name not in _KEPT_STATE:
            _remove(child)
    _remove(root / "kernels")
    shutil.copytree(pristine / "kernels", root / "kernels")


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink()
        return
    try:
        shutil.rmtree(path)
    except PermissionError:  # tests take permissions away (0o555 envs): give them back, then remove
        for folder in [path, *path.rglob("*")]:
            if folder.is_dir() and not folder.is_symlink():
                folder.chmod(0o755)
        shutil.rmtree(path)


@pytest.fixture
def demo_site(_demo: Demo, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Site]:
    """The worker's demo site, reset; after the test, current, the channels and git must be as built."""
    _reset(_demo, keep_qa_envs="qualified_site" in request.fixturenames)
    yield load_site(write_project(tmp_path / "project", _demo.root), base=tmp_path / "project")
    now = _guarded(_demo.root)
    changed = sorted(p for p in set(now) | set(_demo.guarded) if now.get(p) != _demo.guarded.get(p))
    if changed:
        _restore(_demo)
        pytest.fail(f"the test changed the shared demo's {changed[0]}: use demo_copy for that", pytrace=False)


@dataclass(frozen=True)
class Qualified:
    """What a full green qualification of the demo left: qa's environments, the results, the reports,
    and what pytest printed, for the tests that check that run itself."""

    envs: Path
    results: Path
    reports: Path
    fingerprints: dict[str, str]  # of the kept environments, which tests get as hard links
    project: Path  # the folder it ran from
    run: pytest.RunResult
    guarded: dict[str, str]  # current, the channels and git just after it


def _fingerprints(envs: Path) -> dict[str, str]:
    """Each environment's fingerprint, with its stamp's state (which the fingerprint leaves out)."""
    return {p.name: f"{fingerprint(p, cache_file(envs.parent / '.digests', p))} {_stamp_digest(p / STAMP)}"
            for p in sorted(envs.iterdir())}


def _stamp_digest(stamp: Path) -> str:
    try:
        return hashlib.sha256(stamp.read_bytes()).hexdigest()
    except OSError:
        return "unstamped"


@pytest.fixture(scope="session", params=[pytest.param(None, id=GREEN)])
def green_qualification(_demo: Demo) -> Qualified:
    """The demo qualified once per worker as users run it (`pytest -n 2 -v` in a checkout), kept aside:
    tests that start from a passing qualification get it back in seconds instead of running it again."""
    _reset(_demo)
    project = _demo.root.parent / "qualified-project"
    write_project(project, _demo.root)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "-v"], cwd=project,
                          capture_output=True, text=True, timeout=1200)
    run = pytest.RunResult(done.returncode, done.stdout.splitlines(), done.stderr.splitlines(),
                           time.monotonic() - start)
    guarded = _guarded(_demo.root)
    keep = _demo.root.parent / "qualified"
    keep.mkdir()
    for source, name in ((_demo.root / QA / "envs", "envs"), (_demo.root / ".condaqa" / "results", "results"),
                         (project / "reports", "reports")):
        if source.exists():
            subprocess.run(["cp", "-a", str(source), str(keep / name)], check=True)
    envs = keep / "envs"
    return Qualified(envs, keep / "results", keep / "reports", _fingerprints(envs) if envs.exists() else {},
                     project, run, guarded)


def put_qualification(root: Path, qualified: Qualified) -> None:
    """qa's environments and the results of the full green qualification, back at the demo's `root`.

    The environments come back as hard links (condaqa replaces files, it never writes into them);
    a test that wrote into one anyway would change the kept copy, so that is checked first. Those
    the last test left are kept when they are still exactly the kept ones."""
    if qualified.run.ret != 0:
        pytest.fail("the demo's full qualification failed:\n" + "\n".join(qualified.run.outlines[-60:]), pytrace=False)
    envs = root / QA / "envs"
    if envs.is_symlink() or not envs.is_dir():
        if envs.is_symlink() or envs.exists():
            _remove(envs)
        envs.mkdir()
    now = _fingerprints(envs)
    changed = sorted(name for name in set(now) | set(qualified.fingerprints)
                     if now.get(name) != qualified.fingerprints.get(name))
    if changed and _fingerprints(qualified.envs) != qualified.fingerprints:
        pytest.fail("a test wrote into qa's environments in place, and so into the kept qualification", pytrace=False)
    copies = [(qualified.envs / name, envs / name, "-al") for name in changed]
    for kept, target, how in [*copies, (qualified.results, root / ".condaqa" / "results", "-a")]:
        if target.exists() or target.is_symlink():
            _remove(target)
        if kept.exists():
            subprocess.run(["cp", how, str(kept), str(target)], check=True)


@pytest.fixture
def qualified_site(demo_site: Site, green_qualification: Qualified) -> Site:
    """The demo site just after a full green qualification (its reports are not in any folder)."""
    put_qualification(demo_site.root, green_qualification)
    return demo_site


@pytest.fixture
def qualified_project(qualified_site: Site, green_qualification: Qualified, pytester: pytest.Pytester) -> Path:
    """pytester's folder as the project whose demo site has just passed a full qualification there."""
    write_project(pytester.path, qualified_site.root)
    subprocess.run(["cp", "-a", str(green_qualification.reports), str(pytester.path / "reports")], check=True)
    return pytester.path


@pytest.fixture
def demo_copy(_demo: Demo, tmp_path: Path) -> Iterator[Site]:
    """A demo site of the test's own to change anything in: current's environments, channels, git.

    The demo is as built when the test starts (demo_site's tests leave current, the channels and git
    as they were, and each demo_copy test restores it after itself); qa and the state are reset."""
    _reset(_demo)
    yield load_site(write_project(tmp_path / "project", _demo.root), base=tmp_path / "project")
    _restore(_demo)


def _restore(demo: Demo) -> None:
    """Put back each guarded part the test changed, as hard links to the pristine copy except the
    files tests edit in place (records, dist-info, top-level modules), which are copied for real."""
    now = _guarded(demo.root)
    for name in sorted(set(now) | set(demo.guarded)):
        if now.get(name) == demo.guarded.get(name):
            continue
        part = demo.root / name
        if part.exists() or part.is_symlink():
            _remove(part)
        if (demo.pristine / name).exists():
            subprocess.run(["cp", "-al", str(demo.pristine / name), str(part)], check=True)
            _own_copies(part)
    assert _guarded(demo.root) == demo.guarded


def _own_copies(part: Path) -> None:
    patterns = ("conda-meta", "lib/python*/site-packages/*.dist-info", "lib/python*/site-packages/*.py")
    editable = [found for prefix in ("", "envs/*/") for pattern in patterns for found in part.glob(prefix + pattern)]
    for folder in editable:
        for path in [folder] if folder.is_file() else folder.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.stat().st_nlink > 1:
                copy = path.with_name(path.name + ".condaqa-copy")
                shutil.copy2(path, copy)
                os.replace(copy, path)


@pytest.fixture
def demo_template(demo_site: Site) -> Site:
    """The demo site, for tests that only read it."""
    return demo_site

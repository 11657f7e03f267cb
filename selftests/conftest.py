"""Shared fixtures: a site of its own for each test, and the demo's green qualification made once.

Every test that needs a site gets a fresh copy of a small demo site of its family
(fixture_sites.py: `demo_site` is the whole demo, `pip_site`, `kernel_site`, `archive_site`
and `rescue_site` hold only what their tests need), and may change anything in it.

The full green qualification of the demo that many tests start from is made once per worker
that needs it. Its fixture has one parameter, GREEN, so every test that starts from it (directly or
through qualified_site) carries GREEN in its id, and the scheduler (condaqa's, the one the harness
uses) sends those tests to one worker together, so that one worker makes it. No list of tests to keep.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fixture_sites import REPO, fresh_copy, intact, keep_cache, remove, write_project
from helpers_sites import state_digest

from condaqa.scheduling import GroupScheduling
from condaqa.site import Site, load_site

# What real conda wrote and printed (its README.md says what each file is): beside the repository, or a copy.
REALCONDA = Path(os.environ.get("CONDAQA_REALCONDA") or REPO.parent / "shared" / "realconda")
QA = "v4.8"


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


@pytest.fixture(scope="session")
def _fixture_sites(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The worker's folder of fixture sites (fixture_sites.py)."""
    return tmp_path_factory.mktemp("fixture-sites")


def _family(family: str) -> Any:
    """The fixture `family`: a fresh copy of that family's site (fixture_sites.FAMILIES), the test's own."""

    @pytest.fixture(name=family)
    def family_site(_fixture_sites: Path, tmp_path: Path) -> Iterator[Site]:
        root = fresh_copy(_fixture_sites, family)
        yield load_site(write_project(tmp_path / "project", root), base=tmp_path / "project")
        keep_cache(_fixture_sites, family)
        if not intact(_fixture_sites, family):
            pytest.fail(f"the test wrote in place into a file of current's installation, which its {family} links to "
                        "the pristine site: replace the file instead (write another, then rename it over)",
                        pytrace=False)

    return family_site


demo_site = _family("demo_site")
pip_site = _family("pip_site")
kernel_site = _family("kernel_site")
archive_site = _family("archive_site")
rescue_site = _family("rescue_site")

GUARDED = ("v4.3", "main", "mpc", "wheelhouse", "git")  # current's installation, the channels, the git repository


def _parts(root: Path) -> list[Path]:
    """What a qualification must never change, in pieces that name what changed:
    each of current's environments, the rest of its installation, each channel, the git folder."""
    envs = root / "v4.3" / "envs"
    return [*(envs.iterdir() if envs.is_dir() else ()), *(root / name for name in GUARDED)]


def _guarded(root: Path) -> dict[str, str]:
    """A digest of each part (v4.3's without its envs, which are parts of their own)."""
    return {str(part.relative_to(root)): state_digest(part, skip="envs" if part.name == "v4.3" else "")
            for part in _parts(root)}


@dataclass(frozen=True)
class Qualified:
    """What a full green qualification of the demo left: qa's environments, the results, the reports,
    and what pytest printed, for the tests that check that run itself."""

    envs: Path
    results: Path
    key: Path  # the site's key that signs the results
    reports: Path
    envs_state: str  # state_digest of envs, which tests get as hard links
    project: Path  # the folder it ran from
    run: pytest.RunResult
    changed: list[str]  # what it changed of current, the channels and git: nothing


@pytest.fixture(scope="session", params=[pytest.param(None, id=GREEN)])
def green_qualification(_fixture_sites: Path) -> Qualified:
    """The demo qualified once per worker as users run it (`pytest -n 2 -v` in a checkout), kept aside:
    tests that start from a passing qualification get it back in seconds instead of running it again."""
    root = fresh_copy(_fixture_sites, "demo_site")
    project = _fixture_sites / "qualified-project"
    write_project(project, root)
    before = _guarded(root)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "-v"], cwd=project,
                          capture_output=True, text=True, timeout=1200)
    run = pytest.RunResult(done.returncode, done.stdout.splitlines(), done.stderr.splitlines(),
                           time.monotonic() - start)
    after = _guarded(root)
    keep = _fixture_sites / "qualified"
    keep.mkdir()
    for source, name in ((root / QA / "envs", "envs"), (root / ".condaqa" / "results", "results"),
                         (root / ".condaqa" / "results.key", "results.key"), (project / "reports", "reports")):
        if source.exists():
            subprocess.run(["cp", "-a", str(source), str(keep / name)], check=True)
    keep_cache(_fixture_sites, "demo_site")
    return Qualified(keep / "envs", keep / "results", keep / "results.key", keep / "reports",
                     state_digest(keep / "envs"), project, run, sorted(part for part in before.keys() | after.keys()
                                          if before.get(part) != after.get(part)))


def put_qualification(root: Path, qualified: Qualified) -> None:
    """qa's environments and the results of the full green qualification, into the demo site at `root`: the
    environments as hard links (condaqa replaces files, it never writes into them; checked after each test)."""
    if qualified.run.ret != 0:
        pytest.fail("the demo's full qualification failed:\n" + "\n".join(qualified.run.outlines[-60:]), pytrace=False)
    for kept, target, how in ((qualified.envs, root / QA / "envs", "-al"),
                              (qualified.results, root / ".condaqa" / "results", "-a"),
                              (qualified.key, root / ".condaqa" / "results.key", "-a")):
        remove(target)
        if kept.exists():
            subprocess.run(["cp", how, str(kept), str(target)], check=True)


@pytest.fixture
def qualified_site(demo_site: Site, green_qualification: Qualified) -> Iterator[Site]:
    """The demo site just after a full green qualification (its reports are not in any folder)."""
    put_qualification(demo_site.root, green_qualification)
    yield demo_site
    if state_digest(green_qualification.envs) != green_qualification.envs_state:
        pytest.fail("the test wrote in place into a file of qa's environments, and so into the kept qualification",
                    pytrace=False)


@pytest.fixture
def qualified_project(qualified_site: Site, green_qualification: Qualified, pytester: pytest.Pytester) -> Path:
    """pytester's folder as the project whose demo site has just passed a full qualification there."""
    write_project(pytester.path, qualified_site.root)
    subprocess.run(["cp", "-a", str(green_qualification.reports), str(pytester.path / "reports")], check=True)
    return pytester.path

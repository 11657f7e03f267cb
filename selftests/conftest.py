"""Shared fixtures: one demo site per worker, reset between tests, and project folders pointing at it.

Building the demo takes tens of seconds and it holds some 18,000 files, so each xdist worker
builds it once. Between tests, what a qualification may change is reset: the qa
installation (its package cache kept warm), condaqa's state, kernel specs, links, and
anything new at the root. What a qualification must never change, the installation
`current` points to, the channels and the git repository, is checked after each test that
uses `demo_site`: a test that changes them must ask for `demo_copy` instead, a private copy
made of hard links with the files tests edit in place (records, dist-info, kernel specs)
copied for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from condaqa.build.stamp import fingerprint
from condaqa.demo.site import ensure_demo
from condaqa.site import Site, load_site

REPO = Path(__file__).resolve().parent.parent
QA = "v4.8"
_KEPT_STATE = {"demo-complete", "demo-logs", "demo.lock"}


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


@pytest.fixture(autouse=True)
def _run_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs from its own folder, so reports/ and sanitized/ land there, never in the repository."""
    monkeypatch.chdir(tmp_path)


@dataclass(frozen=True)
class Demo:
    root: Path
    pristine: Path  # the demo as built, never used directly
    guarded: dict[str, str]  # fingerprints of what no test may change through demo_site


def _guarded(root: Path) -> dict[str, str]:
    """Fingerprints of current's environments, the channels and the git repositories."""
    found = {str(p): fingerprint(p) for p in sorted((root / "v4.3" / "envs").iterdir())}
    for folder in ("main", "mpc", "wheelhouse", "git"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                st = path.stat()
                found[str(path)] = f"{st.st_size}:{st.st_mtime_ns}"
    return found


@pytest.fixture(scope="session")
def _demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    base = tmp_path_factory.mktemp("demo")
    site = load_site(write_project(base / "project", base / "site"), base=base / "project")
    ensure_demo(site, progress=lambda line: None)
    subprocess.run(["cp", "-a", str(base / "site"), str(base / "pristine")], check=True)
    return Demo(base / "site", base / "pristine", _guarded(base / "site"))


def _reset(demo: Demo) -> None:
    """Put back what a qualification or lifecycle test may change, keeping qa's package cache warm."""
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
    for child in qa.iterdir():
        if child.name != "pkgs":
            _remove(child)
    for child in (pristine / QA).iterdir():
        if child.name != "pkgs":
            subprocess.run(["cp", "-a", str(child), str(qa)], check=True)
    for child in (root / ".condaqa").iterdir():
        if child.name not in _KEPT_STATE:
            _remove(child)
    _remove(root / "kernels")
    shutil.copytree(pristine / "kernels", root / "kernels")


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        for folder in [path, *path.rglob("*")]:  # tests take permissions away (0o555 envs): give them back
            if folder.is_dir() and not folder.is_symlink():
                folder.chmod(0o755)
        shutil.rmtree(path)


@pytest.fixture
def demo_site(_demo: Demo, tmp_path: Path) -> Iterator[Site]:
    """The worker's demo site, reset; after the test, current, the channels and git must be as built."""
    _reset(_demo)
    yield load_site(write_project(tmp_path / "project", _demo.root), base=tmp_path / "project")
    changed = [p for p, f in _guarded(_demo.root).items() if _demo.guarded.get(p) != f]
    if changed:
        _restore(_demo)
        pytest.fail(f"the test changed the shared demo's {changed[0]}: use demo_copy for that", pytrace=False)


@dataclass(frozen=True)
class Qualified:
    """What a full green qualification of the demo left: qa's environments, the results, the reports."""

    envs: Path
    results: Path
    reports: Path


@pytest.fixture(scope="session")
def _qualified(_demo: Demo) -> Qualified:
    """The demo qualified once per worker, kept aside: tests that start from a passing qualification
    get it back in seconds instead of running it again."""
    _reset(_demo)
    project = _demo.root.parent / "qualified-project"
    write_project(project, _demo.root)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q"], cwd=project,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    keep = _demo.root.parent / "qualified"
    keep.mkdir()
    for source, name in ((_demo.root / QA / "envs", "envs"), (_demo.root / ".condaqa" / "results", "results"),
                         (project / "reports", "reports")):
        subprocess.run(["cp", "-a", str(source), str(keep / name)], check=True)
    return Qualified(keep / "envs", keep / "results", keep / "reports")


@pytest.fixture
def qualified_project(demo_site: Site, _qualified: Qualified, pytester: pytest.Pytester) -> Path:
    """pytester's folder as a project whose demo site has just passed a full qualification."""
    root = demo_site.root
    _remove(root / QA / "envs")
    subprocess.run(["cp", "-a", str(_qualified.envs), str(root / QA / "envs")], check=True)
    subprocess.run(["cp", "-a", str(_qualified.results), str(root / ".condaqa" / "results")], check=True)
    write_project(pytester.path, root)
    subprocess.run(["cp", "-a", str(_qualified.reports), str(pytester.path / "reports")], check=True)
    return pytester.path


@pytest.fixture
def demo_copy(_demo: Demo, tmp_path: Path) -> Iterator[Site]:
    """A demo site of the test's own to change anything in: current's environments, channels, git."""
    _restore(_demo)
    yield load_site(write_project(tmp_path / "project", _demo.root), base=tmp_path / "project")
    _restore(_demo)


def _restore(demo: Demo) -> None:
    """The demo again as built, made of hard links, except the files tests edit in place."""
    _remove(demo.root)
    subprocess.run(["cp", "-al", str(demo.pristine), str(demo.root)], check=True)
    site_packages = "v*/envs/*/lib/python*/site-packages"
    editable = [*demo.root.glob("v*/envs/*/conda-meta"), *demo.root.glob(f"{site_packages}/*.dist-info"),
                *demo.root.glob(f"{site_packages}/*.py"), demo.root / "kernels", demo.root / ".condaqa"]
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

"""Shared fixtures: the demo site built once per worker and copied back in place for each test,
and project folders (manifests, env_checks, tests, pyproject) that point at it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from condaqa.demo.site import ensure_demo
from condaqa.site import Site, load_site

REPO = Path(__file__).resolve().parent.parent


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


@pytest.fixture(scope="session")
def demo_pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo site, built once per worker at <base>/site and kept as <base>/pristine.

    Tests get it back at the very same path (demo_site): environments name their prefix in
    scripts and records, and kernel specs name the root, as on a real site.
    """
    base = tmp_path_factory.mktemp("demo")
    site = load_site(write_project(base / "project", base / "site"), base=base / "project")
    ensure_demo(site, progress=lambda line: None)
    shutil.copytree(base / "site", base / "pristine", symlinks=True)
    return base / "pristine"


@pytest.fixture
def demo_site(demo_pristine: Path, tmp_path: Path) -> Site:
    """A demo site of this test's own: the pristine copy put back at the path it was built at."""
    root = demo_pristine.parent / "site"
    shutil.rmtree(root)
    shutil.copytree(demo_pristine, root, symlinks=True)
    return load_site(write_project(tmp_path / "project", root), base=tmp_path / "project")


@pytest.fixture
def demo_template(demo_site: Site) -> Site:
    """The demo site, for tests that only read it."""
    return demo_site

"""Shared fixtures: a demo site built once per session in a temporary folder, and project copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from condaqa.demo.site import ensure_demo
from condaqa.site import Site, load_site

REPO = Path(__file__).resolve().parent.parent


def write_project(folder: Path, root: Path, **site_overrides: str) -> Path:
    """A copy of the repository's manifests, env_checks and tests whose site.toml points at `root`."""
    for name in ("manifests", "env_checks", "tests"):
        shutil.copytree(REPO / name, folder / name, dirs_exist_ok=True)
    shutil.copy(REPO / "conftest.py", folder / "conftest.py")
    shutil.copy(REPO / "pyproject.toml", folder / "pyproject.toml")
    text = (REPO / "manifests" / "site.toml").read_text(encoding="utf-8")
    text = text.replace('root = "../.condaqa-demo"', f'root = "{root}"')
    for key, value in site_overrides.items():
        text += f"{key} = {value}\n"
    site_file = folder / "manifests" / "site.toml"
    site_file.write_text(text, encoding="utf-8")
    return site_file


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """The demo site, built once per session; tests that change it copy it first (demo_site)."""
    project = tmp_path_factory.mktemp("demo-template")
    site = load_site(write_project(project, project / "site"))
    ensure_demo(site, progress=lambda line: None)
    return site


@pytest.fixture
def demo_site(tmp_path: Path) -> Site:
    """A demo site of this test's own (about 3 s), for tests that change it.

    A copy of demo_template would not do: environments name their prefix in scripts and
    records, and kernel specs name the root, as on a real site.
    """
    site = load_site(write_project(tmp_path / "project", tmp_path / "site"))
    ensure_demo(site, progress=lambda line: None)
    return site

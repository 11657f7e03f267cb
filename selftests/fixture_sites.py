"""The selftests' sites: small demo sites, one per family of tests, and a fresh copy of one for each test.

A test may change anything in its site: current's environments, the channels, the wheelhouse,
git, the kernel specs, qa and condaqa's state. So no test gets a site another test used. Each
family's site is the demo builder holding only the environments that family needs (in
seconds; `demo_site` is the whole demo), built once per worker and kept as built (`pristine`).
Each test gets a copy of it made at the very path the site was built at, where the absolute
paths inside it (scripts, kernel specs) point. Current's installation, nearly all of a site's
files, is copied as hard links, but for the files tests edit in place (records, pip's metadata,
top-level modules); everything else is copied for real. A test that wrote into a linked file
anyway would have changed the pristine site too: that is checked after each test (intact).
Only qa's package cache goes from one test of a family to the next, as a site keeps it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from helpers_sites import state_digest

from condaqa.demo import catalog
from condaqa.demo.site import ensure_demo
from condaqa.site import load_site

REPO = Path(__file__).resolve().parent.parent
# in current's installation, which a test's copy links to: what tests edit in place, copied for real
EDITED_IN_PLACE = ("conda-meta", "envs/*/conda-meta", "envs/*/lib/python*/site-packages/*.dist-info",
                   "envs/*/lib/python*/site-packages/*.py")

FAMILIES: dict[str, tuple[str, ...]] = {
    "demo_site": tuple(env.name for env in catalog.ENVIRONMENTS),  # the whole demo
    "pip_site": ("nhis_reformat", "survey_weights"),  # pip sections, options and sources
    "kernel_site": ("hlink", "super_important_jupyter_kernel", "survey_weights"),  # kernels and their specs
    "archive_site": ("old_not_used", "scratch_jdoe", "listed_twice", "git_installed", "survey_weights",
                     "legacy_noarch"),  # archives, lost channels and git, export-only environments
    "rescue_site": ("missing_pin", "linkage_2019"),  # withdrawn pins and production's package cache
}


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


def site_root(base: Path, family: str) -> Path:
    """Where each test's copy of `family`'s site is, under the worker's folder `base`."""
    return base / family / "site"


def pristine(base: Path, family: str) -> Path:
    """`family`'s site as built, built now if it is not yet: for reading, never for a test to change."""
    kept = base / family / "pristine"
    if not kept.exists():
        root = site_root(base, family)
        remove(root)  # a copy of the pristine site that a test spoiled (intact)
        project = base / family / "project"
        ensure_demo(load_site(write_project(project, root), base=project), progress=lambda line: None,
                    real_conda=False, only=FAMILIES[family])
        subprocess.run(["cp", "-a", str(root), str(kept)], check=True)
        (base / family / "pristine.state").write_text(state_digest(kept), encoding="utf-8")
    return kept


def fresh_copy(base: Path, family: str) -> Path:
    """The root of a fresh copy of `family`'s site, with the package cache the family's last test left in qa."""
    kept, root = pristine(base, family), site_root(base, family)
    remove(root)
    root.mkdir()
    for child in kept.iterdir():
        linked = child.name == catalog.OLD
        subprocess.run(["cp", "-al" if linked else "-a", str(child), str(root / child.name)], check=True)
    _own_copies(root / catalog.OLD)
    cache = base / family / "pkgs"
    if cache.is_dir():
        remove(root / catalog.NEW / "pkgs")
        os.rename(cache, root / catalog.NEW / "pkgs")
    return root


def _own_copies(installation: Path) -> None:
    """Make the files tests edit in place real copies of their own, no longer links to the pristine site's."""
    for pattern in EDITED_IN_PLACE:
        for found in installation.glob(pattern):
            for path in [found] if found.is_file() else found.rglob("*"):
                if path.is_file() and not path.is_symlink():
                    copy = path.with_name(path.name + ".fixture-copy")
                    shutil.copy2(path, copy)
                    os.replace(copy, path)


def intact(base: Path, family: str) -> bool:
    """Whether `family`'s pristine site is still as built; if not, it is dropped, to be built again."""
    kept = base / family / "pristine"
    if state_digest(kept) == (base / family / "pristine.state").read_text(encoding="utf-8"):
        return True
    remove(kept)
    return False


def keep_cache(base: Path, family: str) -> None:
    """Keep qa's package cache of the test that ends for the family's next test (fresh_copy)."""
    pkgs = site_root(base, family) / catalog.NEW / "pkgs"
    if pkgs.is_dir() and not pkgs.is_symlink():
        remove(base / family / "pkgs")
        os.rename(pkgs, base / family / "pkgs")


def remove(path: Path) -> None:
    """Remove a file, link or tree if it is there, giving back the permissions a test took away (0o555 folders)."""
    if not path.is_dir() or path.is_symlink():
        path.unlink(missing_ok=True)
        return
    try:
        shutil.rmtree(path)
    except PermissionError:
        for folder in [path, *path.rglob("*")]:
            if folder.is_dir() and not folder.is_symlink():
                folder.chmod(0o755)
        shutil.rmtree(path)

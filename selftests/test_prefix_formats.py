"""Every distribution layout conda's prefix scan sees, as setuptools and easy_install leave it.

One prefix, made for real with this interpreter's setuptools: `bdist_egg` + `easy_install` (a zipped
egg and an unzipped egg folder, both listed in easy-install.pth), `setup.py develop` (an .egg-link,
an easy-install.pth line and the .egg-info in the source folder; once more for a project whose
source folder is deleted afterwards), `setup.py install --single-version-externally-managed` (an
.egg-info folder, as pip's legacy installs did) and a distutils install (an .egg-info file).
Each must reach the export, the sanitation rules, the version diff and key-module discovery.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from condaqa.errors import PrefixError
from condaqa.plan.findings import Finding
from condaqa.plan.model import BuildPlan
from condaqa.plan.rules import Context, apply_rules, local_sources
from condaqa.prefix import PrefixContents, read_prefix, top_level_modules
from condaqa.site import load_site
from condaqa.spec.export import explicit_text, site_channels, spec_from_prefix
from condaqa.vocab import Rule, Severity

SHORT = f"{sys.version_info.major}.{sys.version_info.minor}"
SP = Path("lib") / f"python{SHORT}" / "site-packages"
EGG = f"py{SHORT}.egg"
SETUP = "from setuptools import setup\nsetup(name={name!r}, version={version!r}, packages=[{name!r}], zip_safe={zip})\n"
DISTUTILS = "from distutils.core import setup\nsetup(name={name!r}, version={version!r}, py_modules=[{name!r}])\n"
INSTALLED = {"devpkg": "0.1", "distfile": "0.3", "eggfolder": "0.5", "oldegg": "1.0", "zipped": "2.0"}


def _project(folder: Path, name: str, version: str, template: str = SETUP, zip_safe: bool = False) -> Path:
    project = folder / name
    if template is DISTUTILS:
        project.mkdir(parents=True)
        (project / f"{name}.py").write_text(f"VERSION = {version!r}\n")
    else:
        (project / name).mkdir(parents=True)
        (project / name / "__init__.py").write_text(f"VERSION = {version!r}\n")
    (project / "setup.py").write_text(template.format(name=name, version=version, zip=zip_safe))
    return project


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The prefix (conda-meta with a python record, and site-packages) after every kind of install."""
    base = tmp_path_factory.mktemp("formats")
    prefix, src = base / "prefix", base / "src"
    site_packages = prefix / SP
    site_packages.mkdir(parents=True)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))},
           "PYTHONPATH": str(site_packages), "PYTHONDONTWRITEBYTECODE": "1",
           "SETUPTOOLS_USE_DISTUTILS": "stdlib" if sys.version_info < (3, 12) else "local"}  # 3.12 has none

    def setup_py(project: Path, *args: str) -> None:
        done = subprocess.run([sys.executable, "-W", "ignore", "setup.py", "-q", *args], cwd=project, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr  # the dev extra pins a setuptools that has them

    for name, version, zip_safe in (("zipped", "2.0", True), ("oldegg", "1.0", False)):
        project = _project(src, name, version, zip_safe=zip_safe)
        setup_py(project, "bdist_egg")
        setup_py(project, "easy_install", "--install-dir", str(site_packages), "--no-deps",
                 str(project / "dist" / f"{name}-{version}-{EGG}"))
    setup_py(_project(src, "devpkg", "0.1"), "develop", "--install-dir", str(site_packages))
    gone = _project(src, "gonepkg", "0.7")
    setup_py(gone, "develop", "--install-dir", str(site_packages))
    shutil.rmtree(gone)  # its working copy was the only copy
    setup_py(_project(src, "eggfolder", "0.5"), "install", "--single-version-externally-managed", "--root", "/",
             "--record", str(base / "record.txt"), "--install-lib", str(site_packages))
    if sys.version_info < (3, 12):
        setup_py(_project(src, "distfile", "0.3", DISTUTILS), "install", "--install-lib", str(site_packages))
    else:  # no distutils to run since 3.12: what its install_egg_info left, one PKG-INFO file, written as it wrote it
        (site_packages / "distfile.py").write_text("VERSION = '0.3'\n")
        (site_packages / f"distfile-0.3-py{SHORT}.egg-info").write_text(
            "Metadata-Version: 1.0\nName: distfile\nVersion: 0.3\nSummary: UNKNOWN\n")
    (prefix / "conda-meta").mkdir()
    (prefix / "conda-meta" / "history").touch()
    (prefix / "conda-meta" / "python-3.11.7-0.json").write_text(
        '{"name": "python", "version": "3.11.7", "build": "0", "channel": "file:///chan/linux-64", '
        '"subdir": "linux-64", "files": ["bin/python"]}')
    return prefix


@pytest.fixture
def prefix(layouts: Path, tmp_path: Path) -> Path:
    """A copy of the prefix this test may change (the develop folders stay where they are)."""
    shutil.copytree(layouts, tmp_path / "prefix", symlinks=True)
    return tmp_path / "prefix"


def test_the_files_are_what_setuptools_leaves(layouts: Path) -> None:
    site_packages = layouts / SP
    assert sorted(os.listdir(site_packages)) == sorted([
        "devpkg.egg-link", "gonepkg.egg-link", "easy-install.pth", f"eggfolder-0.5-py{SHORT}.egg-info", "eggfolder",
        f"distfile-0.3-py{SHORT}.egg-info", "distfile.py", f"oldegg-1.0-{EGG}", f"zipped-2.0-{EGG}"])
    assert (site_packages / f"oldegg-1.0-{EGG}" / "EGG-INFO" / "PKG-INFO").is_file()
    assert "EGG-INFO/PKG-INFO" in zipfile.ZipFile(site_packages / f"zipped-2.0-{EGG}").namelist()
    assert (site_packages / f"distfile-0.3-py{SHORT}.egg-info").is_file()  # distutils: one PKG-INFO file
    source = layouts.parent / "src" / "devpkg"
    assert (site_packages / "devpkg.egg-link").read_text().splitlines() == [str(source), "."]
    pth = (site_packages / "easy-install.pth").read_text().splitlines()
    assert str(source) in pth and f"./zipped-2.0-{EGG}" in pth and f"./oldegg-1.0-{EGG}" in pth


def test_each_install_is_a_pip_distribution(layouts: Path) -> None:
    contents = read_prefix(layouts)
    found = {d.name: d.version for d in contents.pip}
    assert found == {**INSTALLED, "gonepkg": ""}  # a deleted working copy leaves no version to read
    editable = {d.name: d.direct_url for d in contents.pip if d.direct_url}
    source = layouts.parent / "src"
    assert editable == {"devpkg": {"url": (source / "devpkg").as_uri(), "dir_info": {"editable": True}},
                        "gonepkg": {"url": (source / "gonepkg").as_uri(), "dir_info": {"editable": True}}}
    versions = contents.versions()
    assert {k: v for k, v in versions.items() if k.startswith("pip:")} == {
        f"pip:{name}": version for name, version in {**INSTALLED, "gonepkg": ""}.items()}


def test_export_lists_them_for_pip(layouts: Path) -> None:
    spec = spec_from_prefix("eggs", read_prefix(layouts), {})
    assert spec.dependencies == ["python=3.11.7"] and spec.channels == ["file:///chan"]
    assert spec.pip == ["devpkg==0.1", "distfile==0.3", "eggfolder==0.5", "gonepkg", "oldegg==1.0", "zipped==2.0"]


def _sanitized(contents: PrefixContents, trusted: bool = False) -> tuple[BuildPlan, list[Finding]]:
    """The export's plan after the rules, with what planning gives them about current's prefix."""
    spec = spec_from_prefix("eggs", contents, {})
    plan = BuildPlan("eggs", tuple(spec.dependencies), tuple(spec.pip))
    present = frozenset(p for p in local_sources(plan, contents) if p.exists())
    return apply_rules(plan, Context("eggs", installed=contents, present=present, local_sources=trusted))


def test_develop_eggs_are_named_in_error_findings(layouts: Path) -> None:
    plan, findings = _sanitized(read_prefix(layouts))
    assert plan.pip == ("distfile==0.3", "eggfolder==0.5", "oldegg==1.0", "zipped==2.0") and not plan.post
    stopped = {f.package: f for f in findings if f.severity is Severity.ERROR}
    source = layouts.parent / "src"
    assert set(stopped) == {"devpkg", "gonepkg"}
    assert stopped["gonepkg"].rule is Rule.DIRECT_URL
    assert f"an editable install from {source / 'gonepkg'}, which no longer exists" in stopped["gonepkg"].reason
    assert stopped["devpkg"].rule is Rule.LOCAL_SOURCE and str(source / "devpkg") in stopped["devpkg"].reason

    plan, findings = _sanitized(read_prefix(layouts), trusted=True)  # the owner trusts the folder
    assert [s.requirement for s in plan.post] == [f"-e {source / 'devpkg'}"]
    assert [f.package for f in findings if f.severity is Severity.ERROR] == ["gonepkg"]


def test_key_modules_are_what_the_interpreter_imports(layouts: Path) -> None:
    modules = top_level_modules(read_prefix(layouts))
    assert modules == sorted(INSTALLED)  # no `setup` of a source folder, nothing of the deleted one
    probe = "import site, sys; site.addsitedir(sys.argv[1]); " + "; ".join(f"import {m}" for m in modules)
    done = subprocess.run([sys.executable, "-I", "-c", probe, str(layouts / SP)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_eggs_a_conda_record_owns_are_conda_s(prefix: Path) -> None:
    files = [f"{SP}/oldegg-1.0-{EGG}/EGG-INFO/PKG-INFO", f"{SP}/oldegg-1.0-{EGG}/oldegg/__init__.py",
             f"{SP}/zipped-2.0-{EGG}"]
    record = ('{"name": "eggs", "version": "1", "build": "0", "channel": "file:///chan/noarch", "subdir": "noarch", '
              f'"files": {files!r}}}').replace("'", '"')
    (prefix / "conda-meta" / "eggs-1-0.json").write_text(record)
    contents = read_prefix(prefix)
    assert {d.name for d in contents.pip} == {"devpkg", "distfile", "eggfolder", "gonepkg"}
    assert {"oldegg", "zipped"} <= set(top_level_modules(contents))  # still importable, from conda's package


def test_easy_install_pth_of_old_setuptools(prefix: Path, layouts: Path) -> None:
    """setuptools before 49 wrapped the entries in `import sys; sys.__plen` lines that site.py runs."""
    pth = prefix / SP / "easy-install.pth"
    lines = pth.read_text().splitlines()
    pth.write_text("import sys; sys.__plen = len(sys.path)\n" + "\n".join(lines) + "\n"
                   "import sys; new = sys.path[sys.__plen:]; del sys.path[sys.__plen:]; p = getattr(sys, "
                   "'__egginsert', 0); sys.path[p:p] = new; sys.__egginsert = p + len(new)\n")
    contents, before = read_prefix(prefix), read_prefix(layouts)
    assert [(d.name, d.version) for d in contents.pip] == [(d.name, d.version) for d in before.pip]
    assert top_level_modules(contents) == top_level_modules(before)


def test_an_egg_only_easy_install_pth_lists(prefix: Path) -> None:
    """An egg outside site-packages is on sys.path through easy-install.pth alone, with no anchor beside it."""
    moved = prefix / "eggs" / f"zipped-2.0-{EGG}"
    moved.parent.mkdir()
    (prefix / SP / moved.name).rename(moved)
    pth = prefix / SP / "easy-install.pth"
    pth.write_text(pth.read_text().replace(f"./{moved.name}", str(moved)))
    contents = read_prefix(prefix)
    assert ("zipped", "2.0", moved) in {(d.name, d.version, d.anchor) for d in contents.pip}
    assert "zipped" in top_level_modules(contents)


def test_a_broken_zipped_egg_is_named(prefix: Path) -> None:
    egg = prefix / SP / f"zipped-2.0-{EGG}"
    egg.write_bytes(b"PK\x03\x04 not a zip file at all")
    with pytest.raises(PrefixError, match=rf"{egg}: not a readable zipped egg"):
        read_prefix(prefix)


def test_an_empty_egg_link_is_named(prefix: Path) -> None:
    link = prefix / SP / "devpkg.egg-link"
    link.write_text("")
    with pytest.raises(PrefixError, match=rf"{link}: an empty .egg-link names no source folder"):
        read_prefix(prefix)


def test_export_names_channels_as_any_conda_reads_them(tmp_path: Path) -> None:
    """Local folders by their file:// URL, what conda resolves by itself (channel_alias, defaults) by name."""
    prefix = tmp_path / "site" / "v4.3" / "envs" / "mixed"
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "conda-meta" / "history").touch()
    mpc = (tmp_path / "site" / "mpc").as_uri()
    for name, channel, subdir in (("alpha", mpc, "noarch"),
                                  ("numpy", "https://conda.anaconda.org/conda-forge", "linux-64"),
                                  ("samtools", "https://conda.anaconda.org/bioconda", "linux-64"),
                                  ("zlib", "https://repo.anaconda.com/pkgs/main", "linux-64"),
                                  ("nightly", "https://conda.anaconda.org/pytorch/label/nightly", "noarch"),
                                  ("internal", "https://conda.example.org/internal", "noarch")):
        record = {"name": name, "version": "1.0", "build": "0", "channel": f"{channel}/{subdir}", "subdir": subdir,
                  "url": f"{channel}/{subdir}/{name}-1.0-0.tar.bz2"}
        (prefix / "conda-meta" / f"{name}-1.0-0.json").write_text(json.dumps(record))
    (prefix / "conda-meta" / "local-1.0-0.json").write_text(
        '{"name": "local", "version": "1.0", "build": "0", "channel": "<unknown>", "fn": "local-1.0-0.tar.bz2"}')
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "site.toml").write_text('[site]\nroot = "../site"\n'
                                         'channels = ["mpc", "https://conda.anaconda.org/conda-forge/", "/opt/chan"]\n')
    site = load_site(manifests / "site.toml")
    contents = read_prefix(prefix)
    spec = spec_from_prefix("mixed", contents, site_channels(site))
    # the site's channels in priority order, the others in the order of the records (by name), then
    # the site's unused ones
    assert spec.channels == [mpc, "conda-forge", "https://conda.example.org/internal", "pytorch/label/nightly",
                             "bioconda", "defaults", "file:///opt/chan"]
    text = explicit_text(contents)
    assert text.splitlines()[2:4] == ["# platform: linux-64", "@EXPLICIT"]
    assert "# no URL for: local-1.0-0\n" in text and "https://conda.anaconda.org/bioconda/linux-64/samtools" in text

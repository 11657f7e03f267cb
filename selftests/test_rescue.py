"""Rescue: the exact package a pin names, from production's cache file, cache folder or prefix, into ROOT/rescue."""

from __future__ import annotations

import json
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest
from helpers_sites import tree_state

from condaqa.demo.packages import Package, write_package
from condaqa.engines.rattler import index_channel, solved_urls
from condaqa.rescue.channel import rescue_packages
from condaqa.rescue.repack import Member
from condaqa.rescue.sources import CACHE_FILE, CACHE_FOLDER, PREFIX
from condaqa.site import Site
from condaqa.vocab import Rule, Severity

ENV = "missing_pin"  # holds ipumsdata 0.4.0, which the demo withdrew from mpc


@pytest.fixture
def site(rescue_site: Site) -> Site:
    return rescue_site


def _pkgs(site: Site) -> Path:
    return site.current_installation().path / "pkgs"


def _record(site: Site, dist: str) -> Path:
    return site.current_installation().env_prefix(ENV) / "conda-meta" / f"{dist}.json"


def _solved(site: Site, specs: list[str]) -> dict[str, str]:
    return solved_urls(site, specs)


def test_a_cache_folder_is_repacked_and_solves_after_the_site_channels(site: Site) -> None:
    assert "ipumsdata" not in str(_solved(site, ["tabular==1.1.0"]))
    [found] = rescue_packages(site, ENV, ["ipumsdata"])
    assert found.rule is Rule.RESCUED and found.severity is Severity.INFO, found
    assert CACHE_FOLDER in found.reason and "ipumsdata-0.4.0-pyh_0" in found.action
    solved = _solved(site, ["ipumsdata==0.4.0", "tabular"])
    assert solved["ipumsdata"].startswith(site.rescue_dir.as_uri())
    assert "/main/" in solved["tabular"]
    with tarfile.open(site.rescue_dir / "noarch" / "ipumsdata-0.4.0-pyh_0.tar.bz2") as tar:
        names = tar.getnames()
    assert "site-packages/ipumsdata/__init__.py" in names and "info/paths.json" in names


def test_a_cache_file_is_copied_when_its_digest_matches_and_refused_when_not(site: Site) -> None:
    dist = "tabular-1.1.0-pyh_0"
    original = site.root / "main" / "noarch" / f"{dist}.tar.bz2"
    shutil.copyfile(original, _pkgs(site) / f"{dist}.tar.bz2")
    [found] = rescue_packages(site, ENV, ["tabular"])
    assert CACHE_FILE in found.reason and "refused" not in found.reason, found
    assert (site.rescue_dir / "noarch" / f"{dist}.tar.bz2").read_bytes() == original.read_bytes()

    shutil.rmtree(site.rescue_dir)
    (_pkgs(site) / f"{dist}.tar.bz2").write_bytes(original.read_bytes() + b"damaged")
    [found] = rescue_packages(site, ENV, ["tabular"])
    assert "sha256" in found.reason and "refused" in found.reason, found
    assert CACHE_FOLDER in found.reason  # the next source


def test_the_prefix_is_repacked_from_paths_data_and_installs_the_same_files(site: Site, tmp_path: Path) -> None:
    shutil.rmtree(_pkgs(site) / ".rattler" / "ipumsdata-0.4.0-pyh_0")
    production = site.current_installation().path
    before = tree_state(production, folder_times=True)
    [found] = rescue_packages(site, ENV, ["ipumsdata"])
    assert PREFIX in found.reason and found.severity is Severity.INFO, found
    assert tree_state(production, folder_times=True) == before  # read, never written: not even a folder's time
    target = tmp_path / "unpacked"
    with tarfile.open(site.rescue_dir / "noarch" / "ipumsdata-0.4.0-pyh_0.tar.bz2") as tar:
        tar.extractall(target, filter="data")
    installed = site.current_installation().env_prefix(ENV) / "lib"
    source = next(installed.glob("python*/site-packages/ipumsdata/__init__.py"))
    assert (target / "site-packages/ipumsdata/__init__.py").read_bytes() == source.read_bytes()
    index = json.loads((target / "info" / "index.json").read_text())
    assert (index["name"], index["version"], index["noarch"]) == ("ipumsdata", "0.4.0", "python")


def test_a_record_without_paths_data_is_reported_and_nothing_is_made(site: Site) -> None:
    shutil.rmtree(_pkgs(site) / ".rattler" / "ipumsdata-0.4.0-pyh_0")
    path = _record(site, "ipumsdata-0.4.0-pyh_0")
    record = json.loads(path.read_text())
    del record["paths_data"]  # as conda 4.3 wrote it
    path.write_text(json.dumps(record))
    [found] = rescue_packages(site, ENV, ["ipumsdata"])
    assert found.severity is Severity.WARNING and "not rescued" in found.action
    assert "no paths_data" in found.reason
    assert not list(site.rescue_dir.glob("*/*.tar.bz2"))


def test_the_rescue_channel_never_shadows_a_package_the_site_channels_have(site: Site) -> None:
    for version, build in (("2.0.0", "pyh_9"), ("9.0.0", "pyh_0")):
        write_package(site.rescue_dir, Package("tabular", version, build, files=[Member("t.txt", b"rescue")]))
    index_channel(site.rescue_dir)
    assert [c for c, _ in site.solve_channels()][-1] == "rescue"
    for specs in (["tabular"], ["tabular==2.0.0"], ["tabular >=1.1"]):
        assert "/main/" in _solved(site, specs)["tabular"], specs
    assert _solved(site, ["tabular==9.0.0"])["tabular"].startswith(site.rescue_dir.as_uri())
    assert "rescue" not in [c for c, _ in replace(site, rescue=False).solve_channels()]

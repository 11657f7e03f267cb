"""`condaqa archive`: an environment kept so that it can be rebuilt exactly, offline, after the channels
have lost it (replication/archive.py), and `retire` saying which environments have no verified archive."""

from __future__ import annotations

import json
import shutil

import pytest
from standins.conda_standin import install

from condaqa.cli import main
from condaqa.engines import conda
from condaqa.manifest import load_manifest
from condaqa.replication.archive import archive_dir, verified
from condaqa.replication.replicate import replicate
from condaqa.sandbox.box import sandbox_for
from condaqa.site import Site, load_site

EXPORT_ONLY = ("old_not_used", "scratch_jdoe")


def run(site: Site, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["--site", str(site.file), *args])
    out, err = capsys.readouterr()
    return code, out + err


def test_export_only_environments_are_rebuilt_from_their_archive_alone_after_the_channels_lost_everything(
        archive_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site = archive_site
    code, out = run(site, capsys, "archive", "--export-only")
    assert code == 0, out
    for env in EXPORT_ONLY:
        folder = archive_dir(site, "v4.3", env)
        manifest = json.loads((folder / "manifest.json").read_text())
        records = sorted((site.current_installation().env_prefix(env) / "conda-meta").glob("*.json"))
        packages = [p for p in (folder / "channel").rglob("*") if p.name.endswith((".tar.bz2", ".conda"))]
        assert len(manifest["records"]) == len(records) == len(packages) and not manifest["missing"], out
        assert {"environment.yml", "explicit.txt", "manifest.json"} <= {p.name for p in folder.iterdir()}
        assert f"{env}: {len(records)} conda package(s)" in out
    for channel in site.channels:  # every channel of the site is gone: only the archives hold the packages
        shutil.rmtree(site.root / channel)
    for env in EXPORT_ONLY:
        assert not verified(site, "v4.3", env)
        code, out = run(site, capsys, "archive", "--verify", env)
        assert code == 0 and "every record matches a rebuild from the archive alone" in out, out
        assert verified(site, "v4.3", env)
    assert not (site.root / "archive" / ".verify").exists() or not any((site.root / "archive" / ".verify").iterdir())
    code, out = run(site, capsys, "report", "--owners")  # the owner is told what the cutover does to it
    page = (load_site(site.file).reports_dir / "owners" / "former-staff.md").read_text()
    assert code == 0 and f"archived in {archive_dir(site, 'v4.3', 'old_not_used')}, verified by a rebuild" in page


def test_an_archive_changed_since_it_was_written_is_refused_naming_the_file(
        demo_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(demo_site, capsys, "archive", "--env", "old_not_used")
    assert code == 0
    folder = archive_dir(demo_site, "v4.3", "old_not_used")
    package = next(p for p in (folder / "channel").rglob("*.tar.bz2"))
    package.write_bytes(package.read_bytes()[:-100])
    code, out = run(demo_site, capsys, "archive", "--verify", "old_not_used")
    assert code == 1 and f"{package}: changed since it was archived" in out, out
    assert not verified(demo_site, "v4.3", "old_not_used")
    code, out = run(demo_site, capsys, "archive", "--env", "listed_twice")  # its pip part from the wheelhouse
    manifest = json.loads((archive_dir(demo_site, "v4.3", "listed_twice") / "manifest.json").read_text())
    assert code == 0 and manifest["pip"] == ["DateFmt==1.0.0"] and not manifest["pip_missing"], out
    assert (archive_dir(demo_site, "v4.3", "listed_twice") / "pip" / "DateFmt-1.0.0-py3-none-any.whl").is_file()
    code, out = run(demo_site, capsys, "archive", "--verify", "../../elsewhere")
    assert code == 2 and "--verify '../../elsewhere'" in out, out


def test_retire_names_each_environment_without_a_verified_archive_before_deleting(
        demo_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    old = demo_site.root / "v4.0"  # an older installation beside current and qa, with two environments
    (old / "conda-meta").mkdir(parents=True)
    for env in EXPORT_ONLY:
        shutil.copytree(demo_site.current_installation().env_prefix(env), old / "envs" / env, symlinks=True)
    code, out = run(demo_site, capsys, "archive", "--installation", "v4.0", "--env", "scratch_jdoe")
    assert code == 0, out
    code, out = run(demo_site, capsys, "archive", "--installation", "v4.0", "--verify", "scratch_jdoe")
    assert code == 0, out
    code, out = run(demo_site, capsys, "retire", "v4.0", "--yes")
    assert code == 0 and not old.exists(), out
    warned = [line for line in out.splitlines() if "has no verified archive" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: old_not_used of v4.0 has no verified archive"), out
    assert "--installation v4.0 --env old_not_used" in warned[0]


def _lose_the_channels_and_the_wheelhouse(site: Site) -> None:
    for gone in (*site.channels, "wheelhouse", "git"):
        shutil.rmtree(site.root / gone)


def test_the_pip_part_is_rebuilt_from_the_archived_wheels_and_compared_file_by_file(
        archive_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site = archive_site
    wheel = next((site.root / "wheelhouse").glob("surveyweights-0.3.0-*.whl"))
    wheel.unlink()  # a pip distribution whose wheel nobody kept: named, and no verification without it
    replicate(site, sandbox_for(site), next(e for e in load_manifest(site.manifest) if e.name == "git_installed"))
    for env in ("listed_twice", "git_installed", "survey_weights"):
        code, out = run(site, capsys, "archive", "--env", env)
        assert code == (1 if env == "survey_weights" else 0), out
    kept = {env: json.loads((archive_dir(site, "v4.3", env) / "manifest.json").read_text())["pip"]
            for env in ("listed_twice", "git_installed")}
    assert kept == {"listed_twice": ["DateFmt==1.0.0"], "git_installed": ["harmonize==0.2.0"]}  # the latter: pip's
    assert "no wheelhouse has surveyweights==0.3.0" in out  # cache of condaqa's build of it from a git commit
    _lose_the_channels_and_the_wheelhouse(site)
    for env in ("listed_twice", "git_installed"):
        code, out = run(site, capsys, "archive", "--verify", env)
        assert code == 0 and "every record matches" in out, out
    code, out = run(site, capsys, "archive", "--verify", "survey_weights")
    assert code == 1 and "not in the archive: pip's surveyweights==0.3.0" in out, out

    manifest_file = archive_dir(site, "v4.3", "git_installed") / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    [harmonize] = manifest["pip_records"]
    module = next(i for i, f in enumerate(harmonize["files"]) if f.startswith("harmonize/__init__.py "))
    harmonize["files"][module] = "harmonize/__init__.py sha256=not-what-pip-installed"
    manifest_file.write_text(json.dumps(manifest))
    code, out = run(site, capsys, "archive", "--verify", "git_installed")
    assert code == 1 and "pip's harmonize==0.2.0: 1 file(s) of the original missing or different, first " \
        "harmonize/__init__.py sha256=not-what-pip-installed" in out, out
    assert not verified(site, "v4.3", "git_installed")


def test_the_conda_engine_rebuilds_an_archive_with_qa_s_conda(archive_site: Site,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """engine = "conda": the rebuild is qa's conda (the stand-in of 25.11.1) reading the archive's channel. (Not an
    export-only environment of the demo: rattler made them without pip, which conda adds to every python.)"""
    site = archive_site
    install(site.root / "v4.8", "25.11.1")
    site.file.write_text(site.file.read_text().replace('engine = "rattler"', 'engine = "conda"'))
    code, out = run(site, capsys, "archive", "--env", "legacy_noarch")
    assert code == 0, out
    _lose_the_channels_and_the_wheelhouse(site)
    code, out = run(site, capsys, "archive", "--verify", "legacy_noarch")
    assert code == 0 and "every record matches" in out, out
    listing = conda.home(site, site.qa_installation()) / ".conda" / "environments.txt"
    assert not listing.is_file() or not listing.read_text().strip()  # the scratch prefix is forgotten

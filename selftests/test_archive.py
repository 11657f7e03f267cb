"""`condaqa archive`: an environment kept so that it can be rebuilt exactly, offline, after the channels
have lost it (rescue/archive.py), and `retire` saying which environments have no verified archive."""

from __future__ import annotations

import json
import shutil

import pytest

from condaqa.cli import main
from condaqa.rescue.archive import archive_dir, verified
from condaqa.site import Site, load_site

EXPORT_ONLY = ("old_not_used", "scratch_jdoe")


def run(site: Site, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["--site", str(site.file), *args])
    out, err = capsys.readouterr()
    return code, out + err


def test_export_only_environments_are_rebuilt_from_their_archive_alone_after_the_channels_lost_everything(
        demo_copy: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site = demo_copy
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

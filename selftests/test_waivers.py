"""Waivers: a failure a site accepts for one environment, for a while ([ENV.waiver] in environments.toml).

The gate lets a waived failure through while the waiver lasts and while the failure is the one it
names, and says so in its output, the dry run, the audit line, the summary and `condaqa status`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers_sites import NEW, OLD, make_site, qualify
from test_report import fail

from condaqa import report
from condaqa.cli import main
from condaqa.errors import ConfigError
from condaqa.lifecycle import audit
from condaqa.manifest import load_manifest
from condaqa.qualification import required
from condaqa.site import Site
from condaqa.vocab import Category

WHY = "fails in production too, INC-88: the vendor fixes it in 2.1"


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """alpha qualified; beta's owner check fails in qa as it does in current (already-broken)."""
    site = make_site(tmp_path, kernels=False)
    qualify(site, envs=("alpha",))
    fail(site, "beta", "owner:beta/check_legacy.py", Category.ALREADY_BROKEN, "check_legacy.py fails in current too")
    return site


def waive(site: Site, until: str = "2999-12-31", category: str = "already-broken", checks: str = "") -> None:
    """beta's waiver, added after the qualification (as a site decides once it has read the summary)."""
    with site.manifest.with_suffix(".toml").open("a") as toml:
        toml.write(f'\n[beta.waiver]\ncategory = "{category}"\nwhy = "{WHY}"\nby = "jdoe"\nuntil = {until}\n{checks}')


def run(site: Site, *argv: str) -> int:
    return main(["--site", str(site.file), *argv])


def test_a_waived_failure_passes_the_gate_and_every_report_says_so(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(site, "cutover", "--dry-run") == 1
    capsys.readouterr()
    waive(site)
    waived = f"beta: failed [already-broken] waived until 2999-12-31 by jdoe: {WHY}"
    assert run(site, "cutover", "--dry-run") == 0
    dry = capsys.readouterr().out
    assert "gate: passes, 1 failure(s) waived" in dry and f"waived: {waived}" in dry
    assert run(site, "status") == 0
    assert f"waived until 2999-12-31 by jdoe: {WHY}" in capsys.readouterr().out
    rows = {r.environment: r for r in report.make_rows(site, load_manifest(site.manifest), NEW, [])}
    assert rows["beta"].result == "failed" and rows["beta"].waiver == f"waived until 2999-12-31 by jdoe: {WHY}"
    md, _ = report.write_summary(site, load_manifest(site.manifest), [], "a sandbox")
    assert f"Waived until 2999-12-31 by jdoe: {WHY}" in md.read_text().split("### beta")[1]
    assert run(site, "cutover") == 0
    assert f"waived: {waived}" in capsys.readouterr().out
    assert audit.records(site)[-1]["waivers"] == [waived]
    assert os.readlink(site.current_link) == NEW


def test_an_expired_waiver_covers_nothing(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    waive(site, until="2001-02-03")
    assert run(site, "cutover") == 1
    err = capsys.readouterr().err
    assert "  - beta: failed: owner:beta/check_legacy.py failed: check_legacy.py fails in current too" in err
    assert "its waiver expired 2001-02-03 (" in err and "environments.toml:" in err
    assert os.readlink(site.current_link) == OLD


@pytest.mark.parametrize(("category", "checks", "said"), [
    ("import-failed", "", "accepts import-failed, not owner:beta/check_legacy.py [already-broken]"),
    ("already-broken", 'checks = ["imports"]\n',
     "accepts already-broken of imports, not owner:beta/check_legacy.py [already-broken]"),
], ids=["another-category", "another-check"])
def test_a_waiver_does_not_cover_another_failure(site: Site, capsys: pytest.CaptureFixture[str], category: str,
                                                 checks: str, said: str) -> None:
    waive(site, category=category, checks=checks)
    assert run(site, "cutover") == 1
    assert said in capsys.readouterr().err
    assert os.readlink(site.current_link) == OLD


def test_a_waiver_does_not_cover_a_new_failure_beside_the_accepted_one(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    waive(site)
    fail(site, "beta", required.IMPORTS, Category.IMPORT_FAILED, "ImportError: beta_mod")
    assert run(site, "cutover") == 1
    assert "not imports [import-failed]" in capsys.readouterr().err


def test_a_waiver_covers_nothing_that_did_not_run(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    with site.manifest.with_suffix(".toml").open("a") as toml:
        toml.write(f'\n[alpha.waiver]\ncategory = "already-broken"\nwhy = "{WHY}"\nby = "jdoe"\nuntil = 2999-12-31\n')
    (site.checks_dir / "alpha").mkdir(parents=True)
    (site.checks_dir / "alpha" / "check_new.py").write_text("print('new')\n")  # alpha: stale
    waive(site)
    assert run(site, "cutover") == 1
    assert "  - alpha: stale: " in capsys.readouterr().err


@pytest.mark.parametrize(("table", "said"), [
    ('category = "flaky"\nwhy = "x"\nby = "y"\nuntil = 2999-01-01\n', "category = 'flaky' is not a failure category"),
    ('category = "already-broken"\nby = "y"\nuntil = 2999-01-01\n', "[beta.waiver] missing why"),
    ('category = "already-broken"\nwhy = " "\nby = "y"\nuntil = 2999-01-01\n', "why must say something"),
    ('category = "already-broken"\nwhy = "x"\nby = "y"\nuntil = "soon"\n', "until must be a date"),
    ('category = "already-broken"\nwhy = "x"\nby = "y"\nuntil = 2999-01-01\nuntil_ok = 1\n',
     "unknown key(s) until_ok"),
], ids=["category", "no-why", "blank-why", "until", "unknown-key"])
def test_a_bad_waiver_is_an_error_with_file_and_line(site: Site, table: str, said: str) -> None:
    toml = site.manifest.with_suffix(".toml")
    line = len(toml.read_text().splitlines()) + 2
    toml.write_text(toml.read_text() + f"\n[beta.waiver]\n{table}")
    with pytest.raises(ConfigError) as raised:
        load_manifest(site.manifest)
    assert f"environments.toml:{line}: [beta.waiver]" in str(raised.value) and said in str(raised.value)

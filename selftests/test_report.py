"""The summary spreadsheet: reports/summary.md and .csv from where each environment stands and its findings."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from helpers_sites import NEW, make_site, qualify

from condaqa import report, triage
from condaqa.cli import main
from condaqa.kernels.specs import find_kernels
from condaqa.manifest import load_manifest
from condaqa.plan import findings
from condaqa.plan.findings import Finding
from condaqa.plan.model import BuildPlan, PostStep
from condaqa.qualification import required, store
from condaqa.replication.stamp import write_stamp
from condaqa.site import Site
from condaqa.vocab import Category, Outcome, PlanSource, Rule, Severity, StepKind

ENVS = ("alpha", "beta", "gamma", "delta")


def fail(site: Site, name: str, check: str, category: Category, detail: str, qa: str = "", current: str = "") -> None:
    """Qualify `name`, then record `check` failed as the plugin would after triage."""
    env = next(e for e in load_manifest(site.manifest) if e.name == name)
    if check.startswith(required.OWNER):
        script = site.checks_dir / check.removeprefix(required.OWNER)
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text("raise KeyError('x')\n")
    stamp = write_stamp(site.root / NEW / "envs" / name, name, "selftest", site.state_dir)
    store.record_build(site, NEW, env, stamp, rebuilt=True, seconds=0.4)
    needed = required.required_checks(site, env, find_kernels(site), NEW)
    found = triage.triaged(category, name, detail, qa, current)
    store.record(site, NEW, env, check, Outcome.FAILED, build_id=stamp.build_id, required=needed,
                 triage=found, qa_tail=qa, current_tail=current)


def qualified_site(tmp_path: Path) -> Site:
    """alpha passed with findings and an override, beta failed, gamma already broken, delta not run."""
    site = make_site(tmp_path, ENVS, kernels=False)
    qualify(site, envs=("alpha",))
    fail(site, "beta", required.VERSIONS, Category.VERSION_MISMATCH,
         "versions differ: tabular | pinned twice\nmore")
    fail(site, "gamma", "owner:gamma/check_x.py", Category.ALREADY_BROKEN, "check_x.py fails in current too",
         qa="Traceback\nKeyError: 'x'", current="Traceback\nKeyError: 'x' (current)")
    legacy = next(e for e in load_manifest(site.manifest) if e.name == "legacy")
    store.record(site, NEW, legacy, required.EXPORT, Outcome.PASSED, build_id="", required={})
    alpha = [Finding(Rule.OVERRIDE, "alpha", "*", "built from alpha.yml", "hand-fixed"),
             Finding(Rule.MISSING_VERSION, "alpha", "numpy", "fixed by the override", "numpy=1.0: no such version")]
    findings.save_findings(site, "alpha", BuildPlan("alpha", ("numpy=1.1",), source=PlanSource.OVERRIDE,
                                                     post=(PostStep(StepKind.PIP, "git+https://x/y@abc"),)), alpha)
    findings.save_findings(site, "beta", BuildPlan("beta", ()),
                           [Finding(Rule.PIP_SYNTAX, "beta", "x", "kept", "unpinned", Severity.ERROR, "pin it")])
    return site


def rows_of(site: Site) -> dict[str, dict[str, str]]:
    _, csv_path = report.write_summary(site, load_manifest(site.manifest), [], "bwrap: a test's words")
    with csv_path.open(newline="") as handle:  # a cell holds the check's last lines, newlines kept
        return {r["environment"]: r for r in csv.DictReader(handle)}


def test_csv_has_one_row_per_environment_with_the_spreadsheet_columns(tmp_path: Path) -> None:
    rows = rows_of(qualified_site(tmp_path))
    assert list(rows) == [*ENVS, "legacy"]
    assert list(rows["alpha"]) == ["environment", "owner", "disposition", "result", "category", "first_error",
                                   "findings", "override", "build_seconds", "hint", "qa_output", "current_output",
                                   "waiver"]
    alpha = rows["alpha"]
    assert alpha["result"] == "passed" and alpha["findings"] == "2" and alpha["override"] == "yes"
    assert rows["beta"]["result"] == "failed" and rows["beta"]["category"] == "version-mismatch"
    assert rows["beta"]["first_error"] == "versions failed: versions differ: tabular | pinned twice"
    assert rows["beta"]["hint"] == triage.HINTS[Category.VERSION_MISMATCH].format(env="beta")
    assert rows["gamma"]["qa_output"] == "Traceback\nKeyError: 'x'"
    assert rows["gamma"]["current_output"].endswith("(current)")
    assert rows["delta"]["result"] == "never" and rows["legacy"]["result"] == "exported"


def test_markdown_puts_failures_first_and_lists_findings_and_the_checks_words_under_them(tmp_path: Path) -> None:
    site = qualified_site(tmp_path)
    md, _ = report.write_summary(site, load_manifest(site.manifest), [], "bwrap: a test's words")
    text = md.read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Failed", "## Already broken in current (not a regression of the migration)",
                        "## Not qualified (pending, partial, stale, missing or never run)", "## Passed",
                        "## Export only"]
    failed = text.split("## Failed")[1].split("## Already broken")[0]
    row = ("| beta | - | replicate | failed | version-mismatch | versions failed: versions differ: tabular \\| "
           "pinned twice |")
    assert row in failed
    assert "### beta" in failed and "- error `pip-syntax` x: kept — unpinned. Hint: pin it" in failed
    broken = text.split("## Already broken")[1].split("## Not qualified")[0]
    assert "Its last lines in qa:" in broken and "KeyError: 'x' (current)" in broken
    passed = text.split("## Passed")[1].split("## Export only")[0]
    assert "### alpha" in passed and "- info `missing-version` numpy: fixed by the override" in passed
    assert "post-create step (pip): `git+https://x/y@abc`" in passed
    assert "5 environments: 1 failed, 1 already broken in current, 1 not qualified, 1 passed, 1 export only" in text


def test_condaqa_report_regenerates_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    site = qualified_site(tmp_path)
    monkeypatch.chdir(site.file.parent.parent)  # where the findings were written: reports/ of that folder
    assert main(["--site", str(site.file), "report"]) == 0
    out = capsys.readouterr().out
    assert "5 environments of v4.8: 1 failed, 1 already broken in current" in out
    assert str(site.reports_dir / "summary.md") in out
    assert (site.reports_dir / "summary.csv").is_file()


def test_findings_file_round_trips(tmp_path: Path) -> None:
    site = make_site(tmp_path, ("alpha",))
    finding = Finding(Rule.LEGACY_NOARCH, "alpha", "varlabels", "installed on its own", "listed", Severity.INFO, "")
    plan = BuildPlan("alpha", (), post=(PostStep(StepKind.CONDA, "varlabels=0.2"),))
    path = findings.save_findings(site, "alpha", plan, [finding])
    assert path == site.reports_dir / "findings" / "alpha.json"
    assert json.loads(path.read_text())["override"] is False
    saved = findings.load_findings(site, "alpha")
    assert saved is not None
    assert saved.findings == [finding] and saved.post_steps == [PostStep(StepKind.CONDA, "varlabels=0.2")]


def test_the_first_error_names_an_owner_check_once(tmp_path: Path) -> None:
    """Not `owner:gamma/check_x.py failed: gamma/check_x.py exited 3 ...`."""
    site = make_site(tmp_path, ENVS, kernels=False)
    fail(site, "gamma", "owner:gamma/check_x.py", Category.OWNER_CHECK_FAILED,
         "gamma/check_x.py exited 3 in qa, passes in current\nqa: KeyError")
    fail(site, "beta", required.VERSIONS, Category.VERSION_MISMATCH, "versions differ: tabular")
    rows = rows_of(site)
    assert rows["gamma"]["first_error"] == "owner:gamma/check_x.py exited 3 in qa, passes in current"
    assert rows["beta"]["first_error"] == "versions failed: versions differ: tabular"


def test_condaqa_report_from_another_folder_links_findings_files_that_exist(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The qualification ran in one folder; `condaqa report` runs in another: every findings file the summary
    links is there, and the findings are in it."""
    ran_in, elsewhere = tmp_path / "qualified-here", tmp_path / "elsewhere"
    ran_in.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(ran_in)
    site = make_site(tmp_path, ENVS, kernels=False)
    findings.save_findings(site, "beta", BuildPlan("beta", ()),
                           [Finding(Rule.PIP_SYNTAX, "beta", "x", "kept", "unpinned", Severity.ERROR, "pin it")])
    fail(site, "beta", required.VERSIONS, Category.VERSION_MISMATCH, "versions differ: tabular")
    monkeypatch.chdir(elsewhere)
    assert main(["--site", str(site.file), "report"]) == 0
    text = (elsewhere / "reports" / "summary.md").read_text()
    assert "- error `pip-syntax` x: kept — unpinned. Hint: pin it" in text
    links = re.findall(r"\]\(([^)]+\.json)\)", text)
    assert links and all((elsewhere / "reports" / link).resolve().is_file() for link in links)
    assert "findings/<env>.json" not in text

"""The summary spreadsheet: reports/summary.md and .csv from saved results and findings."""

from __future__ import annotations

import csv
import json

from helpers_sites import make_site

from condaqa import findings, report, results, triage
from condaqa.cli import main
from condaqa.manifest import load_manifest
from condaqa.plan import BuildPlan, PostStep
from condaqa.findings import ERROR, INFO, Finding

ENVS = ("alpha", "beta", "gamma", "delta")


def qualified_site(tmp_path):
    """alpha passed with findings and an override, beta failed, gamma already broken, delta not run."""
    site = make_site(tmp_path, ENVS)
    results.save(site, results.EnvResult("alpha", "v4.8", "replicate", "team-a", build_seconds=2.345))
    beta = results.EnvResult("beta", "v4.8", "replicate", "team-b", build_seconds=0.4)
    beta.record_test("test_builds[beta]", results.FAILED, "failed at solve: tabular | pinned twice\nmore",
                     "unsatisfiable")
    results.save(site, beta)
    gamma = results.EnvResult("gamma", "v4.8", "replicate")
    gamma.record_test("test_owner_check[gamma-x]", results.FAILED, "check_x.py fails in current too", "already-broken")
    results.save(site, gamma)
    results.save(site, results.EnvResult("legacy", "v4.8", "export", outcome=results.EXPORTED))
    alpha = [Finding("override", "alpha", "*", "built from alpha.yml", "hand-fixed"),
                Finding("missing-version", "alpha", "numpy", "fixed by the override", "numpy=1.0: no such version")]
    findings.save_findings(site, "alpha", BuildPlan("alpha", ("numpy=1.1",), source="override",
                                                     post=(PostStep("pip", "git+https://x/y@abc"),)), alpha)
    findings.save_findings(site, "beta", BuildPlan("beta", ()), [Finding("pip-syntax", "beta", "x", "kept", "unpinned",
                                                                         ERROR, "pin it")])
    return site


def test_csv_has_one_row_per_environment_with_the_spreadsheet_columns(tmp_path):
    site = qualified_site(tmp_path)
    md, csv_path = report.write_summary(site, load_manifest(site.manifest))
    rows = {r["environment"]: r for r in csv.DictReader(csv_path.read_text().splitlines())}
    assert list(rows) == [*ENVS, "legacy"]
    assert list(rows["alpha"]) == ["environment", "owner", "disposition", "result", "category", "first_error",
                                   "findings", "override", "build_seconds", "hint"]
    alpha = rows["alpha"]
    assert alpha["findings"] == "2" and alpha["override"] == "yes" and alpha["build_seconds"] == "2.3"
    assert rows["beta"]["result"] == "failed" and rows["beta"]["category"] == "unsatisfiable"
    assert rows["beta"]["first_error"] == "failed at solve: tabular | pinned twice"
    assert rows["beta"]["hint"] == triage.HINTS["unsatisfiable"].format(env="beta")
    assert rows["delta"]["result"] == report.NOT_RUN and rows["legacy"]["result"] == "exported"


def test_markdown_puts_failures_first_and_lists_findings_under_them(tmp_path):
    site = qualified_site(tmp_path)
    md, _ = report.write_summary(site, load_manifest(site.manifest))
    text = md.read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Failed", "## Already broken in current (not a regression of the migration)",
                        "## Passed", "## Export only", "## Not run"]
    failed = text.split("## Failed")[1].split("## Already broken")[0]
    row = "| beta | team-b | replicate | failed | unsatisfiable | failed at solve: tabular \\| pinned twice |"
    assert row in failed
    assert "### beta" in failed and "- error `pip-syntax` x: kept — unpinned. Hint: pin it" in failed
    passed = text.split("## Passed")[1].split("## Export only")[0]
    assert "### alpha" in passed and "- info `missing-version` numpy: fixed by the override" in passed
    assert "post-create step (pip): `git+https://x/y@abc`" in passed
    assert "### gamma" in text.split("## Already broken")[1].split("## Passed")[0]
    assert "5 environments: 1 failed, 1 already broken in current, 1 passed, 1 export only, 1 not run" in text


def test_condaqa_report_regenerates_both_files(tmp_path, capsys):
    site = qualified_site(tmp_path)
    assert main(["--site", str(site.file), "report"]) == 0
    out = capsys.readouterr().out
    assert "5 environments of v4.8: 1 failed, 1 already broken in current" in out
    assert str(site.reports_dir / "summary.md") in out
    assert (site.reports_dir / "summary.csv").is_file()


def test_findings_file_round_trips(tmp_path):
    site = make_site(tmp_path, ("alpha",))
    finding = Finding("legacy-noarch", "alpha", "varlabels", "installed on its own", "listed", INFO, "")
    path = findings.save_findings(site, "alpha", BuildPlan("alpha", (), post=(PostStep("conda", "varlabels=0.2"),)),
                                  [finding])
    assert path == site.reports_dir / "findings" / "alpha.json"
    assert json.loads(path.read_text())["override"] is False
    saved = findings.load_findings(site, "alpha")
    assert saved.findings == [finding] and saved.post_steps == [PostStep("conda", "varlabels=0.2")]

"""The demo's sanitation environments end to end, run as users run the suite (pytester, xdist).

Green: each rule shows its findings in reports/summary.md, findings/<env>.json and JUnit.
Broken: an unsatisfiable pin, a missing pin without its override and a check that fails in
current too each fail only their environment, with their category in JUnit and the summary.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import Qualified, no_rescue

from condaqa.plan.findings import read_findings
from condaqa.site import load_site
from condaqa.vocab import Verdict

if TYPE_CHECKING:
    from lxml.etree import _ElementTree

from lxml import etree

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "data" / "junit-10.xsd")))

# environment -> (rules of its findings, post-create step kinds, override used)
EXPECTED = {
    "git_installed": ({"direct-url"}, ["pip"], False),
    "listed_twice": ({"listed-twice"}, [], False),
    "noarch_in_pip": ({"noarch-in-pip"}, [], False),
    "legacy_noarch": ({"legacy-noarch"}, ["conda"], False),
    "missing_pin": ({"override", "missing-version"}, [], True),
    "linkage_2019": ({"rescued"}, [], False),
}


@pytest.fixture
def project(qualified_project: Path) -> Path:
    """Qualified before, so only what a test changes is built again."""
    return qualified_project


def qualify(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", *args)


def junit_properties(project: Path) -> tuple[dict[str, str], _ElementTree]:
    tree = etree.parse(str(project / "reports" / "junit.xml"))
    assert SCHEMA.validate(tree), SCHEMA.error_log
    return {p.get("name", ""): p.get("value", "") for p in tree.iter("property")}, tree


def summary_rows(project: Path) -> dict[str, dict[str, str]]:
    text = (project / "reports" / "summary.csv").read_text()
    return {row["environment"]: row for row in csv.DictReader(text.splitlines())}


def test_the_demo_qualifies_green_with_every_rule_in_the_summary(green_qualification: Qualified) -> None:
    """The worker's full qualification of the demo from scratch, as users run it, and the reports it left."""
    result, project = green_qualification.run, green_qualification.project
    root = load_site(project / "manifests" / "site.toml", base=project).root
    assert result.ret == 0, "\n".join(result.outlines)
    result.stdout.fnmatch_lines(["*- condaqa summary -*", "reports: */reports/summary.md, */reports/junit.xml"])
    summary = (project / "reports" / "summary.md").read_text()
    rows = summary_rows(project)
    props, _ = junit_properties(project)
    for env, (rules, steps, override) in EXPECTED.items():
        saved = read_findings(project / "reports" / "findings" / f"{env}.json")
        assert {f.rule for f in saved.findings} == rules, env
        assert [s.kind for s in saved.post_steps] == steps and saved.override is override
        assert f"### {env}" in summary and all(f"`{rule}`" in summary.split(f"### {env}")[1] for rule in rules)
        assert rows[env]["result"] == props[f"{env}.result"] == Verdict.PASSED and rows[env]["category"] == ""
        assert rows[env]["first_error"] == "" and f"{env}.category" not in props
        assert rows[env]["findings"] == str(len(saved.findings)) == props[f"{env}.findings"]
        assert rows[env]["override"] == props[f"{env}.override"] == ("yes" if override else "no")
    assert rows["hlink"]["findings"] == "0" and "## Failed" not in summary
    rescued = summary.split("## Rescued packages")[1].split("## ")[0]
    assert "| linkage_2019 | linkage | rescued linkage-2.0.0-pyh_0 into rescue |" in rescued, rescued
    assert f"{root / 'v4.3' / 'pkgs'}" in rescued  # taken from production's package cache
    result.stdout.fnmatch_lines(["  linkage_2019: rescued linkage-2.0.0-pyh_0 into rescue: publish it *"])
    assert props["old_not_used.result"] == props["scratch_jdoe.result"] == Verdict.EXPORTED
    git_step = read_findings(project / "reports" / "findings" / "git_installed.json").post_steps[0]
    assert git_step.requirement.startswith(f"git+{(root / 'git' / 'harmonize').as_uri()}@")
    assert props["listed_twice.finding.1"] == "info listed-twice datefmt: dropped from pip"


def test_failures_fail_only_their_environment_and_are_triaged(pytester: pytest.Pytester, project: Path) -> None:
    manifests = project / "manifests"
    (manifests / "overrides" / "hlink.yml").write_text(
        "name: hlink\nchannels: [main, mpc]\ndependencies: [python, pip, linkage=2.2.0, ipumsdata=0.4.1]\n")
    (manifests / "overrides" / "missing_pin.yml").unlink()
    no_rescue(manifests / "site.toml")  # ipumsdata 0.4.0 is still in current's cache: rescue would take it
    (project / "env_checks" / "listed_twice" / "check_old_bug.py").write_text(
        '"""Broken since 2019: the surveyweights dependency was never installed here."""\nimport surveyweights\n')
    result = qualify(pytester, "-k", "hlink or missing_pin or listed_twice or nhis_reformat or linkage_2019")
    assert result.ret == 1
    failed = set()
    for line in result.stdout.lines:
        if line.startswith("FAILED "):
            match = re.match(r"FAILED [^\[]+\[([^\]-]+)", line)
            assert match, line
            failed.add(match.group(1))
    assert failed == {"hlink", "missing_pin", "listed_twice", "linkage_2019"}, result.stdout.str()
    props, tree = junit_properties(project)
    assert props["hlink.category"] == "unsatisfiable" and "overrides/hlink.yml" in props["hlink.hint"]
    assert props["missing_pin.category"] == "missing-version" and props["listed_twice.category"] == "already-broken"
    assert props["linkage_2019.category"] == "missing-version"  # what rescue turns green
    assert props["nhis_reformat.result"] == Verdict.PASSED and "nhis_reformat.category" not in props
    assert all(props[f"{env}.result"] == Verdict.FAILED for env in ("hlink", "missing_pin", "listed_twice"))
    failures = {f.get("message", "").removeprefix("Failed: ").split(" ")[0]: f.text or "" for f in tree.iter("failure")}
    assert "ipumsdata >=0.5" in failures["[unsatisfiable]"] and "hint: the pins cannot" in failures["[unsatisfiable]"]
    assert set(failures) == {"[unsatisfiable]", "[missing-version]", "[already-broken]"}
    rows = summary_rows(project)
    assert rows["hlink"]["first_error"].startswith("the build failed at solve: ")
    assert "linkage" in rows["hlink"]["first_error"]
    first = rows["missing_pin"]["first_error"]
    assert first.startswith("the build failed at preflight: ") and "nearest available: 0.4.1, 0.5.0" in first
    first = rows["listed_twice"]["first_error"]
    assert first.startswith("owner:listed_twice/check_old_bug.py exited 1 in qa and fails in current too")
    assert {env: rows[env]["result"] for env in ("hlink", "missing_pin", "listed_twice")} == dict.fromkeys(
        ("hlink", "missing_pin", "listed_twice"), Verdict.FAILED)
    result.stdout.fnmatch_lines(["  hlink: failed: the build failed at solve: *",
                                 "  listed_twice: failed: owner:listed_twice/check_old_bug.py exited 1 *",
                                 "  missing_pin: failed: the build failed at preflight: *nearest available*"])
    summary = (project / "reports" / "summary.md").read_text()
    failed_group = summary.split("## Failed")[1].split("## ")[0]
    assert "| hlink |" in failed_group and "| missing_pin |" in failed_group and "| listed_twice |" not in failed_group
    assert summary.index("## Failed") < summary.index("## Already broken") < summary.index("## Passed")
    saved = json.loads((project / "reports" / "findings" / "missing_pin.json").read_text())
    assert saved["override"] is False and saved["findings"][0]["severity"] == "error"

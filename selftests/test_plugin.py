"""The qualification suite end to end on a demo site, run as users run it (pytester, xdist)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lxml import etree

from conftest import write_project

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "data" / "junit-10.xsd")))
REPLICATE = ("nhis_reformat", "hlink", "super_important_jupyter_kernel", "survey_weights")


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under an installation with its size, mode and mtime: to prove nothing changed."""
    state = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            state[path] = (st.st_size, st.st_mode, st.st_mtime_ns)
    return state


def junit(project: Path) -> etree._ElementTree:
    tree = etree.parse(str(project / "reports" / "junit.xml"))
    assert SCHEMA.validate(tree), SCHEMA.error_log
    return tree


@pytest.fixture
def project(pytester: pytest.Pytester, demo_site) -> Path:
    """A checkout of the repository in pytester's folder, pointing at this test's demo site."""
    write_project(pytester.path, demo_site.root)
    return pytester.path


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_demo_qualifies_green_rebuilds_nothing_and_leaves_current_alone(pytester, project, demo_site):
    before = snapshot(demo_site.root / "v4.3")
    result = run(pytester, "-n", "2")
    assert result.ret == 0, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] >= 24 and set(outcomes) <= {"passed", "seconds"}, outcomes
    tree = junit(project)
    classes = {case.get("classname") for case in tree.iter("testcase")}
    assert {f"condaqa.{env}" for env in REPLICATE} <= classes
    props = {p.get("name"): p.get("value") for p in tree.iter("property")}
    assert props["nhis_reformat.owner"] == "nhis-team" and props["old_not_used.disposition"] == "export"
    assert props["hlink.result"] == "passed"
    assert snapshot(demo_site.root / "v4.3") == before, "qualification wrote under current"

    again = run(pytester, "-n", "2")
    assert again.ret == 0
    for env in REPLICATE:
        log = (project / "reports" / "logs" / f"{env}.log").read_text()
        assert log.count("built in") == 1 and "nothing rebuilt" in log.splitlines()[-1]


def test_k_selects_one_environment(pytester, project):
    result = run(pytester, "-n", "2", "-k", "nhis", "-v")
    assert result.ret == 0
    ran = [line for line in result.outlines if "PASSED" in line]
    assert ran and all("nhis_reformat" in line for line in ran)
    assert not (project / "reports" / "logs" / "hlink.log").exists()


def test_failing_owner_check_fails_only_its_environment(pytester, project):
    check = project / "env_checks" / "hlink" / "check_broken.py"
    check.write_text("print('linkage table has 0 rows')\nraise SystemExit(3)\n")
    result = run(pytester, "-n", "2")
    assert result.ret == 1
    assert result.parseoutcomes()["failed"] == 1
    failed = [c for c in junit(project).iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["test_owner_check[hlink-hlink/check_broken.py]"]
    assert "linkage table has 0 rows" in failed[0].find("failure").text
    assert "exited 3" in failed[0].find("failure").get("message")


def test_unsatisfiable_pin_fails_only_its_environment(pytester, project, demo_site):
    meta = demo_site.root / "v4.3" / "envs" / "survey_weights" / "conda-meta"
    record = next(meta.glob("tabular-2.0.0-*.json"))
    record.write_text(record.read_text().replace('"version": "2.0.0"', '"version": "7.7.7"'))
    result = run(pytester, "-n", "2")
    assert result.ret == 1
    cases = list(junit(project).iter("testcase"))
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["test_builds[survey_weights]"]
    message = next(c for c in cases if c.get("name") == "test_builds[survey_weights]").find("failure").text
    assert "tabular" in message and "7.7.7" in message
    skipped = {c.get("name") for c in cases if c.find("skipped") is not None}
    assert skipped and all("survey_weights" in name for name in skipped)


def test_bad_manifest_is_a_usage_error_that_writes_nothing(pytester, tmp_path):
    root = tmp_path / "never-built"
    site_file = write_project(pytester.path, root)
    (site_file.parent / "environments.ini").write_text("[environments]\nhlink = REPLICATE\nx/y = export\n")
    result = run(pytester, "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*environments.ini:3: bad environment name 'x/y': contains a path separator*"])
    assert not root.exists() and not (pytester.path / "reports").exists()

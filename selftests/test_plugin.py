"""The qualification suite end to end on a demo site, run as users run it: the installed plugin,
pytester subprocesses, xdist; from a checkout of the repository and from any other folder."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest
from conftest import Qualified, no_rescue
from fixture_sites import write_project
from lxml import etree

from condaqa.kernels.specs import find_kernels
from condaqa.manifest import site_manifest
from condaqa.plan.findings import read_findings
from condaqa.qualification import runs
from condaqa.qualification.required import required_checks
from condaqa.session import environment_of
from condaqa.site import Site, load_site

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "data" / "junit-10.xsd")))
SITE_TESTS = 4  # the suite's two manifest tests and the demo site's own two in tests/


def junit(folder: Path) -> etree._ElementTree:
    tree = etree.parse(str(folder / "reports" / "junit.xml"))
    assert SCHEMA.validate(tree), SCHEMA.error_log
    return tree


def failure_of(case: etree._Element) -> tuple[str, str]:
    """A failed test case's failure: its message and its text."""
    failure = case.find("failure")
    assert failure is not None, f"{case.get('name')} has no failure"
    return failure.get("message", ""), failure.text or ""


def required_tests(site: Site, *names: str) -> int:
    """How many tests the suite runs on `site` (or for the environments `names`): one per required check."""
    kernels = find_kernels(site)
    return sum(len(required_checks(site, env, kernels, "v4.8")) for env in site_manifest(site)
               if env.name in names or not names)


@pytest.fixture
def project(pytester: pytest.Pytester, demo_site: Site) -> Path:
    """A checkout of the repository in pytester's folder, pointing at this test's demo site."""
    write_project(pytester.path, demo_site.root)
    return pytester.path


def qualified_site_of(project: Path) -> Site:
    return load_site(project / "manifests" / "site.toml", base=project)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_demo_qualifies_green_one_worker_per_environment_rebuilds_nothing_and_leaves_current_alone(
        green_qualification: Qualified, qualified_project: Path, pytester: pytest.Pytester) -> None:
    """The worker's own full qualification from scratch (`pytest -n 2 -v`, made once for every test
    that starts from it), then a re-run on what it left."""
    result, project, demo_site = green_qualification.run, green_qualification.project, load_site(
        green_qualification.project / "manifests" / "site.toml", base=green_qualification.project)
    assert result.ret == 0, "\n".join(result.outlines)
    outcomes = result.parseoutcomes()
    outcomes.pop("seconds", None)
    assert outcomes == {"passed": required_tests(demo_site) + SITE_TESTS}
    manifest = site_manifest(demo_site)  # less what this machine's demo was built without
    replicated = [e.name for e in manifest if e.replicate]
    for env in replicated:  # one line as each environment starts and one as its build ends, whatever -n
        assert sum(1 for line in result.outlines if line.startswith(f"condaqa: {env}: started")) == 1
        assert sum(1 for line in result.outlines if re.match(rf"condaqa: {env}: built in [\d.]+s", line)) == 1
    exported = len(manifest) - len(replicated)
    result.stdout.fnmatch_lines(["*condaqa summary*",
                                 f"{len(manifest)} environments of v4.8: {exported} exported, {len(replicated)} passed",
                                 f"reports: {project}/reports/summary.md, {project}/reports/junit.xml"])
    tree = junit(project)
    classes = {case.get("classname") for case in tree.iter("testcase")}
    assert {f"condaqa.{env}" for env in replicated} <= classes
    props = {p.get("name"): p.get("value") for p in tree.iter("property")}
    assert props["nhis_reformat.owner"] == "nhis-team" and props["old_not_used.disposition"] == "export"
    assert props["hlink.result"] == "passed" and props["old_not_used.result"] == "exported"
    assert props["kernel.hlink.display_name"] == "Python (hlink)"
    kernels_table = (project / "reports" / "summary.md").read_text().split("## Kernels\n")[1]
    for k in find_kernels(demo_site):  # every kernel started for real, from qa's spec and from current's
        assert f"| {k.name} | {k.environment} | {k.display_name} | yes | yes | - |" in kernels_table, kernels_table
    assert green_qualification.changed == [], "qualification wrote under current, a channel or git"
    names = [e.name for e in manifest]
    kernel_envs = {k.name: k.environment for k in find_kernels(demo_site)}
    workers: dict[str, set[str]] = {}
    for line in result.outlines:
        match = re.match(r"\[(gw\d+)\] \[ *\d+%\] PASSED (\S+)", line)
        if match and environment_of(match.group(2), names, kernel_envs):
            workers.setdefault(environment_of(match.group(2), names, kernel_envs), set()).add(match.group(1))
    assert len(workers) == len(manifest) and all(len(w) == 1 for w in workers.values()), workers
    assert len(set().union(*workers.values())) == 2  # and both workers had some

    again = run(pytester, "-n", "2", "-k", "test_builds")  # every environment's build, none of the checks
    assert again.ret == 0 and again.parseoutcomes()["passed"] == len(replicated)
    for env in replicated:
        assert sum(1 for line in again.outlines if line.startswith(f"condaqa: {env}: up to date in")) == 1
        log = (qualified_project / "reports" / "logs" / f"{env}.log").read_text()
        assert log.count("built in") == 1 and "nothing rebuilt" in log.splitlines()[-1]
    [last] = runs.last(qualified_site_of(qualified_project), "v4.8", 1)  # the overview's "over time"
    assert (last.environments, last.qualified, last.failed, last.pending, last.exit) == (len(replicated),
                                                                                          len(replicated), 0, 0, 0)


def test_environment_of_maps_test_ids_to_environments() -> None:
    names, kernels = ["hlink", "hlink_extra", "nhis"], {"nhis-kernel": "nhis"}
    assert environment_of("s/test_environments.py::test_builds[hlink]", names, kernels) == "hlink"
    assert environment_of("s/test_environments.py::test_owner_check[hlink_extra-_all/check_x.py]", names,
                          kernels) == "hlink_extra"
    assert environment_of("s/test_environments.py::test_owner_check[hlink-hlink/check_x.py]", names, kernels) == "hlink"
    assert environment_of("s/test_kernels.py::test_kernel_starts[nhis-kernel]", names, kernels) == "nhis"
    assert environment_of("s/test_environments.py::test_builds[nhis-kernel]", names, kernels) == "nhis"
    assert environment_of("s/test_environments.py::test_manifest_lists_every_environment", names, kernels) == ""
    assert environment_of("s/test_x.py::test_y[elsewhere]", names, kernels) == ""


def test_k_selects_one_environment(pytester: pytest.Pytester, project: Path) -> None:
    result = run(pytester, "-n", "0", "-k", "nhis", "-v")
    assert result.ret == 0
    ran = [line for line in result.outlines if "PASSED" in line]
    assert ran and all("nhis_reformat" in line for line in ran)
    assert not (project / "reports" / "logs" / "hlink.log").exists()


def test_a_failing_owner_check_fails_only_its_environment_with_its_own_words(
        pytester: pytest.Pytester, qualified_project: Path) -> None:
    project = qualified_project
    check = project / "env_checks" / "survey_weights" / "check_broken.py"
    check.write_text("import sys\nprint('linkage table has', 0 if 'v4.8' in sys.prefix else 9, 'rows')\n"
                     "raise SystemExit(3 if 'v4.8' in sys.prefix else 0)\n")
    result = run(pytester, "-n", "0", "-k", "survey_weights or nhis_reformat")
    assert result.ret == 1
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 1 and outcomes["passed"] == required_tests(qualified_site_of(project),
                                                                            "survey_weights", "nhis_reformat") - 1
    failed = [c for c in junit(project).iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["test_owner_check[survey_weights-survey_weights/check_broken.py]"]
    message, text = failure_of(failed[0])
    assert "qa said:\n  linkage table has 0 rows" in text and "current said:\n  linkage table has 9 rows" in text
    assert "exited 3" in message
    summary = (project / "reports" / "summary.md").read_text()
    assert "linkage table has 0 rows" in summary and "linkage table has 9 rows" in summary


def test_a_missing_pin_fails_only_its_environment_at_preflight(
        pytester: pytest.Pytester, pip_site: Site) -> None:
    demo_site, project = pip_site, pytester.path
    no_rescue(write_project(project, demo_site.root))  # rescue would re-pack the record's 7.7.7 from current
    meta = demo_site.root / "v4.3" / "envs" / "survey_weights" / "conda-meta"
    record = next(meta.glob("tabular-2.0.0-*.json"))
    record.write_text(record.read_text().replace('"version": "2.0.0"', '"version": "7.7.7"'))
    result = run(pytester, "-n", "0", "-k", "survey_weights or nhis_reformat")
    assert result.ret == 1
    cases = list(junit(project).iter("testcase"))
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["test_builds[survey_weights]"]
    assert result.parseoutcomes()["passed"] == required_tests(demo_site, "nhis_reformat")
    _, text = failure_of(next(c for c in cases if c.get("name") == "test_builds[survey_weights]"))
    assert "tabular" in text and "7.7.7" in text
    skipped = {c.get("name", "") for c in cases if c.find("skipped") is not None}
    assert skipped and all("survey_weights" in name for name in skipped)
    result.stdout.fnmatch_lines(["condaqa: survey_weights: FAILED at preflight in *s"])


def test_where_nothing_isolates_a_probe_that_writes_into_current_fails_its_environment(
        pytester: pytest.Pytester, pip_site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONDAQA_SANDBOX", "none")  # as where no sandbox works
    write_project(pytester.path, pip_site.root)
    env = pip_site.root / "v4.3" / "envs" / "survey_weights"
    planted = env / "conda-meta" / "planted.json"
    site_packages = next(env.glob("lib/python*/site-packages"))
    (site_packages / "plants.py").write_text(f"open({str(planted)!r}, 'w').write('{{}}')\n")
    result = run(pytester, "-n", "0", "-k", "survey_weights")
    assert result.ret == 1
    failed = [c for c in junit(pytester.path).iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["test_key_packages_import[survey_weights]"]
    message, text = failure_of(failed[0])
    assert "[current-changed]" in message
    assert f"{planted} appeared while the import probe ran" in text


def test_executables_that_qa_lacks_are_findings_of_the_versions_check(
        pytester: pytest.Pytester, pip_site: Site) -> None:
    """conda 4.3 linked activate and deactivate into every environment; a new installation does not."""
    write_project(pytester.path, pip_site.root)
    bin_ = pip_site.root / "v4.3" / "envs" / "survey_weights" / "bin"
    for name in ("activate", "deactivate"):
        (bin_ / name).symlink_to(pip_site.root / "v4.3" / "bin" / name)
    result = run(pytester, "-n", "0", "-k", "survey_weights")
    assert result.ret == 0, result.stdout.str()
    saved = read_findings(pytester.path / "reports" / "findings" / "survey_weights.json")
    found = {f.package: f for f in saved.findings if f.rule == "executables"}
    assert sorted(found) == ["bin/activate", "bin/deactivate"] and found["bin/activate"].severity == "warning"
    assert "`conda activate survey_weights`" in found["bin/activate"].hint
    summary = (pytester.path / "reports" / "summary.md").read_text().split("### survey_weights")[1]
    assert "- warning `executables` bin/activate: missing in qa" in summary


def test_bad_manifest_is_a_usage_error_that_writes_nothing(pytester: pytest.Pytester, tmp_path: Path) -> None:
    root = tmp_path / "never-built"
    site_file = write_project(pytester.path, root)
    (site_file.parent / "environments.ini").write_text("[environments]\nhlink = REPLICATE\nx/y = export\n")
    result = run(pytester, "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*environments.ini:3: bad environment name 'x/y': contains a path separator*"])
    assert not root.exists() and not (pytester.path / "reports").exists()


# --- the installed plugin, from a folder that is not the repository ------------------------------


def test_from_any_folder_with_pyargs_and_a_site_elsewhere(pytester: pytest.Pytester, qualified_site: Site) -> None:
    """`pytest --pyargs condaqa.suite --site /abs/site.toml`, --site before or after the other arguments;
    the reports land in the folder pytest runs from, and a run that qualifies nothing leaves them."""
    demo_site = qualified_site
    assert not str(demo_site.file).startswith(str(pytester.path))
    suite_tests = "test_manifest_lists_every_environment or test_kernel_environments_are_replicated"
    result = run(pytester, "--site", str(demo_site.file), "-n", "2", "--pyargs", "condaqa.suite",
                 "-k", f"nhis_reformat or {suite_tests}")  # one environment: the full run is the green one's
    assert result.ret == 0, result.stdout.str()
    assert result.parseoutcomes()["passed"] == required_tests(demo_site, "nhis_reformat") + 2
    junit(pytester.path)
    kept = (pytester.path / "reports" / "junit.xml").read_bytes()
    summary = (pytester.path / "reports" / "summary.md").read_bytes()
    collected = run(pytester, "--pyargs", "condaqa.suite", "--collect-only", "--site", str(demo_site.file))
    assert collected.ret == 0
    nothing = run(pytester, "--pyargs", "condaqa.suite", "-k", "no_such_test", "--site", str(demo_site.file))
    assert nothing.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    nothing.stdout.fnmatch_lines(["condaqa: no qualification test ran; the last reports are left as they were"])
    assert (pytester.path / "reports" / "junit.xml").read_bytes() == kept
    assert (pytester.path / "reports" / "summary.md").read_bytes() == summary
    single = run(pytester, "-p", "no:xdist", "--pyargs", "condaqa.suite", "--site", str(demo_site.file),
                 "-k", "survey_weights")
    assert single.ret == 0, single.stdout.str()
    assert (pytester.path / "reports" / "junit.xml").read_bytes() != kept


def test_a_site_without_qa_is_one_clear_usage_error(pytester: pytest.Pytester, demo_site: Site) -> None:
    (demo_site.root / "qa").unlink()
    result = run(pytester, "--pyargs", "condaqa.suite", "--site", str(demo_site.file))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{demo_site.root}/qa is absent: there is no installation to qualify*"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert not (pytester.path / "reports").exists()


def test_the_plugin_is_inert_without_a_site(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONDAQA_SITE", raising=False)
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = run(pytester, "-n", "2")
    assert result.ret == 0 and result.parseoutcomes()["passed"] == 1
    said = [line for line in result.outlines if not line.startswith("plugins: ")]  # pytest's header lists it
    assert not [line for line in said if "condaqa" in line], said
    assert not (pytester.path / "reports").exists()
    assert run(pytester, "--help").stdout.str().count("--site=PATH") == 1  # the option is known everywhere


# --- what a run that leaves an environment unqualified, or cannot qualify at all, says ------------


def test_a_run_that_leaves_an_environment_it_ran_unqualified_exits_1(pytester: pytest.Pytester, project: Path) -> None:
    """`pytest --lf` after a fixed build re-runs test_builds alone: passed, but the environment is pending."""
    result = run(pytester, "-n", "0", "-k", "test_builds and survey_weights")
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 1 and "failed" not in outcomes
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.fnmatch_lines(["1 environment of v4.8: 1 pending",
                                 "  survey_weights: pending: built, but its checks have not run (*",
                                 "condaqa: exit 1: survey_weights is not qualified; run its checks: "
                                 "pytest -k survey_weights"])


def test_qa_and_current_on_one_installation_is_one_usage_error(pytester: pytest.Pytester, demo_site: Site) -> None:
    """What `cutover`, `qa v4.3`, `rollback` leave: qa names the installation in production."""
    (demo_site.root / "qa").unlink()
    (demo_site.root / "qa").symlink_to("v4.3")
    result = run(pytester, "--pyargs", "condaqa.suite", "--site", str(demo_site.file), "-k", "survey_weights")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {demo_site.root}/qa and {demo_site.root}/current both point to v4.3: *"
                                 "`condaqa qa NAME`*"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert not (pytester.path / "reports").exists()


# --- the plugin in projects that are not condaqa's ------------------------------------------------


@pytest.fixture
def unrelated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project of someone else's, in a venv where condaqa is installed: a cutover marker of its own."""
    monkeypatch.delenv("CONDAQA_SITE", raising=False)
    pytester.makeini("[pytest]\naddopts = --strict-markers\nmarkers =\n    cutover: our database cutover tests\n")
    pytester.makepyfile(test_db="import pytest\n\n@pytest.mark.cutover\ndef test_switch_db():\n    assert True\n")
    return pytester


def test_an_unrelated_projects_own_cutover_marker_is_left_alone(unrelated: pytest.Pytester) -> None:
    result = run(unrelated)
    assert result.ret == 0 and result.parseoutcomes()["passed"] == 1, result.stdout.str()
    assert "deselected" not in result.stdout.str()
    markers = run(unrelated, "--markers").stdout.str()
    assert markers.count("@pytest.mark.cutover") == 1 and "condaqa" not in markers


def test_the_plugin_imports_nothing_heavy_in_an_unrelated_project(unrelated: pytest.Pytester) -> None:
    """pytest starts in every project of the venv: until a site is active, condaqa loads its entry point only."""
    unrelated.makeconftest("import sys\n\n"
                           "def pytest_sessionfinish(session):\n"
                           "    loaded = [m for m in sys.modules if m.split('.')[0] in "
                           "('condaqa', 'rattler', 'yaml', 'jupyter_client')]\n"
                           "    open('loaded.txt', 'w').write(' '.join(sorted(loaded)))\n")
    assert run(unrelated).ret == 0
    assert (unrelated.path / "loaded.txt").read_text() == "condaqa condaqa.plugin condaqa.sitefile"


@pytest.mark.parametrize("text", ['[site]\ntitle = "Our lab pages"\nbase_url = "/lab"\n', '[pages]\nroot = "public"\n'],
                         ids=["site-table-without-root", "no-site-table"])
def test_a_manifests_site_toml_that_is_not_a_condaqa_site_is_not_taken_over(unrelated: pytest.Pytester,
                                                                             text: str) -> None:
    (unrelated.path / "manifests").mkdir()
    (unrelated.path / "manifests" / "site.toml").write_text(text)
    result = run(unrelated)
    assert result.ret == 0 and result.parseoutcomes()["passed"] == 1, result.stdout.str() + result.stderr.str()
    assert not [line for line in result.outlines + result.errlines if line.startswith(("condaqa", "ERROR"))]


@pytest.mark.parametrize("how", ["pyargs", "path"])
def test_the_suite_without_a_site_is_one_usage_error(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    monkeypatch.delenv("CONDAQA_SITE", raising=False)
    (pytester.path / "suite").symlink_to(Path(__file__).resolve().parent.parent / "condaqa" / "suite")
    args = ["--pyargs", "condaqa.suite"] if how == "pyargs" else ["suite/test_environments.py"]
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines(["ERROR: condaqa.suite qualifies a site, and none is named: *--site PATH*"])
    assert "Error" not in result.stdout.str() + result.stderr.str().replace("ERROR: ", "", 1)


def test_site_as_a_separate_argument_in_a_checkout_runs_what_the_checkout_runs(
        pytester: pytest.Pytester, project: Path, tmp_path: Path) -> None:
    """`pytest -n 2 --site /abs/elsewhere/site.toml`: pytest takes the path for a test path when it looks for its
    configuration, before any plugin loads; the run must still qualify with the suite and the checkout's tests."""
    elsewhere = tmp_path / "elsewhere"
    for name in ("manifests", "env_checks"):
        shutil.copytree(project / name, elsewhere / name)
    (project / "selftests").mkdir()  # what else a checkout holds: the harness's own tests
    (project / "selftests" / "conftest.py").write_text(
        "import pytest\n\ndef pytest_collection_modifyitems(items):\n"
        "    raise pytest.UsageError('the harness selftests were collected')\n")
    (project / "selftests" / "test_harness.py").write_text("def test_harness():\n    pass\n")
    result = run(pytester, "-n", "2", "--site", str(elsewhere / "manifests" / "site.toml"), "-k",
                 "nhis_reformat or test_every_kernel_has_a_display_name")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert result.parseoutcomes()["passed"] == required_tests(qualified_site_of(project), "nhis_reformat") + 1


def test_the_suite_installed_in_a_venv_inside_the_project_keeps_the_ids_of_a_checkout(
        pytester: pytest.Pytester, demo_site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """README's install puts .venv in the site project, under pytest's rootdir: ids stay `condaqa/suite/...`."""
    site_packages = pytester.path / ".venv" / "lib" / "python3" / "site-packages"
    shutil.copytree(Path(__file__).resolve().parent.parent / "condaqa", site_packages / "condaqa",
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("PYTHONPATH", str(site_packages))  # the copy is the condaqa that pytest loads
    pytester.makeini("[pytest]\n")
    result = run(pytester, "--collect-only", "-q", f"--site={demo_site.file}", "--pyargs", "condaqa.suite",
                 "-k", "nhis_reformat")
    ids = [line for line in result.outlines if "::" in line]
    assert ids and all(i.startswith("condaqa/suite/test_") for i in ids), result.stdout.str() + result.stderr.str()


def test_a_failed_build_reports_the_time_it_took(pytester: pytest.Pytester, project: Path) -> None:
    """The summary's build seconds of a build that failed at pip, after the conda part was built."""
    (project / "manifests" / "overrides" / "survey_weights.yml").write_text(
        "name: survey_weights\nchannels: [main, mpc]\ndependencies:\n  - python\n  - pip\n  - tabular=2.0.0\n"
        "  - pip:\n      - surveyweights==9.9\n")
    result = run(pytester, "-n", "0", "-k", "test_builds and survey_weights")
    assert result.ret == 1
    said = next(line for line in result.outlines if line.startswith("condaqa: survey_weights: FAILED at pip in "))
    seconds = float(said.rsplit(" ", 1)[1].rstrip("s"))
    with (project / "reports" / "summary.csv").open(newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["environment"] == "survey_weights")
    assert seconds > 0.5 and abs(float(row["build_seconds"]) - seconds) < 0.5, (row["build_seconds"], said)

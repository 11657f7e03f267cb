"""scripts/ and the CI examples, run as far as a machine without Jenkins or GitLab allows.

The GitLab job's and the Jenkins stage's shell lines run here in a site project pointing at
the demo (their install line aside: condaqa is already installed in this interpreter), and
what each server would publish, reports/junit.xml, must be there and valid. The README shows
the same files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fixture_sites import REPO, write_project
from lxml import etree

from condaqa.site import Site

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "data" / "junit-10.xsd")))
CI = REPO / "scripts" / "ci"


@pytest.fixture
def site_project(qualified_site: Site, tmp_path: Path) -> Path:
    """A site's qualification project, as the CI examples expect it: manifests/, env_checks/, scripts/;
    its site qualified before (the nightly job's usual case: the builds are up to date)."""
    project = tmp_path / "site-project"
    write_project(project, qualified_site.root)
    for name in ("pyproject.toml", "condaqa"):  # a site project has no copy of the repository's own settings
        target = project / name
        target.unlink() if target.is_file() or target.is_symlink() else shutil.rmtree(target)
    shutil.copytree(REPO / "scripts", project / "scripts", symlinks=True)
    return project


ONE_ENVIRONMENT = {"PYTEST_ADDOPTS": "-k nhis_reformat"}  # the wiring is under test; the full run is elsewhere


def run_lines(lines: list[str], project: Path, variables: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The job's lines in one shell, as a runner would, with this interpreter's bin first on PATH."""
    environ = {**os.environ, **variables, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(["bash", "-e", "-c", "\n".join(lines)], cwd=project, env=environ, capture_output=True,
                          text=True, timeout=900)


def test_the_gitlab_job_qualifies_and_publishes_junit(site_project: Path) -> None:
    job = yaml.safe_load((CI / "gitlab-ci.yml").read_text())["qualify"]
    assert job["artifacts"]["reports"]["junit"] == "reports/junit.xml" and job["artifacts"]["when"] == "always"
    install, *lines = job["script"]
    assert "pip install" in install
    done = run_lines(lines, site_project, {**job["variables"], **ONE_ENVIRONMENT})
    assert done.returncode == 0, done.stdout + done.stderr
    assert SCHEMA.validate(etree.parse(str(site_project / job["artifacts"]["reports"]["junit"])))


def test_the_jenkins_stage_qualifies_and_publishes_junit(site_project: Path) -> None:
    text = (CI / "Jenkinsfile").read_text()
    steps = re.findall(r"^\s*sh '(.+)'$", text, re.MULTILINE)
    variables = dict(re.findall(r"^\s*(CONDAQA_\w+) = '([^']*)'", text, re.MULTILINE))
    published = re.search(r"junit '([^']+)'", text)
    assert published and published.group(1) == "reports/junit.xml" and "post {" in text
    install, *lines = steps
    assert "pip install" in install
    done = run_lines([line.replace(". .venv/bin/activate && ", "") for line in lines], site_project,
                     {**variables, **ONE_ENVIRONMENT})
    assert done.returncode == 0, done.stdout + done.stderr
    assert SCHEMA.validate(etree.parse(str(site_project / published.group(1))))


def test_qualify_exits_with_pytests_code_and_keeps_the_last_reports(site_project: Path) -> None:
    (site_project / "env_checks" / "nhis_reformat" / "check_fails.py").write_text("raise SystemExit(1)\n")
    variables = {"CONDAQA_SITE": "manifests/site.toml"}
    assert run_lines(["scripts/qualify -k nhis_reformat"], site_project, variables).returncode == 1
    kept = (site_project / "reports" / "junit.xml").read_bytes()
    assert run_lines(["scripts/qualify -k no_such_test"], site_project, variables).returncode == 5
    assert (site_project / "reports" / "junit.xml").read_bytes() == kept


def test_qualify_and_cutover_are_commands_of_the_installed_package(site_project: Path) -> None:
    """A site project installed from a wheel has no scripts/: the package's own commands do their work."""
    from importlib.metadata import entry_points

    commands = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert commands.get("condaqa-qualify") == "condaqa.runners:qualify"
    assert commands.get("condaqa-cutover") == "condaqa.runners:cutover"
    shutil.rmtree(site_project / "scripts")
    variables = {"CONDAQA_SITE": "manifests/site.toml"}
    done = run_lines(["condaqa-qualify -k nhis_reformat"], site_project, variables)
    assert done.returncode == 0, done.stdout + done.stderr
    assert SCHEMA.validate(etree.parse(str(site_project / "reports" / "junit.xml")))
    listed = run_lines(["condaqa-cutover --collect-only -q"], site_project, variables)
    assert listed.returncode == 0 and "test_cutover.py::" in listed.stdout, listed.stdout + listed.stderr


def test_the_readme_shows_the_ci_examples() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in ("gitlab-ci.yml", "Jenkinsfile"):
        assert (CI / name).read_text() in readme, f"README.md must show scripts/ci/{name} as it is"


def test_the_readme_cron_line_runs_in_a_new_site_project(site_project: Path) -> None:
    """The crontab line as the README shows it, in a project that has never run (no reports/ yet)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    line = next(text for text in readme.splitlines() if text.startswith("0 2 * * *"))
    command = line.split(None, 5)[5].replace("/srv/qualify", str(site_project)).replace(". .venv/bin/activate && ", "")
    assert not (site_project / "reports").exists()
    done = run_lines([command], site_project, ONE_ENVIRONMENT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed" in (site_project / "reports" / "nightly.log").read_text()


def test_qualify_retries_only_what_failed_with_lf(site_project: Path) -> None:
    """README: `pytest --lf -n auto` retries what failed; scripts/qualify passes its arguments on. The fix
    changed the folder of nhis_reformat's other owner check too, so that check is stale until it runs again."""
    check = site_project / "env_checks" / "nhis_reformat" / "check_fixed_later.py"
    check.write_text("raise SystemExit(1)\n")
    variables = {"CONDAQA_SITE": "manifests/site.toml"}
    assert run_lines(["scripts/qualify -k nhis_reformat"], site_project, variables).returncode == 1
    check.write_text("print('fixed')\n")
    retried = run_lines(["scripts/qualify --lf"], site_project, variables)
    assert retried.returncode == 1 and "[1 item]" in retried.stdout and "1 passed" in retried.stdout, retried.stderr
    assert "condaqa: exit 1: nhis_reformat is not qualified; run its checks: pytest -k nhis_reformat" in retried.stdout
    assert run_lines(["scripts/qualify -k nhis_reformat"], site_project, variables).returncode == 0

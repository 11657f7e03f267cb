"""The cutover gate accepts only a complete qualification of the build that is on disk now.

Each reproduction of issue #9 runs the real plugin on a demo site (a pytester run that writes
results), then the real `condaqa cutover`: a partial run after a failure, an environment that
broke after it passed, a cutover started during a qualification, and an interrupted run each
end with the gate refusing (exit 1) and naming the environment and why; a full run then lets
the cutover through.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_sites import processes_with

QA_ONLY_FAILURE = 'import sys\nsys.exit(1 if "v4.8" in sys.prefix else 0)\n'
OWNER_CHECKS_OF_HLINK = "hlink and test_owner_check"  # its build (up to date) and owner checks, not the slow rest


def qualify(pytester: pytest.Pytester, *args: str, workers: str = "0") -> pytest.RunResult:
    """The qualification as users run it; in one process unless it matters (the selftests fill the cores)."""
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", workers, *args)


def condaqa(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    site_file = project / "manifests" / "site.toml"
    return subprocess.run([sys.executable, "-m", "condaqa.cli", "--site", str(site_file), *args], cwd=project,
                          capture_output=True, text=True, timeout=600)


def in_background(project: Path, *args: str) -> subprocess.Popen[bytes]:
    """A qualification in its own process group, as a terminal's foreground job.

    SIGINT is set back to its default first: a background job of a shell without job control (how
    CI runners and `cmd &` start the selftests) ignores it, and so would the run, which would then
    not be interrupted at all but finish."""
    return subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=project,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def interrupt(running: subprocess.Popen[bytes]) -> int:
    """Ctrl-C as a terminal sends it, to the whole process group, then wait until every process of the
    group is gone: an xdist worker still finishing would write into the shared demo after the test."""
    os.killpg(running.pid, signal.SIGINT)
    returncode = running.wait(timeout=600)
    deadline = time.monotonic() + 60
    while True:
        try:
            os.killpg(running.pid, 0 if time.monotonic() < deadline else signal.SIGKILL)
        except ProcessLookupError:
            return returncode
        time.sleep(0.05)


def assert_refused(project: Path, *words: str) -> str:
    done = condaqa(project, "cutover")
    assert done.returncode == 1, done.stdout + done.stderr
    for word in words:
        assert word in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


def test_a_partial_run_after_a_failure_does_not_pass_the_gate(pytester, qualified_project, demo_site):
    project = qualified_project
    (project / "env_checks" / "hlink" / "check_regression.py").write_text(QA_ONLY_FAILURE)
    assert qualify(pytester, "-k", OWNER_CHECKS_OF_HLINK).ret == 1
    assert_refused(project, "hlink")
    builds_only = qualify(pytester, "-k", "test_builds", workers="2")
    assert builds_only.ret == 0, builds_only.stdout.str()
    refused = assert_refused(project, "hlink: failed", "check_regression.py")
    assert os.readlink(demo_site.root / "current") == "v4.3", refused


def test_an_environment_broken_after_it_passed_does_not_pass_the_gate(qualified_project):
    project = qualified_project
    (project / "manifests" / "overrides" / "survey_weights.yml").write_text(
        "name: survey_weights\nchannels: [main, mpc]\ndependencies:\n  - python\n  - pip\n  - tabular=2.0.0\n"
        "  - pip:\n      - surveyweights==9.9\n")
    assert condaqa(project, "replicate", "--env", "survey_weights").returncode == 1
    assert_refused(project, "survey_weights: failed", "pip")


def test_an_environment_emptied_after_it_passed_does_not_pass_the_gate(qualified_project, demo_site):
    project = qualified_project
    prefix = demo_site.root / "v4.8" / "envs" / "hlink"
    for child in prefix.iterdir():  # what a full disk during a rebuild leaves: the history file and nothing else
        if child.name != "conda-meta":
            subprocess.run(["rm", "-rf", str(child)], check=True)
    assert_refused(project, "hlink:", str(prefix))


def test_a_cutover_during_a_qualification_is_refused(qualified_project, demo_site):
    project = qualified_project
    passed = condaqa(project, "cutover", "--keep-qa")  # the qualification passed: the gate would let it through
    assert passed.returncode == 0, passed.stderr
    assert condaqa(project, "rollback").returncode == 0
    running = in_background(project, "-n", "2", "--rebuild", "-k", "nhis_reformat or survey_weights")  # one each
    try:
        logs = project / "reports" / "logs"
        deadline = time.monotonic() + 120
        while not any("removing the previous build" in log.read_text() for log in logs.glob("*.log")):
            assert time.monotonic() < deadline and running.poll() is None, "the qualification never started a build"
            time.sleep(0.05)
        refused = assert_refused(project, "being qualified")
    finally:  # the rest of the run is not the point: Ctrl-C it
        interrupt(running)
    assert os.readlink(demo_site.root / "current") == "v4.3", refused


def test_an_interrupted_run_does_not_pass_the_gate(qualified_project):
    project = qualified_project
    slow = f"check_slow_{os.getpid()}.py"  # a name no other test's process has
    (project / "env_checks" / "hlink" / slow).write_text("import time\ntime.sleep(60)\n")
    running = in_background(project, "-n", "0", "-k", OWNER_CHECKS_OF_HLINK)
    deadline = time.monotonic() + 120
    while not processes_with(f"hlink/{slow}"):  # its copy, as the sandbox runs it
        assert time.monotonic() < deadline and running.poll() is None, "the slow check never started"
        time.sleep(0.05)
    assert interrupt(running) == pytest.ExitCode.INTERRUPTED, "the run was not interrupted"
    assert_refused(project, "hlink:", slow)


def test_a_full_run_passes_and_a_new_check_makes_its_environment_stale(pytester, qualified_project, demo_site):
    project = qualified_project
    (project / "env_checks" / "hlink" / "check_added_later.py").write_text("print('fine')\n")
    assert_refused(project, "hlink: stale", "check_added_later.py")
    assert qualify(pytester, "-k", "hlink").ret == 0
    passed = condaqa(project, "cutover")
    assert passed.returncode == 0, passed.stderr
    assert os.readlink(demo_site.root / "current") == "v4.8"


def test_one_environment_retried_keeps_the_others_qualified(pytester, qualified_project):
    project = qualified_project
    (project / "env_checks" / "nhis_reformat" / "check_flaky.py").write_text(
        "import os, sys\nsys.exit(0 if os.path.exists(os.environ['CONDAQA_CHECK'] + '.fixed') else 1)\n")
    assert qualify(pytester, "-k", "nhis").ret == 1
    assert_refused(project, "nhis_reformat: failed")
    (project / "env_checks" / "nhis_reformat" / "check_flaky.py.fixed").touch()
    assert qualify(pytester, "-k", "nhis").ret == 0
    done = condaqa(project, "cutover")
    assert done.returncode == 0, done.stderr


def test_status_names_each_verdict(pytester, qualified_project, demo_site):
    project = qualified_project
    (project / "env_checks" / "hlink" / "check_regression.py").write_text(QA_ONLY_FAILURE)
    assert qualify(pytester, "-k", OWNER_CHECKS_OF_HLINK).ret == 1
    assert qualify(pytester, "--rebuild", "-k", "listed_twice and not key_packages").ret == 0
    (project / "env_checks" / "git_installed" / "check_new.py").write_text("print('new')\n")
    assert condaqa(project, "replicate", "--rebuild", "--env", "survey_weights").returncode == 0
    out = condaqa(project, "status").stdout
    block = out.split("qualification of v4.8 (qa):\n", 1)[1].split("\n")
    lines = {line.split()[0]: line for line in block[:block.index(next(b for b in block if not b.startswith("  ")))]}
    assert lines["hlink"].split()[2] == "failed" and "check_regression.py" in lines["hlink"]
    assert lines["survey_weights"].split()[2] == "pending"
    assert lines["listed_twice"].split()[2] == "partial" and "imports" in lines["listed_twice"]
    assert lines["git_installed"].split()[2] == "stale" and "check_new.py" in lines["git_installed"]
    assert lines["nhis_reformat"].split()[2] == "passed" and lines["old_not_used"].split()[2] == "exported"


def test_a_kernel_that_runs_an_export_only_environment_is_reported(pytester, qualified_project):
    project = qualified_project
    ini = project / "manifests" / "environments.ini"
    ini.write_text(ini.read_text().replace("hlink = REPLICATE", "hlink = export"))
    toml = project / "manifests" / "environments.toml"
    toml.write_text(toml.read_text().replace('kernel = "hlink"\n', ""))
    assert qualify(pytester, "-k", "hlink").ret == 1
    assert_refused(project, "hlink: export-only, but kernel hlink runs it")

"""The cutover gate accepts only a complete qualification of the build that is on disk now.

Each reproduction of issue #9 runs the real plugin on a demo site (a pytester run that writes
results), then the real `condaqa cutover`: a partial run after a failure, an environment that
broke after it passed, a cutover started during a qualification, and an interrupted run each
end with the gate refusing (exit 1) and naming the environment and why; a full run then lets
the cutover through.
"""

from __future__ import annotations

import json
import marshal
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_sites import processes_with

from condaqa.site import Site

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
    group is gone: an xdist worker still finishing would write into the site while the next test's copy is made."""
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


def test_a_partial_run_after_a_failure_does_not_pass_the_gate(
        pytester: pytest.Pytester, qualified_project: Path, demo_site: Site) -> None:
    project = qualified_project
    (project / "env_checks" / "hlink" / "check_regression.py").write_text(QA_ONLY_FAILURE)
    assert qualify(pytester, "-k", OWNER_CHECKS_OF_HLINK).ret == 1
    assert_refused(project, "hlink")
    builds_only = qualify(pytester, "-k", "test_builds", workers="2")  # every build passes; hlink stays failed
    assert builds_only.ret == 1 and "failed" not in builds_only.parseoutcomes(), builds_only.stdout.str()
    builds_only.stdout.fnmatch_lines(["condaqa: exit 1: hlink is not qualified; run its checks: pytest -k hlink"])
    refused = assert_refused(project, "hlink: failed", "check_regression.py")
    assert os.readlink(demo_site.root / "current") == "v4.3", refused


def test_an_environment_broken_after_it_passed_does_not_pass_the_gate(qualified_project: Path) -> None:
    project = qualified_project
    (project / "manifests" / "overrides" / "survey_weights.yml").write_text(
        "name: survey_weights\nchannels: [main, mpc]\ndependencies:\n  - python\n  - pip\n  - tabular=2.0.0\n"
        "  - pip:\n      - surveyweights==9.9\n")
    assert condaqa(project, "replicate", "--env", "survey_weights").returncode == 1
    assert_refused(project, "survey_weights: failed", "pip")


def test_an_environment_emptied_after_it_passed_does_not_pass_the_gate(
        qualified_project: Path, demo_site: Site) -> None:
    project = qualified_project
    prefix = demo_site.root / "v4.8" / "envs" / "hlink"
    for child in prefix.iterdir():  # what a full disk during a rebuild leaves: the history file and nothing else
        if child.name != "conda-meta":
            subprocess.run(["rm", "-rf", str(child)], check=True)
    assert_refused(project, "hlink:", str(prefix))


def test_a_cutover_during_a_qualification_is_refused(qualified_project: Path, demo_site: Site) -> None:
    project = qualified_project
    passed = condaqa(project, "cutover", "--keep-qa")  # the qualification passed: the gate would let it through
    assert passed.returncode == 0, passed.stderr
    assert condaqa(project, "rollback").returncode == 0
    slow = f"check_slow_{os.getpid()}.py"  # a name no other test's process has
    (project / "env_checks" / "survey_weights" / slow).write_text("import time\ntime.sleep(120)\n")
    running = in_background(project, "-n", "2", "--rebuild", "-k", "nhis_reformat or survey_weights")  # one each
    try:
        deadline = time.monotonic() + 300
        while not processes_with(f"survey_weights/{slow}"):  # the run is under way: a worker runs its check
            assert time.monotonic() < deadline and running.poll() is None, "the qualification never got to the check"
            time.sleep(0.05)
        refused = assert_refused(project, "being qualified")
    finally:  # the rest of the run is not the point: Ctrl-C it
        interrupt(running)
    assert os.readlink(demo_site.root / "current") == "v4.3", refused


def test_an_interrupted_run_does_not_pass_the_gate(qualified_project: Path) -> None:
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


def test_a_full_run_passes_and_a_new_check_makes_its_environment_stale(
        pytester: pytest.Pytester, qualified_project: Path, demo_site: Site) -> None:
    project = qualified_project
    (project / "env_checks" / "hlink" / "check_added_later.py").write_text("print('fine')\n")
    assert_refused(project, "hlink: stale", "check_added_later.py")
    assert qualify(pytester, "-k", "hlink").ret == 0
    passed = condaqa(project, "cutover")
    assert passed.returncode == 0, passed.stderr
    assert os.readlink(demo_site.root / "current") == "v4.8"


def test_one_environment_retried_keeps_the_others_qualified(pytester: pytest.Pytester, qualified_project: Path) -> None:
    project = qualified_project
    (project / "env_checks" / "nhis_reformat" / "check_flaky.py").write_text(
        "import os, sys\nsys.exit(0 if os.path.exists(os.environ['CONDAQA_CHECK'] + '.fixed') else 1)\n")
    assert qualify(pytester, "-k", "nhis").ret == 1
    assert_refused(project, "nhis_reformat: failed")
    (project / "env_checks" / "nhis_reformat" / "check_flaky.py.fixed").touch()
    assert qualify(pytester, "-k", "nhis").ret == 0
    done = condaqa(project, "cutover")
    assert done.returncode == 0, done.stderr


def test_status_names_each_verdict(pytester: pytest.Pytester, qualified_project: Path, demo_site: Site) -> None:
    project = qualified_project
    (project / "env_checks" / "hlink" / "check_regression.py").write_text(QA_ONLY_FAILURE)
    assert qualify(pytester, "-k", OWNER_CHECKS_OF_HLINK).ret == 1
    assert qualify(pytester, "--rebuild", "-k", "listed_twice and not key_packages").ret == 1  # left partial
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


def test_a_kernel_that_runs_an_export_only_environment_is_reported(
        pytester: pytest.Pytester, qualified_project: Path) -> None:
    project = qualified_project
    ini = project / "manifests" / "environments.ini"
    ini.write_text(ini.read_text().replace("hlink = REPLICATE", "hlink = export"))
    toml = project / "manifests" / "environments.toml"
    toml.write_text(toml.read_text().replace('kernel = "hlink"\n', ""))
    assert qualify(pytester, "-k", "hlink").ret == 1
    assert_refused(project, "hlink: export-only, but kernel hlink runs it")


# What the gate trusts cannot be changed after the qualification without it noticing (issue #18, cases 7 to 14).

def _replace(path: Path, data: bytes, *, keep_mtime: bool = False) -> None:
    """Write `data` as `path` through a new file (qa's environments here are hard links to the kept copy)."""
    before = path.stat()
    fresh = path.with_name(path.name + ".new")
    fresh.write_bytes(data)
    os.replace(fresh, path)
    if keep_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _tabular(demo_site: Site, *parts: str) -> Path:
    return next((demo_site.root / "v4.8" / "envs" / "hlink").glob("lib/python*/site-packages/tabular")).joinpath(*parts)


def test_a_trojan_pyc_in_qa_after_the_qualification_makes_it_stale(qualified_project: Path, demo_site: Site) -> None:
    pyc = next(_tabular(demo_site, "__pycache__").glob("__init__.*.pyc"))
    trojan = compile("import os\nos.system('id > /tmp/condaqa-trojan')\n", "__init__.py", "exec")
    _replace(pyc, pyc.read_bytes()[:16] + marshal.dumps(trojan))  # the header Python checks stays as it was
    assert_refused(qualified_project, "hlink: stale")


def test_a_same_size_edit_with_its_mtime_put_back_makes_it_stale(qualified_project: Path, demo_site: Site) -> None:
    source = _tabular(demo_site, "__init__.py")
    text = source.read_bytes()
    _replace(source, text.replace(b"tabular", b"TABULAR", 1), keep_mtime=True)
    assert source.stat().st_size == len(text)
    assert_refused(qualified_project, "hlink: stale")


def test_an_edited_helper_of_an_owner_check_makes_it_stale(pytester: pytest.Pytester, qualified_project: Path) -> None:
    checks = qualified_project / "env_checks" / "hlink"
    (checks / "helper_lib.py").write_text("OK = True\n")
    (checks / "check_helped.py").write_text("import sys\nimport helper_lib\nsys.exit(0 if helper_lib.OK else 1)\n")
    assert qualify(pytester, "-k", OWNER_CHECKS_OF_HLINK).ret == 0
    (checks / "helper_lib.py").write_text("OK = False\n")
    assert_refused(qualified_project, "hlink: stale", "hlink/check_helped.py changed since it ran")


def test_a_kernel_spec_edited_after_the_qualification_makes_it_stale(qualified_project: Path, demo_site: Site) -> None:
    spec = demo_site.kernels_dir / "hlink" / "kernel.json"
    spec.write_text(spec.read_text().replace(f"{demo_site.root}/v4.3/", f"{demo_site.root}/v9.9/"))
    assert_refused(qualified_project, "hlink: stale", "kernel:hlink changed since it ran")


def test_a_result_edited_by_hand_to_passed_is_no_result(
        pytester: pytest.Pytester, qualified_project: Path, demo_site: Site) -> None:
    (qualified_project / "env_checks" / "hlink" / "check_regression.py").write_text(QA_ONLY_FAILURE)
    assert qualify(pytester, "-k", OWNER_CHECKS_OF_HLINK).ret == 1
    path = demo_site.state_dir / "results" / "v4.8" / "hlink.json"
    data = json.loads(path.read_text())
    result = data.get("result", data)  # as signed, or as an older condaqa wrote it
    for check in result["checks"].values():
        check.update(outcome="passed", category="", detail="")
    path.write_text(json.dumps(data))
    assert_refused(qualified_project, "hlink: never", "does not verify")


def test_an_environment_of_current_missing_from_the_manifest_is_named(qualified_project: Path, demo_site: Site) -> None:
    envs = demo_site.root / "v4.3" / "envs"
    subprocess.run(["cp", "-al", str(envs / "survey_weights"), str(envs / "unlisted_env")], check=True)
    try:
        assert_refused(qualified_project, "unlisted_env: in", "not in")
    finally:
        shutil.rmtree(envs / "unlisted_env")


def test_kernel_folders_whose_names_collide_are_refused(qualified_project: Path, demo_site: Site) -> None:
    shadow = demo_site.kernels_dir / "HLINK"
    shadow.mkdir()
    (shadow / "kernel.json").write_text(json.dumps({"argv": ["/no/such/python", "-f", "{connection_file}"],
                                                    "display_name": "broken", "language": "python"}))
    assert_refused(qualified_project, "kernel name hlink", str(shadow / "kernel.json"))


def test_a_kernel_that_runs_through_a_shell_is_started_or_refused(
        pytester: pytest.Pytester, qualified_project: Path, demo_site: Site) -> None:
    python = f"{demo_site.root}/v4.3/envs/hlink/bin/python"
    shelled = demo_site.kernels_dir / "shelled"
    shelled.mkdir()
    (shelled / "kernel.json").write_text(json.dumps({
        "argv": ["/bin/sh", "-c", f'exec {python} -m ipykernel_launcher -f "$0"', "{connection_file}"],
        "display_name": "through a shell", "language": "python"}))
    assert_refused(qualified_project, "hlink: stale", "kernel:shelled is new")
    ran = qualify(pytester, "-v", "-k", "hlink")  # -k ENV selects its kernels' tests, whatever their names
    assert ran.ret == 0, ran.stdout.str()
    ran.stdout.fnmatch_lines(["*test_kernel_starts?shelled? PASSED*"])
    assert condaqa(qualified_project, "cutover", "--dry-run").returncode == 0
    foreign = demo_site.kernels_dir / "system-python"
    foreign.mkdir()
    (foreign / "kernel.json").write_text(json.dumps({"argv": ["/usr/bin/python3", "-m", "ipykernel_launcher", "-f",
                                                              "{connection_file}"], "language": "python"}))
    assert_refused(qualified_project, "kernel system-python", "names no environment's python")
    site_file = qualified_project / "manifests" / "site.toml"
    site_file.write_text(site_file.read_text() + 'unqualified_kernels = ["system-python"]\n')
    dry = condaqa(qualified_project, "cutover", "--dry-run")
    assert dry.returncode == 0 and "gate: passes" in dry.stdout, dry.stdout + dry.stderr


# A check cannot change the verdict it is judged by (issue #18, cases 4 and 5).

DAEMON = """import json, pathlib, subprocess, sys, time
root = pathlib.Path(sys.argv[1])
results = root / ".condaqa" / "results" / "v4.8" / "survey_weights.json"
subprocess.run(["mount", "-o", "remount,rw,bind", str(root)], capture_output=True)
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        data = json.loads(results.read_text())
        checks = data.get("result", data)["checks"]
        if any(k.endswith("check_daemon.py") and v["outcome"] == "failed" for k, v in checks.items()):
            for check in checks.values():
                check.update(outcome="passed", category="", detail="")
            results.write_text(json.dumps(data))
            break
    except (OSError, ValueError, KeyError):
        pass
    time.sleep(0.1)
"""
FORKS_A_DAEMON = """import os, pathlib, sys
root = pathlib.Path(os.environ["CONDAQA_ENV_PREFIX"]).parents[2]
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", {daemon!r}, str(root), {marker!r}])
    os._exit(0)
sys.exit(1)
"""


def test_a_daemon_left_by_a_check_cannot_rewrite_its_result(pytester: pytest.Pytester, qualified_project: Path) -> None:
    """Case 4: a failing check double-forks a daemon that waits for its failure to be recorded, then sets every
    outcome to passed (before the fix, it outlived pytest and did, and the cutover went through)."""
    marker = f"condaqa-daemon-{os.getpid()}-{time.monotonic_ns()}"
    check = qualified_project / "env_checks" / "survey_weights" / "check_daemon.py"
    check.write_text(FORKS_A_DAEMON.format(daemon=DAEMON, marker=marker))
    assert qualify(pytester, "-k", "survey_weights and owner").ret == 1
    deadline = time.monotonic() + 150  # the daemon gives up after 120 s
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with(marker) == []
    assert_refused(qualified_project, "survey_weights: failed", "check_daemon.py")


def test_a_check_cannot_take_its_environment_out_of_the_manifest(
        pytester: pytest.Pytester, qualified_project: Path) -> None:
    """Case 5: a check that marks its own environment export-only in environments.ini (before the fix, the
    qualification project was writable, and the cutover went through)."""
    ini = qualified_project / "manifests" / "environments.ini"
    before = ini.read_text()
    (qualified_project / "env_checks" / "survey_weights" / "check_manifest.py").write_text(
        f"import pathlib, sys\nini = pathlib.Path({str(ini)!r})\n"
        "try:\n    ini.write_text(ini.read_text().replace('survey_weights = REPLICATE', 'survey_weights = export'))\n"
        "except OSError as exc:\n    print('could not write:', exc)\nsys.exit(1)\n")
    assert qualify(pytester, "-k", "survey_weights and owner").ret == 1
    assert ini.read_text() == before
    assert_refused(qualified_project, "survey_weights: failed", "check_manifest.py")


def test_a_dry_run_shows_the_gate_and_every_change_and_makes_none(qualified_project: Path, demo_site: Site) -> None:
    audit = demo_site.state_dir / "audit.log"
    before = audit.read_text() if audit.exists() else ""
    specs = {p: p.read_text() for p in demo_site.kernels_dir.glob("*/kernel.json")}
    dry = condaqa(qualified_project, "cutover", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    out = dry.stdout
    assert "dry run: nothing is changed" in out and "gate: passes" in out
    assert f"kernel spec {demo_site.kernels_dir / 'hlink' / 'kernel.json'} would be rewritten" in out
    for env in ("old_not_used", "scratch_jdoe"):  # export-only: not in v4.8
        assert f"environment {env} would leave {demo_site.root / 'current'}/envs" in out
    assert f"{demo_site.root / 'qa'}: would be removed" in out
    assert os.readlink(demo_site.root / "current") == "v4.3"
    assert (audit.read_text() if audit.exists() else "") == before
    assert {p: p.read_text() for p in demo_site.kernels_dir.glob("*/kernel.json")} == specs
    (qualified_project / "env_checks" / "hlink" / "check_added_later.py").write_text("print('fine')\n")
    refused = condaqa(qualified_project, "cutover", "--dry-run")
    assert refused.returncode == 1 and "gate: refuses, 1 problem(s):" in refused.stdout
    assert "hlink: stale" in refused.stdout

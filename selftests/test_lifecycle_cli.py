"""The lifecycle commands end to end through `condaqa.cli.main`, and the cutover pytest fixture."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml
from helpers_sites import NEW, OLD, PY, audit_state, make_env, make_installation, make_site, qualify, write_kernel
from lxml import etree

from condaqa.cli import main
from condaqa.commands.lifecycle import lifecycle_status
from condaqa.lifecycle import audit, journal, switch
from condaqa.locks import site_lock
from condaqa.site import Site


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


def run(site: Site, *argv: str) -> int:
    return main(["--site", str(site.file), *argv])


def test_cutover_refuses_before_qualification_with_the_list(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(site, "cutover") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cutover to {NEW} refused, 2 problem(s):\n  - alpha: never: never qualified")
    assert os.readlink(site.current_link) == OLD


def test_force_without_reason_is_bad_input(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(site, "cutover", "--force") == 2
    assert "--force needs --reason TEXT" in capsys.readouterr().err


def test_forced_cutover_says_so(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(site, "cutover", "--force", "--reason", "deadline") == 0
    assert "forced past 2 gate problem(s); reason recorded: deadline" in capsys.readouterr().out


def test_cutover_then_rollback(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    qualify(site)
    assert run(site, "cutover") == 0
    out = capsys.readouterr().out
    assert f"kernel spec {site.kernels_dir}/alpha-pinned/kernel.json: {site.root}/{OLD} -> {site.root}/{NEW}" in out
    assert f"{site.qa_link}: removed" in out
    assert out.endswith(f"cutover: {site.current_link} -> {NEW} (was {OLD}); logged in {audit.log_file(site)}\n")
    assert run(site, "rollback", "--reason", "pandas broke") == 0
    out = capsys.readouterr().out
    assert f"{site.qa_link}: restored -> {NEW}" in out
    assert out.endswith(f"rollback: {site.current_link} -> {OLD} (was {NEW}); logged in {audit.log_file(site)}\n")
    assert audit.records(site)[-1]["reason"] == "pandas broke"


def test_a_rollback_onto_where_qa_points_says_to_move_qa(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    """`cutover`, `qa v4.3`, `rollback`: qa and current now name one installation, which no qualification takes."""
    qualify(site)
    assert run(site, "cutover") == 0 and run(site, "qa", OLD) == 0
    assert run(site, "rollback") == 0
    out = capsys.readouterr().out
    assert f"warning: {site.qa_link} points to {OLD}, where {site.current_link} now points too: " in out


def conda43_leftovers(site: Site) -> None:
    """What conda 4.3 leaves that a new installation does not: an export-only environment (nothing of it is
    built in qa), and links to conda, activate and deactivate in every environment's bin/."""
    make_env(site.root / OLD / "envs" / "legacy", "legacy")
    for name in ("activate", "conda", "deactivate"):
        (site.root / OLD / "envs" / "alpha" / "bin" / name).symlink_to(site.root / OLD / "bin" / name)


def test_the_cutover_says_which_environments_and_executables_leave_current(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    conda43_leftovers(site)
    qualify(site)
    assert run(site, "cutover", "--dry-run") == 0
    dry = capsys.readouterr().out
    assert run(site, "cutover") == 0
    out = capsys.readouterr().out
    current = site.current_link
    for said, verb in ((dry, "would leave"), (out, "left")):
        assert f"environment legacy {verb} {current}/envs ({NEW} does not hold it; it stays in {OLD})" in said
        assert (f"executable {current}/envs/alpha/bin/activate {verb} {current} ({NEW}'s alpha has none); call "
                "`conda activate alpha` (conda 4.4 and newer)") in said
        assert f"executable {current}/envs/alpha/bin/deactivate {verb} {current}" in said
        assert "envs/beta/bin" not in said
    record = audit.records(site)[-1]
    assert record["environments_leaving"] == ["legacy"]
    assert record["executables_leaving"] == {"alpha": ["activate", "conda", "deactivate"]}
    assert lifecycle_status(site)[-1].endswith("2 kernel spec(s) rewritten, 1 environment(s) and 3 executable(s) "
                                               "left current")


def test_rollback_without_cutover_is_an_error(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(site, "rollback") == 2
    assert "no cutover recorded" in capsys.readouterr().err


def test_lock_contention_is_reported(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    qualify(site)
    with site_lock(site, "condaqa rollback"):
        assert run(site, "cutover") == 2
    err = capsys.readouterr().err
    assert "the site is locked by 'condaqa rollback' (pid" in err and "try again when it is done" in err


def test_status_lines_tell_the_story(site: Site) -> None:
    qualify(site)
    assert lifecycle_status(site)[0] == "rollback would return to: nothing (no cutover recorded)"
    assert run(site, "cutover") == 0
    lines = lifecycle_status(site)
    assert lines[0].startswith(f"rollback would return to: {OLD} (current before the cutover of ")
    assert lines[1] == f"audit log {audit.log_file(site)}: 1 action(s)"
    assert lines[2].endswith(f"cutover {OLD} -> {NEW}, 2 kernel spec(s) rewritten")
    assert run(site, "rollback") == 0
    lines = lifecycle_status(site)
    nothing = f"nothing ({site.current_link} points to {OLD}, as before the last cutover)"
    assert lines[0] == f"rollback would return to: {nothing}"
    assert lines[-1].endswith(f"rollback {NEW} -> {OLD}, 2 kernel spec(s) rewritten")


def test_status_shows_pending_intent_and_lock(site: Site) -> None:
    qualify(site)
    switch.cutover(site)
    intent = switch.rollback(site).intent
    journal.intent_file(site).write_text(json.dumps(asdict(intent)))
    with site_lock(site, "condaqa retire v4.1"):
        lines = lifecycle_status(site)
    assert lines[0].startswith(f"pending: an interrupted rollback {NEW} -> {OLD} (")
    assert lines[1].startswith("lock: locked by 'condaqa retire v4.1' (pid")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        pytest.param(OLD, "current points to it", id="current"),
        pytest.param(NEW, "qa points to it", id="qa"),
        pytest.param("kernels", "not an installation folder", id="not-an-installation"),
        pytest.param("../conda", "not an installation folder", id="outside"),
    ],
)
def test_retire_refusals(site: Site, capsys: pytest.CaptureFixture[str], name: str, why: str) -> None:
    assert run(site, "retire", name, "--yes") == 2
    assert why in capsys.readouterr().err
    assert (site.root / name).exists()


def test_retire_needs_yes(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(site, "retire", OLD) == 2
    assert f"retire deletes {site.root}/{OLD}; add --yes to confirm" in capsys.readouterr().err


def test_retire_refuses_the_rollback_target_and_pinned_kernels(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    qualify(site)
    assert run(site, "cutover", "--keep-qa") == 0
    os.unlink(site.qa_link)
    assert run(site, "retire", OLD, "--yes") == 2
    assert "`condaqa rollback` would return to it" in capsys.readouterr().err
    make_installation(site.root / "v4.1", ("alpha",))
    write_kernel(site.root, "old", f"{site.root}/v4.1/envs/alpha/bin/python")
    assert run(site, "retire", "v4.1", "--yes") == 2
    assert f"kernel specs still name it: {site.kernels_dir}/old/kernel.json" in capsys.readouterr().err


def test_retire_deletes_an_old_installation_or_its_package_cache(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("v4.0", "v4.1"):
        make_installation(site.root / name, ("alpha",))
    assert run(site, "retire", "v4.0", "--pkgs-only", "--yes") == 0
    assert (site.root / "v4.0" / "envs").is_dir() and list((site.root / "v4.0" / "pkgs").iterdir()) == []
    assert run(site, "retire", "v4.1", "--yes") == 0
    assert not (site.root / "v4.1").exists() and not list(site.root.glob(".v4.1*"))
    assert capsys.readouterr().out.splitlines()[-1] == f"retired {site.root}/v4.1"
    assert [(r["action"], r["installation"], r["pkgs_only"]) for r in audit.records(site)] == [
        ("retire", "v4.0", True),
        ("retire", "v4.1", False),
    ]


def test_after_a_cutover_the_old_package_cache_goes_and_rollback_still_works(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    """Runbook step 11: the rollback point's environments hold their own files, so its cache can go."""
    qualify(site)
    (site.root / OLD / "pkgs" / "tabular-1.0-0.tar.bz2").write_bytes(b"cached")
    assert run(site, "cutover") == 0
    assert run(site, "retire", OLD, "--pkgs-only", "--yes") == 0, capsys.readouterr().err
    assert list((site.root / OLD / "pkgs").iterdir()) == [] and (site.root / OLD / "envs" / "alpha").is_dir()
    assert run(site, "rollback") == 0
    assert os.readlink(site.current_link) == OLD


def test_retire_pkgs_only_of_the_rollback_point_refuses_links_into_its_cache(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    qualify(site)
    assert run(site, "cutover") == 0
    linked = site.root / OLD / "envs" / "alpha" / "lib" / "data.txt"
    linked.symlink_to(site.root / OLD / "pkgs" / "cache")
    assert run(site, "retire", OLD, "--pkgs-only", "--yes") == 2
    assert f"still reached through a link from what production or a rollback uses: {linked}" in capsys.readouterr().err
    assert (site.root / OLD / "pkgs" / "cache").is_dir()


def test_finalize_drops_the_rollback_point_so_the_old_installation_can_be_retired(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    qualify(site)
    assert run(site, "cutover") == 0
    assert run(site, "retire", OLD, "--yes") == 2
    assert "`condaqa finalize` drops the rollback point" in capsys.readouterr().err
    assert run(site, "finalize", "--reason", "a week without complaints") == 0
    out = capsys.readouterr().out
    assert f"finalized the cutover {OLD} -> {NEW}" in out and "`condaqa rollback` no longer returns" in out
    record = audit.records(site)[-1]
    assert (record["action"], record["from"], record["to"], record["reason"]) == (
        "finalize", OLD, NEW, "a week without complaints")
    assert record["cutover"] == audit.records(site)[-2]["id"]
    status = lifecycle_status(site)
    assert status[0].startswith(f"rollback would return to: nothing (the cutover {OLD} -> {NEW} was finalized ")
    assert status[-1].endswith(f"finalize of the cutover {OLD} -> {NEW}, reason: a week without complaints")
    assert run(site, "rollback") == 2
    assert f"the cutover {OLD} -> {NEW} was finalized" in capsys.readouterr().err
    assert os.readlink(site.current_link) == NEW
    assert run(site, "retire", OLD, "--yes") == 0
    assert not (site.root / OLD).exists()


@pytest.mark.parametrize("before", [(), ("rollback",), ("finalize",)], ids=["no-cutover", "rolled-back", "twice"])
def test_finalize_refuses_when_there_is_no_rollback_point(
        site: Site, capsys: pytest.CaptureFixture[str], before: tuple[str, ...]) -> None:
    qualify(site)
    if before:
        assert run(site, "cutover") == 0
        assert run(site, *before) == 0
    capsys.readouterr()
    assert run(site, "finalize") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nothing to finalize" in err
    assert [r["action"] for r in audit.records(site)].count("finalize") == (1 if before == ("finalize",) else 0)


def test_new_installation_bare_points_qa_and_inherits_group_permissions(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    (site.root / OLD).chmod(0o2775)
    assert run(site, "new-installation", "v5.0", "--bare") == 0
    target = site.root / "v5.0"
    assert os.readlink(site.qa_link) == "v5.0" and (target / "conda-meta" / "history").is_file()
    assert stat.S_IMODE(target.stat().st_mode) == 0o2775
    assert stat.S_IMODE((target / "envs").stat().st_mode) & 0o2020 == 0o2020
    assert capsys.readouterr().out.endswith(f"{site.qa_link} -> v5.0; build and qualify it with `pytest -n auto`\n")
    record = audit.records(site)[-1]
    assert (record["action"], record["installation"], record["qa_before"]) == ("new-installation", "v5.0", NEW)


def test_new_installation_refuses_an_existing_target(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(site, "new-installation", NEW, "--bare") == 2
    assert f"{site.root}/{NEW}: already exists" in capsys.readouterr().err


def test_new_installation_runs_the_installer_unattended(site: Site, tmp_path: Path) -> None:
    installer = tmp_path / "Miniforge3-Linux-x86_64.sh"
    installer.write_text(
        'while getopts "bp:" o; do case $o in p) P=$OPTARG;; b) B=1;; esac; done\n'
        '[ "$B" = 1 ] || exit 3\nmkdir -p "$P/conda-meta" "$P/bin"\necho "channels: [conda-forge]" > "$P/.condarc"\n'
    )
    assert run(site, "new-installation", "v5.0", "--installer", str(installer)) == 0
    target = site.root / "v5.0"
    assert (target / "envs").is_dir() and (target / "pkgs").is_dir()
    assert yaml.safe_load((target / ".condarc").read_text()) == {"channels": [], "channel_priority": "strict"}
    assert os.readlink(site.qa_link) == "v5.0"


def test_failing_installer_is_reported(site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    installer = tmp_path / "broken.sh"
    installer.write_text('echo "checksum mismatch" >&2\nexit 7\n')
    assert run(site, "new-installation", "v5.0", "--installer", str(installer)) == 2
    assert f"-b -p {site.root}/v5.0 failed (exit 7): checksum mismatch" in capsys.readouterr().err
    assert os.readlink(site.qa_link) == NEW


def test_new_installation_needs_exactly_one_way(site: Site) -> None:
    with pytest.raises(SystemExit) as exited:
        run(site, "new-installation", "v5.0")
    assert exited.value.code == 2


# The cutover fixture of the shipped suite, run by pytest with the installed plugin, as `pytest -m cutover`.
def run_cutover_suite(site: Site, project: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    project.mkdir(exist_ok=True)
    argv = [sys.executable, "-m", "pytest", "--pyargs", "condaqa.suite.test_cutover", "-m", "cutover",
            "--site", str(site.file), "-p", "no:cacheprovider", "-rA", *extra]
    return subprocess.run(argv, cwd=project, capture_output=True, text=True, check=False)


@pytest.fixture
def plain_site(tmp_path: Path) -> Site:
    """A site whose kernel specs are not real kernels are of no use to the smoke tests: none here."""
    return make_site(tmp_path, kernels=False)


def test_cutover_fixture_swaps_and_smoke_tests(plain_site: Site, tmp_path: Path) -> None:
    site = plain_site
    qualify(site)
    done = run_cutover_suite(site, tmp_path / "project")
    assert done.returncode == 0, done.stdout + done.stderr
    assert any("PASSED" in line and "test_environment_imports[alpha]" in line for line in done.stdout.splitlines())
    assert "2 passed" in done.stdout
    assert os.readlink(site.current_link) == NEW and audit_state(site) == NEW


def test_cutover_fixture_rolls_back_when_a_smoke_test_fails(plain_site: Site, tmp_path: Path) -> None:
    site = plain_site
    needed = tmp_path / "beta-needs-this"  # outside the environment: the gate cannot see it go
    needed.touch()
    (site.root / NEW / "envs" / "beta" / "lib" / PY / "site-packages" / "beta_mod.py").write_text(
        f"import pathlib\nif not pathlib.Path({str(needed)!r}).exists():\n"
        "    raise ImportError('beta lost its data')\n")
    qualify(site)
    needed.unlink()
    done = run_cutover_suite(site, tmp_path / "project")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "test_environment_imports[beta]" in done.stdout and "FAILED" in done.stdout
    assert "cannot import beta_mod" in done.stdout and "ImportError: beta lost its data" in done.stdout
    assert os.readlink(site.current_link) == OLD and audit_state(site) == OLD
    assert audit.records(site)[-1]["reason"] == "1 smoke test(s) failed"


def test_cutover_fixture_reports_a_refused_gate(plain_site: Site, tmp_path: Path) -> None:
    done = run_cutover_suite(plain_site, tmp_path / "project")
    assert done.returncode == 1
    assert "cutover not performed:" in done.stdout and "alpha: never: never qualified" in done.stdout
    assert os.readlink(plain_site.current_link) == OLD


def test_cutover_fixture_refuses_to_run_in_several_workers(plain_site: Site, tmp_path: Path) -> None:
    qualify(plain_site)
    done = run_cutover_suite(plain_site, tmp_path / "project", "-n", "2")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert (done.stdout + done.stderr).count("run `pytest -m cutover -n 0`: one process must own the cutover") == 1
    assert os.readlink(plain_site.current_link) == OLD and audit.records(plain_site) == []


def test_the_cutover_run_writes_its_own_junit_and_leaves_the_qualifications(plain_site: Site, tmp_path: Path) -> None:
    qualify(plain_site)
    project = tmp_path / "project"
    (project / "reports").mkdir(parents=True)
    (project / "reports" / "junit.xml").write_text("<testsuites/>\n")  # the qualification's, published before
    done = run_cutover_suite(plain_site, project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"generated xml file: {project}/reports/cutover.xml" in done.stdout
    cases = [case.get("name") for case in etree.parse(str(project / "reports" / "cutover.xml")).iter("testcase")
             if case.find("skipped") is None]  # no kernels here: the kernel test has no parameter
    assert cases == ["test_environment_imports[alpha]", "test_environment_imports[beta]"]
    assert (project / "reports" / "junit.xml").read_text() == "<testsuites/>\n"


def test_after_a_cli_cutover_the_fixture_smoke_tests_current_as_it_is(plain_site: Site, tmp_path: Path) -> None:
    """Runbook step 9: `condaqa cutover`, then `pytest -m cutover -n 0` smoke-tests what it left."""
    site = plain_site
    qualify(site)
    assert run(site, "cutover") == 0
    done = run_cutover_suite(site, tmp_path / "project")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    assert f"no cutover to make ({site.qa_link} is absent): smoke-testing {site.current_link} -> {NEW}" in done.stdout
    assert os.readlink(site.current_link) == NEW and [r["action"] for r in audit.records(site)] == ["cutover"]


def test_after_a_cli_cutover_a_failed_smoke_test_names_the_rollback(plain_site: Site, tmp_path: Path) -> None:
    """The fixture undoes only a cutover it made: one made by `condaqa cutover` is the administrator's to undo."""
    site = plain_site
    qualify(site)
    assert run(site, "cutover") == 0
    (site.root / NEW / "envs" / "beta" / "lib" / PY / "site-packages" / "beta_mod.py").unlink()
    done = run_cutover_suite(site, tmp_path / "project")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cannot import beta_mod" in done.stdout
    assert f"1 smoke test(s) failed; `condaqa rollback` returns {site.current_link} to {OLD}" in done.stdout
    assert os.readlink(site.current_link) == NEW and [r["action"] for r in audit.records(site)] == ["cutover"]


# --- command-line conventions -------------------------------------------------------------------


def test_python_dash_m_condaqa_is_the_command(site: Site) -> None:
    done = subprocess.run([sys.executable, "-m", "condaqa", "--site", str(site.file), "status"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"site      {site.root}")


@pytest.mark.parametrize("command", [["status"], ["-v", "replicate", "--env", "alpha"]], ids=["printed", "logged"])
def test_a_reader_that_goes_away_is_no_traceback(site: Site, command: list[str]) -> None:
    """`condaqa status | head -1`: head exits, condaqa's next write finds the pipe closed; the same for the
    progress lines that -q and -v govern (commands/output.py)."""
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "w") as gone:
        done = subprocess.run([sys.executable, "-m", "condaqa.cli", "--site", str(site.file), *command], stdout=gone,
                              stderr=subprocess.PIPE, text=True, check=False)
    assert done.stderr == "" and done.returncode == 141


class _Terminal:
    """A person at a terminal, answering `answer` to the first question."""

    def __init__(self, answer: str) -> None:
        self.answer, self.asked = answer, 0

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        self.asked += 1
        return self.answer + "\n"


@pytest.mark.parametrize(("answer", "code", "where"), [("n", 1, OLD), ("", 1, OLD), ("y", 0, NEW)])
def test_cutover_asks_on_a_terminal(site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                    answer: str, code: int, where: str) -> None:
    qualify(site)
    monkeypatch.delenv("CI", raising=False)
    terminal = _Terminal(answer)
    monkeypatch.setattr(sys, "stdin", terminal)
    assert run(site, "cutover") == code
    assert terminal.asked == 1 and f"from {OLD} to {NEW}? [y/N]" in capsys.readouterr().out
    assert os.readlink(site.current_link) == where


@pytest.mark.parametrize("how", ["--yes", "CI"])
def test_cutover_never_asks_with_yes_or_in_ci(site: Site, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    qualify(site)
    terminal = _Terminal("n")
    monkeypatch.setattr(sys, "stdin", terminal)
    if how == "CI":
        monkeypatch.setenv("CI", "true")
    assert run(site, "cutover", *([how] if how == "--yes" else [])) == 0
    assert terminal.asked == 0 and os.readlink(site.current_link) == NEW


def test_status_says_whether_the_gate_would_pass_now_and_why_not(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(site, "status") == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("gate "))
    assert f"a cutover to {NEW} would refuse now, 2 problem(s): alpha: never: never qualified" in line
    assert run(site, "status", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["current"] == OLD and data["qa"] == NEW and data["gate"]["passes"] is False
    assert len(data["gate"]["problems"]) == 2
    qualify(site)
    assert run(site, "status", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["gate"] == {"passes": True, "problems": []}
    assert data["qualification"][NEW]["alpha"]["verdict"] == "passed"
    assert run(site, "status") == 0
    assert f"gate      a cutover to {NEW} would pass now" in capsys.readouterr().out

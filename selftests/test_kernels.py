"""Kernels for real (issue #12): started with jupyter_client in the demo's environments, their names as
Jupyter shows them before and after a cutover, the report and status lines about them, and what users'
homes still name by an installation's versioned path.

The demo's environments in current carry a real ipykernel; qa's are copies of current's made of
hard links (fast: building them is test_plugin's business; the tests only add and remove files in
a copy, never edit one in place, which would edit current's too). The one test that writes into
current's environment takes the small `kernel_site` of its own, the others the shared `demo_site`.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from helpers_sites import NEW, OLD, PY, make_site, processes_with, qualify

from condaqa import atomic, report, triage
from condaqa.cli import main
from condaqa.kernels import names, users
from condaqa.kernels.launch import KernelRun, after_cutover
from condaqa.kernels.launch import start as start_kernel
from condaqa.kernels.specs import Kernel, find_kernels
from condaqa.lifecycle import installations
from condaqa.lifecycle.gate import gate
from condaqa.manifest import Environment, load_manifest
from condaqa.qualification import required, store
from condaqa.sandbox.box import Sandbox, sandbox_for
from condaqa.site import Site
from condaqa.vocab import Category, Outcome

SIJ = "super_important_jupyter_kernel"


def kernel(site: Site, name: str) -> Kernel:
    return {k.name: k for k in find_kernels(site)}[name]


def environment(site: Site, name: str) -> Environment:
    return next(e for e in load_manifest(site.manifest) if e.name == name)


def link_copy(site: Site, env: str, *leave_out: str) -> Path:
    """current's environment `env` as qa's, hard-linked file by file, without the `leave_out` names."""
    target = site.qa_installation().env_prefix(env)
    shutil.copytree(site.current_installation().env_prefix(env), target, symlinks=True, copy_function=os.link,
                    ignore=shutil.ignore_patterns(*leave_out))
    return target


def write_spec(site: Site, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
    spec = {"argv": argv, "display_name": name, "language": "python", "env": env or {}}
    folder = site.kernels_dir / name
    folder.mkdir(parents=True)
    (folder / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")


def start(sandbox: Sandbox, env: str, spec: Kernel, argv: list[str] | tuple[str, ...], variables: dict[str, str],
          modules: list[str], timeout: float) -> KernelRun:
    """A kernel started as the suite starts it, `argv`'s first word being the python it runs."""
    return start_kernel(sandbox, env, spec, argv, variables, modules, timeout, python=Path(argv[0]))


def ipykernel_argv(python: Path) -> list[str]:
    return [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def test_a_kernel_starts_in_its_environment_from_current_and_as_the_cutover_leaves_it(demo_site: Site) -> None:
    sandbox, sij, hlink = sandbox_for(demo_site), kernel(demo_site, SIJ), kernel(demo_site, "hlink")
    run = start(sandbox, SIJ, sij, sij.argv, sij.env, ["tabular", "datefmt"], 60)
    assert run.ok, f"{run.problem}\n{run.stderr}"
    assert os.path.realpath(run.prefix) == os.path.realpath(demo_site.current_installation().env_prefix(SIJ))
    qa_prefix = link_copy(demo_site, "hlink")
    argv, variables = after_cutover(demo_site, hlink)
    assert argv[0] == f"{qa_prefix}/bin/python" and argv[1:] == list(hlink.argv[1:])
    assert variables == {"PATH": f"{qa_prefix}/bin:/usr/bin:/bin", "LINKAGE_DATA": f"{qa_prefix}/share/hlink"}
    run = start(sandbox, "hlink", hlink, argv, variables, ["linkage"], 60)
    assert run.ok, f"{run.problem}\n{run.stderr}"
    assert run.prefix == str(qa_prefix) and run.failed == ()


def test_a_kernel_without_ipykernel_fails_clearly_and_triage_tells_regression_from_old_breakage(
        demo_site: Site) -> None:
    sandbox, hlink = sandbox_for(demo_site), kernel(demo_site, "hlink")
    expected = link_copy(demo_site, "hlink", "ipykernel", "ipykernel_launcher.py")
    qa = start(sandbox, "hlink", hlink, *after_cutover(demo_site, hlink), [], 60)
    assert not qa.ok and not qa.timed_out and qa.problem.startswith("the kernel died")
    assert "No module named ipykernel_launcher" in qa.stderr
    baseline = start(sandbox, "hlink", hlink, hlink.argv, hlink.env, [], 60)
    assert baseline.ok, baseline.stderr
    found = triage.classify_kernel(environment(demo_site, "hlink"), qa, baseline, str(expected))
    assert found.category is Category.KERNEL_FAILED and "No module named ipykernel_launcher" in found.detail

    write_spec(demo_site, "nhis", ipykernel_argv(demo_site.current_link / "envs" / "nhis_reformat" / "bin" / "python"))
    nhis = kernel(demo_site, "nhis")
    expected = link_copy(demo_site, "nhis_reformat")
    qa = start(sandbox, "nhis_reformat", nhis, *after_cutover(demo_site, nhis), [], 60)
    baseline = start(sandbox, "nhis_reformat", nhis, nhis.argv, nhis.env, [], 60)
    assert not qa.ok and not baseline.ok and "No module named ipykernel_launcher" in baseline.stderr
    found = triage.classify_kernel(environment(demo_site, "nhis_reformat"), qa, baseline, str(expected))
    assert found.category is Category.ALREADY_BROKEN and "fails from current's spec too" in found.detail


def test_a_kernel_gets_the_env_variables_of_its_spec(kernel_site: Site) -> None:
    """A module of current's environment imports only with the variable the spec's env gives it."""
    prefix = kernel_site.current_installation().env_prefix(SIJ)
    (prefix / "lib" / PY / "site-packages" / "needs_token.py").write_text(
        "import os\nif os.environ.get('CONDAQA_TOKEN') != 'granted':\n"
        "    raise ImportError('needs_token: CONDAQA_TOKEN is not set')\n", encoding="utf-8")
    argv = ipykernel_argv(kernel_site.current_link / "envs" / SIJ / "bin" / "python")
    write_spec(kernel_site, "with-token", argv, {"CONDAQA_TOKEN": "granted"})
    write_spec(kernel_site, "without-token", argv)
    sandbox = sandbox_for(kernel_site)
    runs = {name: start(sandbox, SIJ, k, k.argv, k.env, ["needs_token"], 60)
            for name, k in ((n, kernel(kernel_site, n)) for n in ("with-token", "without-token"))}
    assert runs["with-token"].ok, runs["with-token"].stderr
    without = runs["without-token"]
    assert not without.ok and without.problem == "cannot import needs_token"
    assert without.failed == (("needs_token", "ImportError: needs_token: CONDAQA_TOKEN is not set"),)


def _running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting for its parent to reap it is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_kernel_that_hangs_times_out_and_leaves_no_process_or_connection_file(
        demo_site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = f"condaqa-selftest-{os.getpid()}-{time.monotonic_ns()}"
    code = ("import subprocess, sys, time\n"
            f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', {marker!r}])\n"
            "time.sleep(600)\n")
    argv = (sys.executable, "-c", code, marker, "{connection_file}")
    hangs = Kernel("hangs", tmp_path / "kernel.json", argv, "", "")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where the kernel's scratch folder goes
    (tmp_path / "tmp").mkdir()
    run = start(sandbox_for(demo_site), SIJ, hangs, argv, {}, [], 3)
    assert not run.ok and run.timed_out and run.problem == "the kernel did not answer kernel_info within 3s"
    deadline = time.monotonic() + 5  # killed at once; the kernel reaps what it killed in its own time
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(marker) == [], "the kernel or its child outlived it"
    assert list((tmp_path / "tmp").iterdir()) == [], "its scratch folder and connection file are left"
    found = triage.classify_kernel(environment(demo_site, SIJ), run, replace(run, ok=True), "")
    assert found.category is Category.TIMEOUT


def test_a_static_kernel_folder_renamed_changes_its_name(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    kernels = find_kernels(site)
    assert names.continuity(site, site.qa_installation(), kernels) == []  # the rewrite keeps every name
    before = names.shown_names(site, site.current_installation(), kernels)
    os.rename(site.kernels_dir / "alpha-pinned", site.kernels_dir / "Alpha-Pinned-Old")
    after = names.shown_names(site, site.qa_installation(), find_kernels(site))
    renamed = site.kernels_dir / "Alpha-Pinned-Old" / "kernel.json"
    assert names.changes(before, after) == {
        "alpha-pinned": f"changes to alpha-pinned-old: it comes from {renamed}, not "
                        f"{site.kernels_dir}/alpha-pinned/kernel.json"}
    shutil.rmtree(renamed.parent)
    gone = names.shown_names(site, site.qa_installation(), find_kernels(site))
    assert names.changes(before, gone) == {
        "alpha-pinned": f"vanishes: {site.kernels_dir}/alpha-pinned/kernel.json is gone"}


def kernel_env(prefix: Path, *folders: str) -> None:
    """An environment conda lists (conda-meta/history) holding ipykernel-style specs in `folders`."""
    (prefix / "conda-meta").mkdir(parents=True, exist_ok=True)
    (prefix / "conda-meta" / "history").touch()
    for folder in folders:
        spec = prefix / "share" / "jupyter" / "kernels" / folder / "kernel.json"
        spec.parent.mkdir(parents=True)
        spec.write_text(json.dumps({"argv": ["python", "{connection_file}"], "display_name": "Python 3 (ipykernel)"}))


def test_nb_conda_kernels_names_follow_the_environments_and_the_gate_refuses_a_change(tmp_path: Path) -> None:
    site = replace(make_site(tmp_path), nb_conda_kernels=True)
    old, new, kernels = site.current_installation(), site.qa_installation(), find_kernels(site)
    for env in ("alpha", "beta", "scratch", "my_env"):
        kernel_env(old.env_prefix(env), "python3")
    before = names.shown_names(site, old, kernels)
    conda = {n: s[-1] for n, s in before.shown.items() if n.startswith("conda-")}
    assert sorted(conda) == ["conda-env-alpha-py", "conda-env-beta-py", "conda-env-my_env-py", "conda-env-scratch-py"]
    assert conda["conda-env-alpha-py"].display_name == "Python [conda env:alpha]"

    kernel_env(new.path, "python3")  # the new base holds a kernel: conda-root-py, a new name
    kernel_env(new.env_prefix("alpha"), "python3", "ir")
    kernel_env(new.env_prefix("my_env"), "python3")
    kernel_env(new.env_prefix("my env"), "python3")  # cleaned to my_env as well: a collision
    kernel_env(new.env_prefix("café"), "python3")
    kernel_env(new.env_prefix("scratch"))  # there, but without a kernel spec
    shutil.rmtree(new.env_prefix("beta"))
    kernel_env(new.path / "extra" / "envs" / "beta", "python3")  # moved out of envs/
    kernel_env(new.path / "extra" / "envs" / "tool", "python3")  # new, and a second one in the same place
    kernel_env(new.path / "more" / "extra" / "envs" / "tool", "python3")
    rc = yaml.safe_load((new.path / ".condarc").read_text())
    rc["envs_dirs"] = [f"{site.current_link}/extra/envs", f"{site.current_link}/more/extra/envs"]
    (new.path / ".condarc").write_text(yaml.safe_dump(rc))
    after = names.shown_names(site, new, kernels)
    assert sorted(n for n in after.shown if n.startswith("conda-")) == [
        "conda-env-alpha-py", "conda-env-alpha-r", "conda-env-cafe-py", "conda-env-extra-beta-py",
        "conda-env-extra-tool-2-py", "conda-env-extra-tool-py", "conda-env-my_env-py", "conda-root-py"]
    assert after.shown["conda-env-extra-tool-2-py"][-1].where == f"{site.current_link}/more/extra/envs/tool"
    expected = [
        f"kernel name conda-env-beta-py (notebooks use it) changes to conda-env-extra-beta-py: it comes from "
        f"{site.current_link}/extra/envs/beta, not {site.current_link}/envs/beta",
        f"kernel name conda-env-my_env-py (notebooks use it) collides: {site.current_link}/envs/my env, "
        f"{site.current_link}/envs/my_env all take it; Jupyter shows only {site.current_link}/envs/my_env",
        f"kernel name conda-env-scratch-py (notebooks use it) vanishes: scratch in {NEW} has no "
        "share/jupyter/kernels/python3/kernel.json",
    ]
    assert names.continuity(site, new, kernels) == expected
    problems = gate(site, NEW).problems
    assert problems[-3:] == expected and not any("conda-env-" in p for p in problems[:-3])
    shutil.rmtree(new.env_prefix("scratch"))
    assert names.continuity(site, new, kernels)[-1] == (
        f"kernel name conda-env-scratch-py (notebooks use it) vanishes: scratch is not in {NEW}")


def test_the_summary_and_status_show_the_recorded_starts_of_each_kernel_and_its_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = replace(make_site(tmp_path), nb_conda_kernels=True)
    kernel_env(site.current_installation().env_prefix("alpha"), "python3")
    qualify(site)
    for name, baseline_ok in (("alpha-current", True), ("beta-pinned", False)):
        spec = kernel(site, name)
        env = environment(site, spec.environment)
        qa = KernelRun(name, False, "", (), 1.0, "the kernel died: Kernel died before replying to kernel_info",
                       "ModuleNotFoundError: No module named 'ipykernel_launcher'")
        baseline = replace(qa, ok=baseline_ok, problem="" if baseline_ok else qa.problem)
        found = triage.classify_kernel(env, qa, baseline, "")
        result = store.load(site, NEW, env.name)
        assert result is not None and result.build is not None
        store.record(site, NEW, env, required.kernel_check(spec), Outcome.FAILED,
                             build_id=result.build.build_id, required=result.required, triage=found,
                             started_in_current=baseline_ok)
    md, _ = report.write_summary(site, load_manifest(site.manifest), find_kernels(site), "bwrap: a test's words")
    table = md.read_text().split("## Kernels\n")[1]
    gone = f"vanishes: alpha in {NEW} has no share/jupyter/kernels/python3/kernel.json"
    for row in ("| alpha-current | alpha | alpha-current | yes | no | - |",
                "| alpha-pinned | alpha | alpha-pinned | not run | yes | - |",
                "| beta-pinned | beta | beta-pinned | no | no | - |",
                f"| conda-env-alpha-py | alpha | Python [conda env:alpha] | - | - | {gone} |"):
        assert row in table
    assert main(["--site", str(site.file), "status"]) == 0  # site.toml leaves nb_conda_kernels off
    out = capsys.readouterr().out
    lines = out.split("kernels (the names Jupyter shows, from the kernels folder; started in the qualification "
                      f"of {NEW}):\n")[1].splitlines()
    assert lines[0].split() == ["alpha-current", "alpha", "qa:", "no", "current:", "yes", "name", "kept"]
    assert lines[3].split()[:6] == ["beta-pinned", "beta", "qa:", "no", "current:", "no"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home" / "jdoe"


def stale_home(site: Site, home: Path) -> None:
    """A user's home with a kernel spec, environments.txt lines and a .condarc naming ROOT/v4.3, and lines that
    do not (through current, ROOT/v4.30, qa's v4.8)."""
    old, current = site.root / OLD, site.current_link
    for name, python in (("old-alpha", f"{old}/envs/alpha/bin/python"), ("fine", f"{current}/envs/alpha/bin/python")):
        spec = home / ".local/share/jupyter/kernels" / name / "kernel.json"
        spec.parent.mkdir(parents=True)
        env = {"PATH": f"{old}/envs/alpha/bin:/usr/bin"} if name == "old-alpha" else {}
        spec.write_text(json.dumps({"argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                                    "display_name": name, "env": env}))
    (home / ".conda").mkdir()
    (home / ".conda" / "environments.txt").write_text(
        f"{old}/envs/alpha\n{current}/envs/beta\n{old}0/envs/x\n{site.root / NEW}/envs/beta\n")
    (home / ".condarc").write_text(yaml.safe_dump({"envs_dirs": [f"{old}/envs"], "pkgs_dirs": [f"{old}/pkgs"]}))
    (home / ".config" / "conda").mkdir(parents=True)
    (home / ".config" / "conda" / ".condarc").write_text("a: &x [1]\nb: *x\n")


def test_audit_users_lists_what_names_the_old_installation_and_retire_warns_before_deleting(
        tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_site(tmp_path, kernels=False)
    stale_home(site, home)
    empty = tmp_path / "home" / "empty"
    empty.mkdir()
    assert main(["--site", str(site.file), "audit-users", str(home), str(empty)]) == 1
    out = capsys.readouterr().out.splitlines()
    old, current, spec = site.root / OLD, site.current_link, home / ".local/share/jupyter/kernels/old-alpha/kernel.json"
    assert out[0].startswith(f"note: {home}/.config/conda/.condarc:2: not valid YAML: uses a YAML alias")
    assert out[1:] == [
        f"{home}: {spec}: kernel spec old-alpha argv[0] names {old}/envs/alpha/bin/python; change it to "
        f"{current}/envs/alpha/bin/python, or remove {spec.parent} if the kernel is not used any more",
        f"{home}: {spec}: kernel spec old-alpha env PATH names {old}/envs/alpha/bin:/usr/bin; change it to "
        f"{current}/envs/alpha/bin:/usr/bin, or remove {spec.parent} if the kernel is not used any more",
        f"{home}: {home}/.conda/environments.txt: environments.txt entry names {old}/envs/alpha; change the line to "
        f"{current}/envs/alpha, or delete it",
        f"{home}: {home}/.condarc: .condarc envs_dirs entry names {old}/envs; change it to {current}/envs",
        f"{home}: {home}/.condarc: .condarc pkgs_dirs entry names {old}/pkgs; change it to {current}/pkgs",
    ]
    assert main(["--site", str(site.file), "audit-users", "--installation", NEW, str(home)]) == 1  # qa's, on request
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{home}: {home}/.conda/environments.txt: environments.txt entry names {site.root}/{NEW}/envs/beta; "
        f"change the line to {current}/envs/beta, or delete it")
    assert main(["--site", str(site.file), "audit-users", str(empty)]) == 0
    assert capsys.readouterr().out == "nothing found in 1 home folder(s)\n"

    atomic.replace_symlink(site.current_link, NEW)  # as after a cutover whose rollback is no longer possible
    warned: list[tuple[str, bool]] = []
    monkeypatch.setattr(users, "group_homes", lambda _site: [home])
    installations.retire(site, OLD, pkgs_only=True, yes=True,
                         warn=lambda w: warned.append((w, (old / "pkgs" / "cache").is_dir())))
    homes = [w for w in warned if w[0].startswith(f"{home}: ")]  # the others: environments without an archive
    assert homes == [(f"{home}: {home}/.condarc: .condarc pkgs_dirs entry names {old}/pkgs; change it to "
                      f"{current}/pkgs", True)]
    others = sorted(w.partition(" has no verified archive")[0] for w, _ in warned if (w, _) not in homes)
    assert others == [f"alpha of {OLD}", f"beta of {OLD}"]  # every environment, warned before it went
    assert main(["--site", str(site.file), "retire", OLD, "--yes"]) == 0
    out = [line for line in capsys.readouterr().out.splitlines() if "has no verified archive" not in line]
    assert [line.split(": ")[2] for line in out[:-1]] == [
        f"{spec}", f"{spec}", f"{home}/.conda/environments.txt", f"{home}/.condarc", f"{home}/.condarc"]
    assert all(line.startswith(f"warning: {home}: ") for line in out[:-1]) and out[-1] == f"retired {old}"
    assert not old.exists()


def test_group_homes_are_the_readable_homes_of_the_site_roots_group(tmp_path: Path) -> None:
    site = make_site(tmp_path, kernels=False)
    homes = users.group_homes(site)
    me = pwd.getpwuid(os.getuid())
    if not (me.pw_gid == site.root.stat().st_gid and os.access(me.pw_dir, os.R_OK | os.X_OK)):
        pytest.skip("the invoking user's home is not one of the site root's group here")
    assert Path(me.pw_dir) in homes  # so the check below is over at least one home
    assert all(h.is_dir() and os.access(h, os.R_OK | os.X_OK) for h in homes)

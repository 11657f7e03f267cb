"""The sandbox in each mode this host allows (bubblewrap as root, unshare + setpriv as root, bubblewrap as
another user, none): who foreign code runs as, what it can see, write and signal, and that nothing it
starts outlives it; and the pure parts: whom it runs as, and its mount plan."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers_sites import NEW, OLD, make_site, processes_with

from condaqa.errors import ConfigError
from condaqa.sandbox import box, layout
from condaqa.sandbox.identity import Identity, for_prefix
from condaqa.site import Site

ROOT = os.geteuid() == 0
FACTS = r"""import errno, json, os, subprocess, sys
root, target = sys.argv[1], int(sys.argv[2])
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)

def attempt(action):
    try:
        action()
        return "done"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))

def write(path):
    with open(path, "w") as handle:
        handle.write("x")

state = os.path.join(root, ".condaqa")
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid(),
    "capabilities": status["CapEff"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
    "write_site": attempt(lambda: write(os.path.join(root, "written"))),
    "write_scratch": attempt(lambda: write(os.path.join(os.environ["HOME"], "written"))),
    "write_tmp": attempt(lambda: write("/tmp/written")),
    "state": sorted(os.listdir(state)) if os.path.isdir(state) else None,
    "signal_condaqa": attempt(lambda: os.kill(target, 0)),
    "signal_all": attempt(lambda: os.kill(-1, 0)),
    "remount": subprocess.run(["mount", "-o", "remount,rw,bind", root], capture_output=True).returncode,
}))
"""


def _works(mode: str) -> bool:
    if mode == box.BWRAP and shutil.which("bwrap") is None:
        return False
    return mode != box.UNSHARE or shutil.which("unshare") is not None


MODES = [pytest.param(m, marks=pytest.mark.skipif(not _works(m), reason=f"no {m} here"))
         for m in (box.BWRAP, box.UNSHARE, box.NONE)]


@pytest.fixture
def site(tmp_path: Path) -> Site:
    site = make_site(tmp_path, ("alpha",), kernels=False)
    (site.state_dir / "results").mkdir(parents=True)
    (site.state_dir / "results.key").write_bytes(b"secret")
    return site


@pytest.fixture(params=MODES)
def sandbox(request: pytest.FixtureRequest, site: Site, monkeypatch: pytest.MonkeyPatch) -> Iterator[box.Sandbox]:
    monkeypatch.setenv(box.MODE_VARIABLE, request.param)
    box.sandbox_for.cache_clear()
    yield box.sandbox_for(site)
    box.sandbox_for.cache_clear()


def facts(sandbox: box.Sandbox) -> dict[str, object]:
    python = sandbox.site.root / NEW / "envs" / "alpha" / "bin" / "python"
    done = sandbox.run([str(python), "-c", FACTS, str(sandbox.site.root), str(os.getpid())], env="alpha",
                       what="facts", timeout=60, environ={"PATH": os.environ["PATH"]}, python=python)
    assert done.returncode == 0, done.output
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_foreign_code_never_runs_as_root_nor_writes_nor_sees_what_decides_the_verdict(sandbox: box.Sandbox) -> None:
    found = facts(sandbox)
    if sandbox.mode == box.NONE:
        assert found["uid"] == os.getuid() and "not isolated" in sandbox.describe()
        return
    assert found["uid"] != 0 and found["capabilities"] == "0000000000000000" and found["no_new_privs"] == "1"
    pid = found["pid"]
    assert isinstance(pid, int) and pid <= 3, "not in a PID namespace of its own"
    assert found["write_site"] == "EROFS" and found["remount"] != 0
    assert found["write_scratch"] == "done" and found["write_tmp"] == "done"
    assert found["state"] == [], "condaqa's state (results, their key) is visible"
    assert found["signal_condaqa"] == "ESRCH" and found["signal_all"] == "ESRCH"
    assert not (sandbox.site.root / "written").exists()


def test_where_nothing_isolates_a_write_to_current_is_caught_and_a_site_without_current_has_none_to_guard(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo makes production's environments before `current` names them: its own writes there (its
    pip installs, its bytecode) are not a check changing current."""
    monkeypatch.setenv(box.MODE_VARIABLE, box.NONE)
    box.sandbox_for.cache_clear()
    sandbox = box.sandbox_for(site)
    box.sandbox_for.cache_clear()
    prefix = site.root / OLD / "envs" / "alpha"
    planted, python = prefix / "planted", prefix / "bin" / "python"

    def plant() -> int:
        return sandbox.run([str(python), "-c", f"open({str(planted)!r}, 'w').close()"], env="alpha", what="planting",
                           timeout=60, environ={"PATH": os.environ["PATH"]}, python=python).returncode

    with pytest.raises(box.CurrentChanged, match=f"{planted.name} appeared while planting ran"):
        plant()
    planted.unlink()
    site.current_link.unlink()
    assert plant() == 0 and planted.is_file()


def test_as_root_foreign_code_runs_as_the_prefix_owner_or_the_sandbox_user(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    if not ROOT or not _works(box.BWRAP):
        pytest.skip("needs root and bubblewrap")
    monkeypatch.setenv(box.MODE_VARIABLE, box.BWRAP)
    box.sandbox_for.cache_clear()
    assert facts(box.sandbox_for(site))["uid"] == 65534  # root owns current's alpha: nobody
    current = site.root / "v4.3" / "envs" / "alpha"
    os.chown(current, 4242, 4343)
    assert facts(box.sandbox_for(site))["uid"] == 4242
    box.sandbox_for.cache_clear()


DAEMON = """import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)", sys.argv[1]])
    os._exit(0)
"""


@pytest.mark.parametrize("mode", [m for m in MODES if m.values[0] != box.NONE])
def test_nothing_a_check_starts_outlives_it_and_it_cannot_kill_condaqa(
        site: Site, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setenv(box.MODE_VARIABLE, mode)
    box.sandbox_for.cache_clear()
    sandbox = box.sandbox_for(site)
    python = site.root / NEW / "envs" / "alpha" / "bin" / "python"
    marker = f"condaqa-daemon-{os.getpid()}-{time.monotonic_ns()}"
    killer = f"import os, signal\nos.kill({os.getpid()}, signal.SIGKILL)\n"  # this very test's process
    for code in (DAEMON, killer):
        sandbox.run([str(python), "-c", code, marker], env="alpha", what="hostile", timeout=60,
                    environ={"PATH": os.environ["PATH"]}, python=python)
    deadline = time.monotonic() + 5
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(marker) == []
    box.sandbox_for.cache_clear()


USER = 4242


@pytest.mark.parametrize("mode", [m for m in MODES if m.values[0] != box.NONE])
def test_a_user_other_than_root_gets_the_sandbox_too(tmp_path: Path, mode: str) -> None:
    """An administrator who is not root: the sandbox is made in a user namespace, foreign code runs as that
    user, and the site it owns is read-only to it. That user is made here with condaqa's own mount plan
    (layout.py), so it reaches condaqa's interpreter, venv and checkout wherever they lie (under /root, in
    a private temporary folder) and may write its site."""
    if not ROOT or not _works(box.BWRAP) or shutil.which("setpriv") is None:
        pytest.skip("needs root, bubblewrap and setpriv to become another user")
    base = Path(tempfile.mkdtemp(prefix="condaqa-user-"))
    try:
        base.chmod(0o755)
        site = make_site(base, ("alpha",), kernels=False)
        subprocess.run(["chown", "-R", f"{USER}:{USER}", str(base / "site")], check=True)
        interpreter = Path(os.path.realpath(sys.executable)).parent.parent
        checkout = Path(__file__).resolve().parents[1]
        reach = [str(interpreter), os.path.realpath(sys.prefix), str(checkout)]
        steps = layout.plan(reach, [str(base)], [], Identity(USER, USER, (), "admin"))
        script = ("import json, os, sys\nsys.path.insert(0, sys.argv[2])\nfrom test_sandbox import facts\n"
                  "from condaqa.sandbox.box import sandbox_for\nfrom condaqa.site import load_site\n"
                  "sandbox = sandbox_for(load_site(sys.argv[1]))\n"
                  "print(json.dumps({'mode': sandbox.mode, 'facts': facts(sandbox)}))\n")
        base_view, steps_view = layout.bwrap_options(steps)[:7], layout.bwrap_options(steps)[7:]
        assert base_view == ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        # the host's /dev and /proc, as a user sees them (a view, not a sandbox: the one inside nests in it)
        view = ["--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev", "--bind", "/proc", "/proc", *steps_view]
        command = ["bwrap", *view, "--", "setpriv", f"--reuid={USER}", f"--regid={USER}",
                   "--clear-groups", "--", sys.executable, "-c", script, str(site.file), str(Path(__file__).parent)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=base,
                              env={**os.environ, box.MODE_VARIABLE: mode})
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        found = answer["facts"]
        assert answer["mode"] == mode and found["uid"] == USER
        assert found["write_site"] == "EROFS" and found["state"] in (None, [])
        assert found["pid"] <= 3 and found["capabilities"] == "0000000000000000"
    finally:
        shutil.rmtree(base)


def test_a_sandbox_that_was_asked_for_and_does_not_work_is_an_error(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(box.MODE_VARIABLE, "jail")
    box.sandbox_for.cache_clear()
    with pytest.raises(ConfigError, match="use bwrap, unshare or none"):
        box.sandbox_for(site)
    box.sandbox_for.cache_clear()


def test_the_sandbox_user_must_exist_and_must_not_be_root(site: Site, tmp_path: Path) -> None:
    if not ROOT:
        pytest.skip("only root switches users")
    for name, words in (("no-such-user-here", "is not a user on this host"), ("root", "is root")):
        named = Site(**{**site.__dict__, "sandbox_user": name})
        with pytest.raises(ConfigError, match=words) as caught:
            for_prefix(named, None)
        assert str(site.file) in str(caught.value)


def test_whom_foreign_code_runs_as(site: Site, tmp_path: Path) -> None:
    if not ROOT:
        pytest.skip("only root switches users")
    owned = tmp_path / "owned"
    owned.mkdir()
    os.chown(owned, 4242, 4343)
    assert for_prefix(site, owned) == Identity(4242, 4343, (4343,), "4242")  # no passwd entry: its uid
    grouped = tmp_path / "grouped"
    grouped.mkdir()
    os.chown(grouped, 0, 4343)
    who = for_prefix(site, grouped)
    assert (who.name, who.groups) == ("nobody", (4343,))
    assert for_prefix(site, None).groups == ()


def _reachable(*closed: str) -> Callable[[str, Identity], bool]:
    return lambda path, who: path not in closed


def test_the_mount_plan_reaches_what_a_run_needs_and_nothing_else() -> None:
    who = Identity(65534, 65534, (), "nobody")
    plain = layout.plan(["/srv/site"], ["/tmp/box/scratch"], ["/srv/site/.condaqa"], who, _reachable())
    assert plain == [layout.Step("tmpfs", "/tmp", "1777"), layout.Step("tmpfs", "/dev/shm", "1777"),
                     layout.Step("dir", "/tmp/box", "0755"), layout.Step("mask", "/srv/site/.condaqa", "0755"),
                     layout.Step("rw", "/tmp/box/scratch")]  # the site itself is in the read-only view of /
    hidden = layout.plan(["/root/py/versions/3", "/tmp/t/site"], [], ["/tmp/t/site/.condaqa"], who,
                         _reachable("/root"))
    assert hidden == [layout.Step("tmpfs", "/tmp", "1777"), layout.Step("tmpfs", "/root", "0755"),
                      layout.Step("tmpfs", "/dev/shm", "1777"), layout.Step("dir", "/tmp/t", "0755"),
                      layout.Step("dir", "/root/py", "0755"), layout.Step("ro", "/tmp/t/site"),
                      layout.Step("dir", "/root/py/versions", "0755"),
                      layout.Step("mask", "/tmp/t/site/.condaqa", "0755"),
                      layout.Step("ro", "/root/py/versions/3")]  # a folder before what lies in it
    options = layout.bwrap_options(hidden)
    assert options[-2:] == ["--remount-ro", "/tmp/t/site/.condaqa"]
    assert layout.script_words(hidden)[:6] == ["tmpfs", "/tmp", "1777", "tmpfs", "/root", "0755"]


def test_a_kernel_run_from_the_sandbox_leaves_no_scratch_folder(
        site: Site, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch-here"))
    (tmp_path / "scratch-here").mkdir()
    with box.sandbox_for(site).room("alpha") as room:
        assert room.scratch.is_dir() and room.scratch.parent.parent == tmp_path / "scratch-here"
    assert list((tmp_path / "scratch-here").iterdir()) == []

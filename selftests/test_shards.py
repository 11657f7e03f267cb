"""Shards: whole environments per shard, the same verdicts and test cases as one run, hosts recorded, the gate
refusing while a shard on another host runs or after one was killed, locks judged by their mount."""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from condaqa import locks, shards
from condaqa.errors import ConfigError
from condaqa.kernels.specs import find_kernels
from condaqa.lifecycle.gate import gate
from condaqa.manifest import load_manifest
from condaqa.qualification.store import load
from condaqa.qualification.verdict import standing
from condaqa.session import environment_of
from condaqa.site import Site
from condaqa.vocab import Verdict

NAMES = [f"env{i:02d}" for i in range(20)]


def test_shard_arguments_and_scheduler_variables() -> None:
    assert shards.parse("2/3") == shards.Shard(2, 3)
    for bad in ("0/3", "4/3", "2", "a/b"):
        with pytest.raises(ConfigError, match="--shard"):
            shards.parse(bad)
    assert shards.from_environ({"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "3"}) == shards.Shard(1, 3)
    assert shards.from_environ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "3"}) == shards.Shard(1, 3)
    assert shards.from_environ({"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "5",
                                "SLURM_ARRAY_TASK_COUNT": "3"}) == shards.Shard(3, 3)
    assert shards.from_environ({"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "1"}) is None
    assert shards.from_environ({}) is None


def test_assignment_is_whole_deterministic_and_balanced() -> None:
    plain = shards.assign(NAMES, 3, {})
    assert plain == shards.assign(list(reversed(NAMES)), 3, {})
    assert sorted(plain) == sorted(NAMES)
    assert sorted(list(plain.values()).count(i) for i in (1, 2, 3)) == [6, 7, 7]
    durations = {"env00": 100.0, **{n: 10.0 for n in NAMES[1:]}}
    timed = shards.assign(NAMES, 3, durations)
    loads = [sum(durations[n] for n, s in timed.items() if s == i) for i in (1, 2, 3)]
    assert timed["env00"] == 1 and list(timed.values()).count(1) == 1  # the long one alone in its shard
    assert max(loads) - min(loads) <= 10.0


_NFS = ("36 25 0:45 / /pkg rw,relatime shared:1 - nfs4 srv:/export rw,vers=4.2,{lock},addr=10.0.0.1\n"
        "25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "40 25 0:50 / /home/u/fuse rw - fuse.sshfs u@h:/ rw,user_id=0\n")


def test_lock_reach_reads_the_mount_and_names_it() -> None:
    held = locks.lock_reach(Path("/pkg/conda"), _NFS.format(lock="local_lock=none"))
    assert held.holds and held.mount_point == "/pkg" and held.fstype == "nfs4"
    local = locks.lock_reach(Path("/pkg/conda"), _NFS.format(lock="local_lock=flock"))
    assert not local.holds and "local_lock=flock" in local.words() and "/pkg (nfs4" in local.words()
    assert locks.lock_reach(Path("/srv/x"), _NFS.format(lock="local_lock=all")).holds  # on ext4
    assert not locks.lock_reach(Path("/home/u/fuse/x"), _NFS.format(lock="")).holds


def _uts(host: str) -> list[str]:
    return ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh"]


@pytest.fixture
def other_hosts() -> None:
    if shutil.which("unshare") is None or subprocess.run([*_uts("probe"), "true"], capture_output=True).returncode:
        pytest.skip("no UTS namespace here (unshare --uts needs root or user namespaces)")


def _pytest(project: Path, *args: str, host: str = "") -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]
    return subprocess.Popen([*_uts(host), *argv] if host else argv, cwd=project, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _cases(junit: Path) -> set[tuple[str, str]]:
    return {(c.get("classname", ""), c.get("name", "")) for c in ET.parse(junit).getroot().iter("testcase")}


def _verdicts(site: Site) -> dict[str, str]:
    kernels = find_kernels(site)
    return {e.name: str(standing(site, "v4.8", e, kernels).verdict) for e in load_manifest(site.manifest)}


def test_three_shards_on_three_hosts_qualify_as_one_run(demo_site: Site, other_hosts: None) -> None:
    project = demo_site.file.parent.parent
    one = _pytest(project, "-n", "0")
    out = one.communicate(timeout=1200)[0]
    assert one.returncode == 0, out
    single, verdicts = _cases(project / "reports" / "junit.xml"), _verdicts(demo_site)
    (project / "reports" / "junit.xml").unlink()
    runs = [_pytest(project, "-n", "0", "--shard", f"{i}/3", host=f"shardhost{i}") for i in (1, 2, 3)]
    outs = [run.communicate(timeout=1200)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], "\n".join(outs)
    merged = _cases(project / "reports" / "junit.xml")
    assert merged == single and len(single) > 40
    assert _verdicts(demo_site) == verdicts and set(verdicts.values()) == {"passed", "exported"}
    parts = {i: json.loads((project / "reports" / f"shard-{i}-of-3.json").read_text()) for i in (1, 2, 3)}
    owned = [set(p["environments"]) for p in parts.values()]
    assert set().union(*owned) == set(verdicts) and sum(map(len, owned)) == len(verdicts)
    replicated = {e.name for e in load_manifest(demo_site.manifest) if e.replicate}
    for i, part in parts.items():
        assert part["host"] == f"shardhost{i}"
        for name in part["environments"]:
            result = load(demo_site, "v4.8", name)
            assert result is not None and {c.host for c in result.checks.values()} == {f"shardhost{i}"}
            if name in replicated:  # its build log's last section: this shard's check that it is up to date
                log = (project / "reports" / "logs" / f"{name}.log").read_text()
                assert f" on shardhost{i} (pid " in log.split("\n=== ")[-1], log
    assert any("merged 3 of 3 shards" in out for out in outs)
    assert (demo_site.state_dir / "durations" / "v4.8.json").is_file()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[str]:
    """A real sshd on the loopback address that lets in this test's key only: the ssh part of an xdist --tx."""
    daemon = Path("/usr/sbin/sshd")
    if not daemon.is_file() or shutil.which("ssh") is None:
        if os.environ.get("CONDAQA_SSH_REQUIRED"):
            pytest.fail("CONDAQA_SSH_REQUIRED is set and there is no sshd and ssh here (Debian: openssh-server)")
        pytest.skip("no sshd and ssh here (Debian: openssh-server)")
    keys = tmp_path / "ssh"
    keys.mkdir(mode=0o700)
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
    shutil.copy(keys / "client.pub", keys / "authorized_keys")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (keys / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPidFile {keys / 'sshd.pid'}\n"
        "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # its privilege separation folder
    server = subprocess.Popen([str(daemon), "-D", "-e", "-f", str(keys / "sshd_config")], stderr=subprocess.PIPE,
                              text=True)
    ssh = (f"-p {port} -i {keys / 'client'} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
           f"-o BatchMode=yes {getpass.getuser()}@127.0.0.1")
    try:
        for _ in range(100):  # until it answers (it does within a second), or it has died
            if server.poll() is not None or subprocess.run(["ssh", *ssh.split(), "true"], capture_output=True,
                                                           timeout=30).returncode == 0:
                break
            time.sleep(0.1)
        if server.poll() is not None:
            pytest.fail(f"sshd did not start: {server.communicate()[1][-2000:]}")
        yield ssh
    finally:
        server.terminate()
        server.communicate(timeout=30)  # and close its stderr


def test_an_xdist_pool_over_real_ssh_qualifies_the_site_with_each_environment_on_one_worker(
        demo_site: Site, sshd: str) -> None:
    """README's pool: `--tx 2*ssh=...//python=...//chdir=...` with the same paths on every host, and
    --max-worker-restart=0, so that a worker that cannot start fails the run instead of restarting forever."""
    project = demo_site.file.parent.parent
    pool = f"2*ssh={sshd}//python={sys.executable}//chdir={project}"
    run = _pytest(project, "--dist", "load", "--tx", pool, "--max-worker-restart=0", "-vv")  # -q -vv: each test
    out = run.communicate(timeout=1200)[0]
    assert run.returncode == 0, out
    verdicts = _verdicts(demo_site)
    assert set(verdicts.values()) == {"passed", "exported"}, verdicts
    names = [e.name for e in load_manifest(demo_site.manifest)]
    kernel_envs = {k.name: k.environment for k in find_kernels(demo_site) if k.environment}
    workers: dict[str, set[str]] = {}
    for line in out.splitlines():
        match = re.match(r"\[(gw\d+)\] \[ *\d+%\] PASSED (\S+)", line)
        if match and environment_of(match.group(2), names, kernel_envs):
            workers.setdefault(environment_of(match.group(2), names, kernel_envs), set()).add(match.group(1))
    assert set(workers) == set(names) and all(len(w) == 1 for w in workers.values()), out


_HOLDER = """
import sys
import time
from condaqa import locks
from condaqa.manifest import load_manifest
from condaqa.qualification import store
from condaqa.site import load_site
site = load_site(sys.argv[1])
envs = [e for e in load_manifest(site.manifest) if e.replicate]
with locks.qualifying(site, ["v4.8", "v4.3"], "pytest --shard 2/3 (condaqa qualification)"):
    store.claim(site, "v4.8", envs[:2], "pytest --shard 2/3")
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_the_gate_refuses_while_a_shard_runs_on_another_host_and_after_it_was_killed(demo_site: Site,
                                                                                      other_hosts: None) -> None:
    holder = subprocess.Popen([*_uts("farhost"), sys.executable, "-c", _HOLDER, str(demo_site.file)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        running = gate(demo_site, "v4.8").problems
        assert any("v4.8: being qualified by 'pytest --shard 2/3" in p and "host farhost" in p for p in running)
        envs = [e for e in load_manifest(demo_site.manifest) if e.replicate][:2]
        for env in envs:
            found = standing(demo_site, "v4.8", env, find_kernels(demo_site))
            assert found.verdict is Verdict.PENDING and "farhost" in found.reason
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.communicate()
    killed = gate(demo_site, "v4.8").problems
    assert any("being qualified by" in p and "farhost" in p and "unlock --stale" in p for p in killed)
    assert all(any(p.startswith(f"{e.name}: pending:") and "farhost" in p for p in killed) for e in envs)
    done = subprocess.run([sys.executable, "-m", "condaqa", "unlock", "--stale", "--site", str(demo_site.file)],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "host farhost" in done.stdout and f"pid {holder.pid}" in done.stdout
    after = gate(demo_site, "v4.8").problems
    assert not any(p.startswith("v4.8: being qualified by") for p in after)
    assert all(any(p.startswith(f"{e.name}: pending:") for p in after) for e in envs)  # never back to passed

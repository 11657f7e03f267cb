"""Reliability of the switch, measured and kept: readers never miss `current`, a killed cutover or
rollback never leaves a broken site and the next command settles it, two cutovers never overlap,
and nothing is deleted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_sites import NEW, OLD, audit_state, kernel_paths, make_site, qualify, tree_listing

from condaqa.cli import main
from condaqa.lifecycle import audit, journal, switch
from condaqa.locks import lock_file
from condaqa.site import Site

PAIRS = 100
READERS = 2

# Resolves one path in a loop until the stop file appears; prints "<resolved> <failed>".
READER = """
import os, sys
path, stop = sys.argv[1], sys.argv[2]
ok = failed = 0
print("ready", flush=True)
while not os.path.exists(stop):
    for _ in range(200):
        try:
            os.stat(path)
            ok += 1
        except OSError:
            failed += 1
print(ok, failed)
"""

# Waits for the start file, then cuts over with a gate slowed down to hold the site lock a while.
RACER = """
import os, sys, time
from condaqa.errors import CondaqaError
from condaqa.lifecycle import switch
from condaqa.site import load_site
site, start, release = load_site(sys.argv[1]), sys.argv[2], sys.argv[3]
gate = switch.gate

def held(*args):
    # the racer that took the site lock keeps it until the test has seen the other one end
    deadline = time.monotonic() + 60
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.01)
    return gate(*args)

switch.gate = held
print("ready", flush=True)
while not os.path.exists(start):
    time.sleep(0.001)
try:
    switch.cutover(site)
    print("proceeded")
except CondaqaError as exc:
    print(f"refused: {exc}")
"""


@pytest.fixture
def site(tmp_path: Path) -> Site:
    site = make_site(tmp_path)
    qualify(site)
    return site


def spawn(code: str, *argv: object) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, argv)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def test_readers_never_miss_current_during_cutover_rollback_pairs(site: Site, tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    paths = [site.root / "current/envs/alpha/bin/python", site.root / "envs/beta/bin/python"]
    readers = [spawn(READER, paths[i % 2], stop) for i in range(READERS)]
    try:
        for _ in range(PAIRS):
            switch.cutover(site)
            switch.rollback(site)
    finally:
        stop.touch()
        counts = [tuple(map(int, r.communicate(timeout=60)[0].split())) for r in readers]
    assert [failed for _, failed in counts] == [0] * READERS
    assert all(resolved > 0 for resolved, _ in counts)
    assert len(audit.records(site)) == 2 * PAIRS and audit_state(site) == OLD


def kill_after(site: Site, step: str, *argv: str) -> None:
    env = {**os.environ, journal.CRASH_ENV: step}
    done = subprocess.run(
        [sys.executable, "-m", "condaqa.cli", "--site", str(site.file), *argv], env=env, capture_output=True, text=True
    )
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr


def assert_sound(site: Site, expected: str) -> None:
    """`current` resolves to a complete installation: the old one or the new one, never neither."""
    assert os.readlink(site.current_link) == expected
    assert (site.current_link / "conda-meta").is_dir()
    assert (site.root / "envs" / "alpha" / "bin" / "python").exists()


def assert_settled(site: Site, trees: dict[str, list[str]]) -> None:
    """No leftovers, the audit log replays to where `current` points, pinned kernels follow it."""
    current = os.readlink(site.current_link)
    assert not journal.intent_file(site).exists()
    assert not list(site.root.glob(".*.condaqa-new.*"))
    assert lock_file(site).read_text() == ""
    assert audit_state(site) == current
    assert kernel_paths(site)["beta-pinned"] == f"{site.root}/{current}/envs/beta/bin/python"
    assert {n: tree_listing(site.root / n) for n in trees} == trees


def snapshot(site: Site) -> dict[str, list[str]]:
    return {n: tree_listing(site.root / n) for n in (OLD, NEW)}


@pytest.mark.parametrize("step", switch.CUTOVER_STEPS)
def test_cutover_killed_after_each_step(site: Site, step: str, capsys: pytest.CaptureFixture[str]) -> None:
    trees = snapshot(site)
    kill_after(site, step, "cutover")
    swapped = switch.CUTOVER_STEPS.index(step) >= switch.CUTOVER_STEPS.index("swap")
    assert_sound(site, NEW if swapped else OLD)
    assert main(["--site", str(site.file), "rollback" if swapped else "cutover"]) == 0
    out = capsys.readouterr().out
    assert "note: recovered a stale lock left by 'condaqa cutover'" in out
    if step in ("intent", "kernel", "kernels"):
        assert f"note: undid the interrupted cutover {OLD} -> {NEW}" in out
    if step in ("swap", "qa", "audit"):
        assert f"note: finished the interrupted cutover {OLD} -> {NEW}" in out
    assert_settled(site, trees)


@pytest.mark.parametrize("step", switch.ROLLBACK_STEPS)
def test_rollback_killed_after_each_step(site: Site, step: str, capsys: pytest.CaptureFixture[str]) -> None:
    trees = snapshot(site)
    switch.cutover(site)
    kill_after(site, step, "rollback")
    swapped = switch.ROLLBACK_STEPS.index(step) >= switch.ROLLBACK_STEPS.index("swap")
    assert_sound(site, OLD if swapped else NEW)
    assert main(["--site", str(site.file), "cutover" if swapped else "rollback"]) == 0
    out = capsys.readouterr().out
    assert "note: recovered a stale lock left by 'condaqa rollback'" in out
    if step in ("swap", "qa", "audit"):
        assert f"note: finished the interrupted rollback {NEW} -> {OLD}" in out
    assert_settled(site, trees)


def test_two_cutovers_started_together_exactly_one_proceeds(site: Site, tmp_path: Path) -> None:
    start, release = tmp_path / "start", tmp_path / "release"
    racers = [spawn(RACER, site.file, start, release) for _ in range(2)]
    start.touch()
    deadline = time.monotonic() + 60
    while all(r.poll() is None for r in racers) and time.monotonic() < deadline:  # one holds the lock in its gate
        time.sleep(0.01)
    release.touch()
    outputs = sorted(r.communicate(timeout=60)[0].strip() for r in racers)
    assert outputs[0] == "proceeded"
    assert outputs[1].startswith("refused: ") and "the site is locked by 'condaqa cutover' (pid" in outputs[1]
    assert [r["action"] for r in audit.records(site)] == ["cutover"] and os.readlink(site.current_link) == NEW

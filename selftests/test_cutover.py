"""Unit tests of the cutover library: gate, swap, kernels, rollback, lock, readiness checks."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from helpers_sites import NEW, OLD, audit_state, kernel_paths, make_site, qualify, tree_listing, write_kernel

from condaqa import atomic, permissions
from condaqa.errors import CutoverError, LockHeld
from condaqa.kernels.specs import rewrite_kernel
from condaqa.lifecycle import audit, journal, readiness, switch
from condaqa.lifecycle.gate import gate
from condaqa.locks import identity, lock_file, lock_status, site_lock
from condaqa.site import Site
from condaqa.vocab import Outcome


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


@pytest.fixture
def qualified(site: Site) -> Site:
    qualify(site)
    return site


def test_gate_lists_every_unqualified_environment_and_kernel_environment(site: Site) -> None:
    write_kernel(site.root, "gamma-kernel", f"{site.root}/current/envs/gamma/bin/python")
    qualify(site, envs=("alpha",))
    qualify(site, outcome=Outcome.FAILED, envs=("beta",))
    assert gate(site, NEW).problems == [
        "gamma: kernel gamma-kernel runs it, but the manifest does not list it",
        "beta: failed: imports failed: ImportError: no module named beta_mod (runs kernel beta-current, beta-pinned)",
    ]


def test_gate_refuses_a_passed_environment_that_is_missing_or_changed(qualified: Site) -> None:
    shutil.rmtree(qualified.root / NEW / "envs" / "beta")
    (qualified.root / NEW / "envs" / "alpha" / "conda-meta" / "history").write_text("# edited\n")
    assert [line.split(" (runs kernel")[0] for line in gate(qualified, NEW).problems] == [
        f"alpha: stale: {qualified.root}/{NEW}/envs/alpha changed since it was built (a conda or pip install into "
        "it, or files edited)",
        f"beta: missing: it passed its build, but {qualified.root}/{NEW}/envs/beta is gone or was replaced by "
        "something condaqa did not build",
    ]


def test_refused_cutover_lists_failures_and_changes_nothing(site: Site) -> None:
    kernels = kernel_paths(site)
    with pytest.raises(switch.GateRefused) as refused:
        switch.cutover(site)
    assert [f.split(" (runs")[0] for f in refused.value.failures] == ["alpha: never: never qualified",
                                                                       "beta: never: never qualified"]
    assert "refused, 2 problem(s)" in str(refused.value)
    assert refused.value.exit_code == 1
    assert site.link_target("current") == OLD and site.link_target("qa") == NEW
    assert kernel_paths(site) == kernels
    assert audit.records(site) == [] and not journal.intent_file(site).exists()


def test_force_needs_a_reason(site: Site) -> None:
    with pytest.raises(CutoverError, match="--force needs --reason"):
        switch.cutover(site, force=True, reason="  ")


def test_forced_cutover_records_reason_and_overridden_failures(site: Site) -> None:
    switch.cutover(site, force=True, reason="ticket 42: users wait")
    record = audit.records(site)[-1]
    assert record["forced"] is True and record["reason"] == "ticket 42: users wait"
    assert [f.split(" (runs")[0] for f in record["gate_failures"]] == ["alpha: never: never qualified",
                                                                       "beta: never: never qualified"]


def test_cutover_swaps_rewrites_pinned_kernels_and_removes_qa(qualified: Site) -> None:
    site = qualified
    outcome = switch.cutover(site)
    assert os.readlink(site.current_link) == NEW and not site.qa_link.is_symlink()
    assert (site.root / "envs" / "alpha" / "bin" / "python").exists()
    paths = kernel_paths(site)
    assert paths["alpha-pinned"] == f"{site.root}/{NEW}/envs/alpha/bin/python"
    assert paths["alpha-current"] == f"{site.root}/current/envs/alpha/bin/python"
    spec = json.loads((site.kernels_dir / "beta-pinned" / "kernel.json").read_text())
    assert spec["env"]["PATH"] == f"{site.root}/{NEW}/envs/beta/bin:/usr/bin"
    assert [Path(k["spec"]).parent.name for k in outcome.intent.kernels] == ["alpha-pinned", "beta-pinned"]
    record = audit.records(site)[-1]
    assert {"time", "user", "host", "action", "from", "to", "forced", "reason", "kernels"} <= set(record)
    assert (record["action"], record["from"], record["to"], record["qa"]) == ("cutover", OLD, NEW, "remove")
    assert not journal.intent_file(site).exists()


def test_keep_qa(qualified: Site) -> None:
    switch.cutover(qualified, keep_qa=True)
    assert os.readlink(qualified.qa_link) == NEW


def test_cutover_to_the_current_installation_is_refused(qualified: Site) -> None:
    with pytest.raises(CutoverError, match=f"already points to {OLD}"):
        switch.cutover(qualified, to=OLD)


def test_cutover_to_an_unknown_installation_names_the_path(qualified: Site) -> None:
    with pytest.raises(CutoverError, match=f"{qualified.root}/v9: not a complete installation"):
        switch.cutover(qualified, to="v9")


def test_cutover_needs_current_to_be_a_symlink(qualified: Site) -> None:
    qualified.current_link.unlink()
    qualified.current_link.mkdir()
    with pytest.raises(CutoverError, match="is not a symlink"):
        switch.cutover(qualified)


def test_rollback_restores_kernels_and_qa_and_deletes_nothing(qualified: Site) -> None:
    site = qualified
    kernels, trees = kernel_paths(site), {n: tree_listing(site.root / n) for n in (OLD, NEW, "kernels")}
    switch.cutover(site)
    assert audit.rollback_target(site) == OLD
    outcome = switch.rollback(site, reason="smoke test failed")
    assert os.readlink(site.current_link) == OLD and os.readlink(site.qa_link) == NEW
    assert outcome.intent.qa == "restore"
    assert kernel_paths(site) == kernels
    assert {n: tree_listing(site.root / n) for n in (OLD, NEW, "kernels")} == trees
    assert audit.rollback_target(site) is None
    assert audit_state(site) == OLD


def test_rollback_without_a_cutover_is_refused(site: Site) -> None:
    with pytest.raises(CutoverError, match="no cutover recorded"):
        switch.rollback(site)


def test_second_rollback_is_refused(qualified: Site) -> None:
    switch.cutover(qualified)
    switch.rollback(qualified)
    with pytest.raises(CutoverError, match=f"already points to {OLD}, as before the last cutover"):
        switch.rollback(qualified)


def test_failed_swap_leaves_no_temporary_link_and_undoes_kernels(
        qualified: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    site, kernels, real = qualified, kernel_paths(qualified), os.replace

    def replace(src: str, dst: str) -> None:
        if Path(dst) == site.current_link:
            raise OSError("boom")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(CutoverError, match="failed and was undone: boom"):
        switch.cutover(site)
    assert os.readlink(site.current_link) == OLD
    assert not list(site.root.glob(".current.*"))
    assert kernel_paths(site) == kernels
    assert not journal.intent_file(site).exists()
    assert audit.records(site)[-1]["action"] == "abort" and audit_state(site) == OLD


def test_failure_after_the_swap_is_finished_by_the_next_command(
        qualified: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    site = qualified
    monkeypatch.setattr(audit, "append", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(CutoverError, match="could not finish"):
        switch.cutover(site)
    assert os.readlink(site.current_link) == NEW and journal.intent_file(site).exists()
    monkeypatch.undo()
    with pytest.raises(CutoverError, match=f"already points to {NEW}"):
        switch.cutover(site, to=NEW)
    assert audit.records(site)[-1]["recovered"] is True and audit_state(site) == NEW
    assert not journal.intent_file(site).exists()


def test_stale_temporary_link_is_removed_by_the_next_command(qualified: Site) -> None:
    stale = atomic.temp_link_name(qualified.current_link).with_name(".current.condaqa-new.999999")
    os.symlink(NEW, stale)
    outcome = switch.cutover(qualified)
    assert f"removed the temporary link {stale}" in outcome.notes
    assert not stale.is_symlink()


def test_lock_contention_names_the_holder(qualified: Site) -> None:
    with site_lock(qualified, "condaqa cutover --to v4.8"):
        with pytest.raises(LockHeld) as held:
            switch.cutover(qualified)
        assert lock_status(qualified).startswith("locked by 'condaqa cutover --to v4.8'")
    message = str(held.value)
    assert str(lock_file(qualified)) in message
    for part in ("'condaqa cutover --to v4.8'", f"pid {os.getpid()}", "user ", "host ", "since "):
        assert part in message
    assert lock_status(qualified) == ""


def test_stale_lock_of_a_dead_process_is_recovered(qualified: Site) -> None:
    qualified.state_dir.mkdir(exist_ok=True)
    host = identity()["host"]
    holder = {"pid": 999999999, "user": "alice", "host": host, "command": "condaqa cutover", "since": "yesterday"}
    lock_file(qualified).write_text(json.dumps(holder))
    assert lock_status(qualified).startswith("stale lock left by 'condaqa cutover' (pid 999999999, user alice")
    outcome = switch.cutover(qualified)
    assert outcome.notes[0].startswith("recovered a stale lock left by 'condaqa cutover' (pid 999999999")
    assert lock_file(qualified).read_text() == ""


def test_rewrite_kernel_and_restore(site: Site) -> None:
    root = site.root
    spec = write_kernel(root, "k", f"{root}/v4.3/envs/a/bin/python", env={"PATH": f"{root}/v4.30/bin:{root}/v4.3"})
    spec.chmod(0o640)
    original = json.loads(spec.read_text())
    assert rewrite_kernel(site, spec, root / "v4.3", root / "v4.8") is True
    changed = json.loads(spec.read_text())
    assert changed["argv"][0] == f"{root}/v4.8/envs/a/bin/python"
    assert changed["env"]["PATH"] == f"{root}/v4.30/bin:{root}/v4.8"
    assert stat.S_IMODE(spec.stat().st_mode) == 0o640
    assert rewrite_kernel(site, spec, root / "v4.3", root / "v4.8") is False
    assert rewrite_kernel(site, spec, root / "v4.8", root / "v4.3") is True
    assert json.loads(spec.read_text()) == original
    assert [p.name for p in spec.parent.iterdir()] == ["kernel.json"]


def test_prefix_references_are_warned(site: Site) -> None:
    env = site.root / NEW / "envs" / "alpha"
    (env / "bin" / "tool").write_text(f"#!{site.root}/{OLD}/envs/alpha/bin/python\nprint(1)\n")
    (env / "lib").joinpath(*next((env / "lib").iterdir()).parts[-1:], "site-packages", "dev.pth").write_text(
        f"{site.root}/{OLD}/envs/alpha/src\n"
    )
    (env / "etc" / "conda" / "activate.d").mkdir(parents=True)
    (env / "etc" / "conda" / "activate.d" / "x.sh").write_text(f"export X={site.qa_link}/envs/alpha\n")
    qualify(site)
    warnings = switch.cutover(site, keep_qa=True).warnings
    assert [w.split(": ", 1)[1] for w in warnings] == [
        f"shebang names {site.root}/{OLD} (breaks when {OLD} is retired)",
        f".pth file names {site.root}/{OLD} (breaks when {OLD} is retired)",
    ]
    old, new = site.installation(OLD), site.installation(NEW)
    with_qa = readiness.prefix_references(site, old, new, qa_goes=True)
    script = f"{env}/etc/conda/activate.d/x.sh"
    assert f"{script}: activation script names {site.qa_link} (removed by this cutover" in with_qa[-1]


def test_cutover_refuses_environments_fewer_users_can_read(qualified: Site) -> None:
    (qualified.root / NEW / "envs" / "alpha").chmod(0o700)
    (qualified.root / NEW / "envs" / "beta" / "lib").chmod(0o750)
    with pytest.raises(switch.GateRefused) as refused:
        switch.cutover(qualified)
    assert [f.split(": ", 1)[1] for f in refused.value.failures] == [
        f"readable by owner root only, but {OLD}'s alpha is readable by everyone",
        f"readable by group root, but {OLD}'s beta is readable by everyone",
    ]
    assert refused.value.failures[0].startswith(f"{qualified.root}/{NEW}/envs/alpha:")


def test_group_readable_current_accepts_the_same_group(qualified: Site) -> None:
    for name in (OLD, NEW):
        (qualified.root / name / "envs" / "alpha").chmod(0o750)
    assert readiness.readability_problems(qualified.installation(OLD), qualified.installation(NEW)) == []
    assert switch.cutover(qualified).intent.new == NEW and os.readlink(qualified.current_link) == NEW


def test_lost_group_permissions_are_warned(qualified: Site) -> None:
    (qualified.root / OLD / "envs" / "alpha").chmod(0o2775)
    warnings = switch.cutover(qualified).warnings
    root = qualified.root
    assert warnings == [f"{root}/{NEW}/envs/alpha: not group-writable, no setgid bit, unlike {root}/{OLD}/envs/alpha"]


def test_match_group_gives_group_bits_within_owner_bits(tmp_path: Path) -> None:
    reference, tree = tmp_path / "ref", tmp_path / "tree"
    reference.mkdir()
    reference.chmod(0o2775)
    (tree / "bin").mkdir(parents=True)
    (tree / "data.txt").write_text("x")
    (tree / "bin" / "tool").write_text("x")
    (tree / "bin" / "tool").chmod(0o755)
    os.symlink("data.txt", tree / "link")
    for folder in (tree, tree / "bin"):
        folder.chmod(0o755)
    (tree / "data.txt").chmod(0o600)
    permissions.match_group(reference, tree)
    paths = (tree, tree / "bin", tree / "data.txt", tree / "bin" / "tool")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in paths}
    assert modes == {"tree": 0o2775, "bin": 0o2775, "data.txt": 0o660, "tool": 0o775}


def test_inherit_permissions_uses_the_twin_in_current(qualified: Site) -> None:
    (qualified.root / OLD / "envs" / "alpha").chmod(0o2775)
    permissions.inherit_permissions(qualified, qualified.installation(NEW), "alpha")
    assert stat.S_IMODE((qualified.root / NEW / "envs" / "alpha" / "lib").stat().st_mode) == 0o2775
    assert switch.cutover(qualified).warnings == []

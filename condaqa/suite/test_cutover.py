"""Cutover as a fixture: switch `current` to the qualified installation, smoke-test it through
`current`, and roll back automatically if any smoke test fails.

Deselected unless `-m` names it (`pytest -m cutover`): it changes the site for every user,
so it runs in one process (no -n, or -n 0). After `condaqa cutover` (qa removed, or kept on
what current now points to) there is no cutover to make: it smoke-tests `current` as it is,
and leaves a rollback to the administrator.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from condaqa.checks.imports import import_module, key_modules
from condaqa.errors import CondaqaError
from condaqa.kernels.launch import start
from condaqa.kernels.specs import find_kernels
from condaqa.lifecycle import audit, switch
from condaqa.manifest import Environment
from condaqa.sandbox.box import Sandbox
from condaqa.site import Site

pytestmark = pytest.mark.cutover


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One smoke test per REPLICATE environment and per kernel spec, with their names as ids."""
    from condaqa.harness import KERNELS_KEY, MANIFEST_KEY

    if "smoke_env" in metafunc.fixturenames:
        names = [e.name for e in metafunc.config.stash.get(MANIFEST_KEY, []) if e.replicate]
        metafunc.parametrize("smoke_env", names, ids=str)
    if "smoke_kernel" in metafunc.fixturenames:
        metafunc.parametrize("smoke_kernel", [k.folder for k in metafunc.config.stash.get(KERNELS_KEY, [])], ids=str)


@dataclass(frozen=True)
class Switched:
    outcome: switch.Outcome | None  # None: the cutover was made before this run (`condaqa cutover`)
    modules: dict[str, list[str]]  # each environment's key modules, as the qualification found them before the swap


@pytest.fixture(scope="module")
def cutover_outcome(request: pytest.FixtureRequest, site: Site, sandbox: Sandbox,
                    manifest: list[Environment]) -> Iterator[Switched]:
    """The gated cutover of what `qa` points to, rolled back after the module if a smoke test failed; or,
    with no cutover to make, `current` as it is, smoke-tested and left to the administrator."""
    made = switch.nothing_to_cut_over(site)
    try:
        modules = {e.name: key_modules(sandbox, e) for e in manifest if e.replicate}
        outcome = None if made else switch.cutover(site, command="pytest -m cutover")
    except CondaqaError as exc:
        pytest.fail(f"cutover not performed:\n{exc}", pytrace=False)
    if outcome is None:
        _show(request, [f"no cutover to make ({made}): smoke-testing {site.current_link} -> "
                        f"{site.link_target(site.current_name)} as it is"])
    else:
        _show(request, [f"warning: {w}" for w in outcome.warnings] + [f"cutover: current -> {outcome.intent.new}"])
    failed_before = request.session.testsfailed
    yield Switched(outcome, modules)
    failed = request.session.testsfailed - failed_before
    if failed and outcome is not None:
        back = switch.rollback(site, reason=f"{failed} smoke test(s) failed", command="pytest -m cutover (rollback)")
        _show(request, [f"rolled back: current -> {back.intent.new}, {failed} smoke test(s) failed"])
    elif failed:
        target = audit.rollback_target(site)
        undo = f"`condaqa rollback` returns {site.current_link} to {target}" if target else "there is no rollback point"
        _show(request, [f"{failed} smoke test(s) failed; {undo}"])


def test_environment_imports(cutover_outcome: Switched, site: Site, sandbox: Sandbox, smoke_env: str) -> None:
    """Through current/envs/<env>/bin/python, the environment imports its key packages."""
    python = site.current_link / "envs" / smoke_env / "bin" / "python"
    modules = cutover_outcome.modules[smoke_env]
    failures = [run for run in (import_module(sandbox, smoke_env, python, m) for m in modules) if not run.passed]
    assert not failures, "\n\n".join(f"{python} cannot import {run.name}:\n{run.tail()}" for run in failures)


def test_kernel_starts_through_current(cutover_outcome: Switched, site: Site, sandbox: Sandbox,
                                      manifest: list[Environment], smoke_kernel: str) -> None:
    """Each kernel, as its spec now reads, starts through `current`, imports its modules and runs there."""
    kernel = {k.folder: k for k in find_kernels(site)}[smoke_kernel]  # the specs as the cutover rewrote them
    env = next((e for e in manifest if e.name == kernel.environment), None)
    modules = cutover_outcome.modules.get(kernel.environment, [])
    run = start(sandbox, kernel.environment, kernel, kernel.argv, kernel.env, modules, env.timeout if env else 120,
                python=Path(kernel.python))
    assert run.ok, f"{kernel.spec_file}: {run.problem}\n{run.stderr}"
    expected = site.current_link / "envs" / kernel.environment
    assert os.path.realpath(run.prefix) == os.path.realpath(expected), f"the kernel ran in {run.prefix}, not {expected}"


def _show(request: pytest.FixtureRequest, lines: list[str]) -> None:
    """Print past output capture: what the cutover did belongs in the run's log, pass or fail."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        for line in lines:
            reporter.write_line(line)

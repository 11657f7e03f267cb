"""Cutover as a fixture: switch `current` to the qualified installation, smoke-test it through
`current`, and roll back automatically if any smoke test fails.

Deselected by default (addopts `-m "not cutover"`); `pytest -m cutover` runs it. It changes the
site for every user, so it runs in one process (no -n, or -n 0); --dist loadgroup cannot
promise that while pytest-xdist#1386 (no grouping under pytest 9.2) is open.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from condaqa import checks
from condaqa import cutover as lifecycle
from condaqa.errors import CondaqaError
from condaqa.kernels import find_kernels
from condaqa.manifest import Environment, load_manifest
from condaqa.prefix import read_prefix, top_level_modules
from condaqa.site import Site, load_site

pytestmark = pytest.mark.cutover

def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One smoke test per REPLICATE environment and per kernel spec, with their names as ids."""
    wanted = {"smoke_env", "smoke_kernel"} & set(metafunc.fixturenames)
    if not wanted:
        return
    try:
        site = load_site(metafunc.config.getoption("site", None))
        names = {
            "smoke_env": [e.name for e in load_manifest(site.manifest) if e.replicate],
            "smoke_kernel": [k.name for k in find_kernels(site)],
        }
    except CondaqaError:  # the default run deselects this module; a bad site is reported by the plugin
        names = {"smoke_env": [], "smoke_kernel": []}
    for fixture in wanted:
        metafunc.parametrize(fixture, names[fixture], ids=str)


@pytest.fixture(scope="module")
def cutover(request: pytest.FixtureRequest, site: Site) -> Iterator[lifecycle.Outcome]:
    """The gated cutover of what `qa` points to; rolled back after the module if a smoke test failed."""
    if hasattr(request.config, "workerinput"):  # how pytest-xdist marks a worker process
        pytest.fail("run `pytest -m cutover -n 0`: one process must own the cutover and its rollback", pytrace=False)
    try:
        outcome = lifecycle.cutover(site, command="pytest -m cutover")
    except CondaqaError as exc:
        pytest.fail(f"cutover not performed:\n{exc}", pytrace=False)
    _show(request, [f"warning: {w}" for w in outcome.warnings] + [f"cutover: current -> {outcome.intent.new}"])
    failed_before = request.session.testsfailed
    yield outcome
    failed = request.session.testsfailed - failed_before
    if failed:
        back = lifecycle.rollback(site, reason=f"{failed} smoke test(s) failed", command="pytest -m cutover (rollback)")
        _show(request, [f"rolled back: current -> {back.intent.new}, {failed} smoke test(s) failed"])


def test_environment_imports(
    cutover: lifecycle.Outcome, site: Site, manifest: list[Environment], smoke_env: str
) -> None:
    """Through current/envs/<env>/bin/python, the environment imports its key packages."""
    env = next(e for e in manifest if e.name == smoke_env)
    prefix = site.current / "envs" / smoke_env
    modules = list(env.imports) if env.imports is not None else top_level_modules(read_prefix(prefix))
    python = prefix / "bin" / "python"
    # readonly: this python now runs under `current`, where nothing may be written (no __pycache__)
    failures = [run for run in (checks.import_module(python, m, readonly=True) for m in modules) if not run.passed]
    assert not failures, "\n\n".join(f"{python} cannot import {run.name}:\n{run.tail()}" for run in failures)


def test_kernel_interpreter(cutover: lifecycle.Outcome, site: Site, smoke_kernel: str) -> None:
    """Each kernel spec names an interpreter that exists and can be run."""
    kernel = {k.name: k for k in find_kernels(site)}[smoke_kernel]
    assert shutil.which(kernel.interpreter), f"{kernel.spec_file}: interpreter {kernel.interpreter!r} does not exist"


def _show(request: pytest.FixtureRequest, lines: list[str]) -> None:
    """Print past output capture: what the cutover did belongs in the run's log, pass or fail."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        for line in lines:
            reporter.write_line(line)

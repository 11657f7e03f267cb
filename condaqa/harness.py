"""What the plugin registers once a site is active: markers, fixtures, parametrization by environment,
outcomes forwarded, xdist scheduling; and, in the controller, the session's reports (session.py).

Reports go under the folder pytest runs from (its invocation folder, as --junitxml resolves),
unless site.toml names a folder.
The qualification suite ships in `condaqa.suite` (`pytest --pyargs condaqa.suite --site
PATH`). Each of its tests carries the required check it runs; the harness parametrizes them
from qualification/required.py, builds each environment once per worker process through
qualification/builds.py, and forwards every test's outcome to qualification/store.py: what
passing means is the library's. All tests of one environment run in one xdist worker.
A cutover run (`-m cutover`, in one process) makes no qualification: the suite's cutover
fixture switches `current` and smoke-tests it, and its JUnit goes to reports/cutover.xml.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from condaqa import locks, shards
from condaqa.checks.imports import key_modules
from condaqa.demo.site import ensure_demo
from condaqa.errors import BuildError, CondaqaError
from condaqa.kernels.specs import Kernel, find_kernels
from condaqa.manifest import Environment, load_manifest, site_manifest
from condaqa.qualification import builds, store
from condaqa.qualification.required import (
    BUILD,
    EXPORT,
    IMPORTS,
    KERNEL,
    OWNER,
    VERSIONS,
    CheckId,
    check_manifest,
    required_checks,
)
from condaqa.replication.replicate import BuildResult
from condaqa.sandbox.box import CurrentChanged, Sandbox, sandbox_for
from condaqa.scheduling import GroupScheduling
from condaqa.session import CHECK, Session, environment_of
from condaqa.site import Site, load_site
from condaqa.sitefile import SUITE
from condaqa.tracker import Tracker
from condaqa.triage import Triage, triaged
from condaqa.vocab import Category, Outcome

SITE_KEY = pytest.StashKey[Site]()
MANIFEST_KEY = pytest.StashKey[list[Environment]]()
KERNELS_KEY = pytest.StashKey[list[Kernel]]()
SHARD_KEY = pytest.StashKey[tuple[shards.Shard, dict[str, int]]]()  # this shard, and every environment's
TRIAGE_KEY = pytest.StashKey[Triage]()
STARTED_IN_CURRENT_KEY = pytest.StashKey[bool]()  # a kernel test's baseline: did current's spec start
REQUIRES = "condaqa_requires"  # marker of a suite test: the kind of required check it runs
CUTOVER = "cutover"  # marker of the suite's cutover tests
MARKERS = (f"{REQUIRES}(kind): the kind of required check a condaqa suite test runs",
           f"{CHECK}(env, check): the environment and required check of a condaqa test",
           f"{CUTOVER}: performs a real cutover of the site (deselected unless -m names it)",
           "xdist_group(name): the xdist worker group (registered here too, for -p no:xdist)")
_FALLBACK = {BUILD: Category.BUILD_FAILED, VERSIONS: Category.VERSION_MISMATCH, IMPORTS: Category.IMPORT_FAILED,
             OWNER: Category.OWNER_CHECK_FAILED, KERNEL: Category.KERNEL_FAILED, EXPORT: Category.BUILD_FAILED}


def activate(config: pytest.Config, path: str) -> None:
    """Load the site at `path` (a usage error if anything is wrong with it), register this module's hooks and
    fixtures, and in the controller check that the run can do what it is asked to, before any test."""
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    try:
        site = load_site(path, base=config.invocation_params.dir)
        load_manifest(site.manifest)  # a broken manifest is said before a demo is built
        if site.demo and not hasattr(config, "workerinput"):
            ensure_demo(site, progress=lambda line: print(line, flush=True))
        manifest = site_manifest(site)
        kernels = find_kernels(site)
        check_manifest(manifest, kernels)
        sandbox_for(site)  # a bad sandbox_user or $CONDAQA_SANDBOX is a usage error, before any test
    except CondaqaError as exc:
        raise pytest.UsageError(str(exc)) from None
    try:
        shard = _shard(config)
        site = _past_one_host(config, site, shard)
    except CondaqaError as exc:
        raise pytest.UsageError(str(exc)) from None
    if shard is not None:
        durations = shards.load_durations(site, _qa_name(site))
        config.stash[SHARD_KEY] = shard, shards.assign([e.name for e in manifest], shard.total, durations)
    config.stash[SITE_KEY], config.stash[MANIFEST_KEY], config.stash[KERNELS_KEY] = site, manifest, kernels
    config.pluginmanager.register(sys.modules[__name__], "condaqa-harness")
    if hasattr(config, "workerinput"):
        return
    if cutover_run(config):
        _start_cutover_run(config, site)
    else:
        _start_qualification(config, site, manifest, kernels)


def _shard(config: pytest.Config) -> shards.Shard | None:
    """`--shard I/N`, else the shard GitLab's parallel job or a Slurm array task gives this process."""
    given = config.getoption("shard")
    return shards.parse(str(given)) if given else shards.from_environ(os.environ)


def _past_one_host(config: pytest.Config, site: Site, shard: shards.Shard | None) -> Site:
    """A shard, or a package cache shared by hosts, needs locks that exclude other hosts: refused where the
    mount of the site's state says they do not. A shard keeps packages on its own host's disk unless the site
    shares one cache. xdist's SSH workers that fail at start are not restarted forever."""
    if shard is not None or site.shared_package_cache:
        reach = locks.lock_reach(site.root)
        if not reach.holds and not hasattr(config, "workerinput"):
            what = f"run shard {shard.label}" if shard else "build with one package cache shared by hosts"
            raise CondaqaError(f"refusing to {what}: condaqa's locks would not exclude another host: {reach.words()}"
                               + ("" if shard else "; or drop shared_package_cache from site.toml"))
    if any("ssh=" in tx for tx in config.getoption("tx", None) or ()) and \
            config.getoption("maxworkerrestart", None) is None:
        config.option.maxworkerrestart = "0"
    if shard is not None and not site.shared_package_cache:
        return dataclasses.replace(site, per_host_cache=True)
    return site


def cutover_run(config: pytest.Config) -> bool:
    """Whether `-m` names the cutover tests: they change the site for every user, so they run only when asked for."""
    expression = config.option.markexpr or ""
    return CUTOVER in expression and f"not {CUTOVER}" not in expression


def _start_cutover_run(config: pytest.Config, site: Site) -> None:
    """One process owns the cutover and its rollback; its JUnit is its own, beside the qualification's."""
    if config.getoption("dist", "no") != "no" or config.getoption("numprocesses", None):
        raise pytest.UsageError("run `pytest -m cutover -n 0`: one process must own the cutover and its rollback")
    if config.option.xmlpath is None:
        config.option.xmlpath = str(site.reports_dir / "cutover.xml")


def _start_qualification(config: pytest.Config, site: Site, manifest: list[Environment],
                         kernels: list[Kernel]) -> None:
    qa = site.link_target(site.qa_name)
    if qa is None:
        raise pytest.UsageError(f"{site.qa_link} is absent: there is no installation to qualify (after a cutover, "
                                "make one with `condaqa new-installation NAME` or point qa at one with "
                                "`condaqa qa NAME`)")
    if site.qa_link.resolve() == site.current_link.resolve():
        raise pytest.UsageError(f"{site.qa_link} and {site.current_link} both point to {qa}: a qualification builds "
                                "in qa and never where production lives; point qa at the installation to qualify "
                                "(`condaqa qa NAME`, or make one with `condaqa new-installation NAME`)")
    try:  # refuse to start during a cutover; the workers take the lock for as long as they qualify
        with locks.qualifying(site, _qualified_installations(site), "pytest (starting)"):
            pass
    except CondaqaError as exc:
        raise pytest.UsageError(str(exc)) from None
    shard, assignment = config.stash.get(SHARD_KEY, (None, {}))
    junit = f"junit-{shard.suffix}.xml" if shard else "junit.xml"
    qualification = Session(config, site, manifest, kernels, junit, shard.label if shard else "")
    config.pluginmanager.register(qualification, "condaqa-session")
    config.pluginmanager.register(Tracker(config, site, manifest, kernels, shard, assignment,
                                          qualification.write_facts), "condaqa-tracker")


def _site(config: pytest.Config) -> Site:
    return config.stash[SITE_KEY]


def _manifest(config: pytest.Config) -> list[Environment]:
    return config.stash[MANIFEST_KEY]


def _kernels(config: pytest.Config) -> list[Kernel]:
    return config.stash[KERNELS_KEY]


def _param_id(env: Environment, check: CheckId) -> str:
    if check.kind == OWNER:
        return f"{env.name}-{check.target}"
    return check.target if check.kind == KERNEL else env.name


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A suite test runs one kind of required check: one parameter per environment needing it."""
    config = metafunc.config
    marker = metafunc.definition.get_closest_marker(REQUIRES)
    if marker is None:
        return
    site, kernels, kind = _site(config), _kernels(config), str(marker.args[0])
    params, qa = [], _qa_name(site)
    for env in _manifest(config):
        for check in required_checks(site, env, kernels, qa):
            if CheckId.parse(check).kind == kind:
                marks = [pytest.mark.xdist_group(env.name), pytest.mark.condaqa_check(env.name, check)]
                params.append(pytest.param(env.name, id=_param_id(env, CheckId.parse(check)), marks=marks))
    target = "exported_env" if kind == EXPORT else "_condaqa_env"
    metafunc.parametrize(target, params, indirect=target == "_condaqa_env")


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """The suite's modules have the ids they have in a checkout (`condaqa/suite/test_kernels.py::...`) wherever
    condaqa is installed: a `.venv` inside the project would otherwise put its own path in every test id."""
    if module_path.parent != SUITE:
        return None
    module: pytest.Module = pytest.Module.from_parent(parent, path=module_path,
                                                      nodeid=f"condaqa/suite/{module_path.name}")
    return module


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`-k ENV` selects every test of an environment, a kernel's named otherwise too (before -k applies).
    Cutover tests change the site for every user: they run only when `-m` names them."""
    for item in items:
        marker = item.get_closest_marker(CHECK)
        if marker is not None:
            item.extra_keyword_matches.add(str(marker.args[0]))
    if cutover_run(config):
        return
    _only_this_shard(config, items)
    chosen = [i for i in items if i.get_closest_marker(CUTOVER) is None]
    if len(chosen) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i.get_closest_marker(CUTOVER) is not None])
        items[:] = chosen


def _only_this_shard(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A shard keeps the tests of its environments, whole; tests of no environment run in shard 1."""
    shard, assignment = config.stash.get(SHARD_KEY, (None, {}))
    if shard is None:
        return
    mine = []
    for item in items:
        marker = item.get_closest_marker(CHECK)
        mine.append(assignment.get(str(marker.args[0]), 1) == shard.index if marker else shard.index == 1)
    if not all(mine):
        config.hook.pytest_deselected(items=[i for i, keep in zip(items, mine, strict=True) if not keep])
        items[:] = [i for i, keep in zip(items, mine, strict=True) if keep]


@pytest.fixture(scope="session")
def site(request: pytest.FixtureRequest) -> Site:
    return _site(request.config)


@pytest.fixture(scope="session")
def manifest(request: pytest.FixtureRequest) -> list[Environment]:
    return _manifest(request.config)


@pytest.fixture(scope="session")
def kernels(request: pytest.FixtureRequest) -> list[Kernel]:
    return _kernels(request.config)


@pytest.fixture(scope="session")
def sandbox(site: Site) -> Sandbox:
    """Where owner checks, probes, kernels and pip run: never as root, nothing writable but a scratch folder."""
    return sandbox_for(site)


def _qa_name(site: Site) -> str:
    return site.link_target(site.qa_name) or ""


@pytest.fixture(scope="session")
def _qualifying(request: pytest.FixtureRequest, site: Site) -> Iterator[None]:
    """The qualification lock of qa and current, shared, for as long as this process qualifies."""
    try:
        shard = request.config.stash.get(SHARD_KEY, (None, {}))[0]
        run = f"pytest --shard {shard.label}" if shard else "pytest"
        lock = locks.qualifying(site, _qualified_installations(site), f"{run} (condaqa qualification)")
        lock.__enter__()
    except CondaqaError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield
    lock.__exit__(None, None, None)


def _qualified_installations(site: Site) -> set[str]:
    """What a qualification builds in and runs the python of: qa's installation and current's."""
    return {site.qa_installation().name, site.current_installation().name}


@dataclass
class Replicated:
    """An environment as built in qa for this run, or the error that stopped the build."""

    env: Environment
    prefix: Path
    required: dict[str, str]
    build: BuildResult | None = None
    error: BuildError | None = None
    seconds: float = 0.0
    reported: bool = field(default=False)

    @property
    def build_id(self) -> str:
        return self.build.stamp.build_id if self.build else ""

    def require_built(self) -> None:
        """Skip a test whose environment did not build; test_builds reports why."""
        __tracebackhide__ = True
        if self.error is not None:
            pytest.skip(f"{self.env.name} did not build (see test_builds[{self.env.name}])")


_BUILT: dict[str, Replicated] = {}


@pytest.fixture(scope="session")
def _condaqa_env(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def replicated_env(request: pytest.FixtureRequest, _condaqa_env: str, _qualifying: None,
                   sandbox: Sandbox) -> Replicated:
    """The environment built in qa, once per worker process whatever the fixture teardown order."""
    if _condaqa_env in _BUILT:
        return _BUILT[_condaqa_env]
    site, kernels = _site(request.config), _kernels(request.config)
    env = next(e for e in _manifest(request.config) if e.name == _condaqa_env)
    started = time.monotonic()
    replicated = Replicated(env, site.qa_installation().env_prefix(env.name),
                            required_checks(site, env, kernels, _qa_name(site)))
    try:
        replicated.build = builds.build(site, sandbox, env, rebuild=request.config.getoption("rebuild"))
    except BuildError as exc:
        replicated.error = exc
    replicated.seconds = time.monotonic() - started
    _BUILT[_condaqa_env] = replicated
    return replicated


@pytest.fixture
def exported_env(request: pytest.FixtureRequest, _qualifying: None) -> str:
    return str(request.param)


@pytest.fixture
def condaqa_check_id(request: pytest.FixtureRequest) -> str:
    """The required check this test runs (qualification's id: "versions", "owner:hlink/check_x.py", ...)."""
    marker = request.node.get_closest_marker(CHECK)
    if marker is None:
        raise pytest.UsageError(f"{request.node.nodeid} is not a parametrized condaqa check")
    return str(marker.args[1])


@pytest.fixture
def fail_triaged(request: pytest.FixtureRequest) -> Callable[[Triage], NoReturn]:
    """Fail the test with a triaged message; its category goes into the results, the summary and JUnit."""

    def fail(found: Triage) -> NoReturn:
        __tracebackhide__ = True
        request.node.stash[TRIAGE_KEY] = found
        pytest.fail(found.message(), pytrace=False)

    return fail


def key_modules_or_fail(sandbox: Sandbox, env: Environment, fail: Callable[[Triage], NoReturn]) -> list[str]:
    """The environment's key modules; finding them changed current (where nothing isolates): current-changed."""
    try:
        return key_modules(sandbox, env)
    except CurrentChanged as exc:
        fail(triaged(Category.CURRENT_CHANGED, env.name, str(exc)))


_OUTCOMES = {"passed": Outcome.PASSED, "failed": Outcome.FAILED, "skipped": Outcome.SKIPPED}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Forward the outcome of each required check to the library; announce a build to the controller."""
    report_ = yield
    marker = item.get_closest_marker(CHECK)
    if marker is None:
        return report_
    name, check = str(marker.args[0]), str(marker.args[1])
    replicated = _BUILT.get(name)
    if report_.when == "setup" and replicated is not None and not replicated.reported:
        replicated.reported = True
        report_.condaqa_build = _build_words(replicated)  # type: ignore[attr-defined]
    if report_.when == "call" or (report_.when == "setup" and report_.outcome != "passed"):
        _forward(item, name, check, report_, replicated)
    return report_


def _forward(item: pytest.Item, name: str, check: str, report_: pytest.TestReport,
             replicated: Replicated | None) -> None:
    site = _site(item.config)
    env = next(e for e in _manifest(item.config) if e.name == name)
    outcome = _OUTCOMES.get(report_.outcome, Outcome.FAILED)
    found = item.stash.get(TRIAGE_KEY, None) if outcome is Outcome.FAILED else None
    if outcome is Outcome.FAILED and found is None:  # an error inside the test itself, not a triaged failure
        found = triaged(_FALLBACK[CheckId.parse(check).kind], name, report_.longreprtext[-2000:])
    required = replicated.required if replicated else required_checks(site, env, _kernels(item.config), _qa_name(site))
    store.record(site, site.qa_installation().name, env, check, outcome,
                         build_id=replicated.build_id if replicated else "", required=required, triage=found,
                         qa_tail=found.qa_tail if found else "", current_tail=found.current_tail if found else "",
                         seconds=report_.duration, started_in_current=item.stash.get(STARTED_IN_CURRENT_KEY, None))


def _build_words(replicated: Replicated) -> dict[str, Any]:
    """What the controller prints when a build ends: built (the first time), rebuilt, up to date, or where it
    failed."""
    if replicated.error is not None:
        words = f"FAILED at {replicated.error.stage}"
    else:
        built = replicated.build
        words = "up to date" if built is None or not built.rebuilt else "rebuilt" if built.replaced else "built"
    return {"env": replicated.env.name, "seconds": replicated.seconds, "words": words}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Send all tests of one environment to one worker, so each environment is built once, in the worker
    that runs its checks (`-n` alone, `--dist load` or `--dist loadgroup`; other distributions are the user's)."""
    if config.getoption("dist") not in ("load", "loadgroup"):
        return None
    from xdist.workermanage import parse_tx_spec_config

    names = [e.name for e in _manifest(config)]
    kernel_envs = {k.name: k.environment for k in _kernels(config) if k.environment}
    return GroupScheduling(len(parse_tx_spec_config(config)),
                           lambda nodeid: environment_of(nodeid, names, kernel_envs) or nodeid, log)

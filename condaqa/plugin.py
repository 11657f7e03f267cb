"""The pytest plugin: options, parametrization by environment, fixtures, outcomes forwarded, progress.

Installed as a `pytest11` entry point and inert unless a site is named (`--site PATH`,
$CONDAQA_SITE, the `condaqa_site` ini key, or manifests/site.toml under pytest's rootdir).
Reports go under the folder pytest runs from (its invocation folder, as --junitxml resolves),
unless site.toml names a folder.
The qualification suite ships in `condaqa.suite` (`pytest --pyargs condaqa.suite --site
PATH`). Each of its tests carries the required check it runs; the plugin parametrizes them
from qualification/required.py, builds each environment once per worker process through
qualification/builds.py, and forwards every test's outcome to qualification/store.py: what
passing means is the library's. All tests of one environment run in one xdist worker.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from condaqa import locks, report
from condaqa.build.replicate import BuildResult
from condaqa.checks.imports import key_modules
from condaqa.demo.site import ensure_demo
from condaqa.errors import BuildError, CondaqaError
from condaqa.kernels.specs import Kernel, find_kernels
from condaqa.manifest import Environment, load_manifest
from condaqa.plan.findings import load_findings
from condaqa.qualification import builds, store
from condaqa.qualification.required import (
    BUILD,
    EXPORT,
    IMPORTS,
    KERNEL,
    OWNER,
    VERSIONS,
    check_manifest,
    required_checks,
)
from condaqa.sandbox.box import CurrentChanged, Sandbox, sandbox_for
from condaqa.site import SITE_ENV_VAR, Site, load_site
from condaqa.triage import Triage, triaged
from condaqa.vocab import Category, Outcome, Verdict

SITE_KEY = pytest.StashKey[Site]()
MANIFEST_KEY = pytest.StashKey[list[Environment]]()
KERNELS_KEY = pytest.StashKey[list[Kernel]]()
TRIAGE_KEY = pytest.StashKey[Triage]()
STARTED_IN_CURRENT_KEY = pytest.StashKey[bool]()  # a kernel test's baseline: did current's spec start
REQUIRES = "condaqa_requires"  # marker of a suite test: the kind of required check it runs
CHECK = "condaqa_check"  # marker of a parametrized test: (environment, check id)
_FALLBACK = {BUILD: Category.BUILD_FAILED, VERSIONS: Category.VERSION_MISMATCH, IMPORTS: Category.IMPORT_FAILED,
             OWNER: Category.OWNER_CHECK_FAILED, KERNEL: Category.KERNEL_FAILED, EXPORT: Category.BUILD_FAILED}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("condaqa", "condaqa qualification")
    group.addoption("--site", metavar="PATH", help=f"site.toml to qualify (default: ${SITE_ENV_VAR}, the condaqa_site "
                    "ini key, else manifests/site.toml under the rootdir)")
    group.addoption("--rebuild", action="store_true", help="rebuild environments even when their plan is unchanged")
    parser.addini("condaqa_site", "site.toml to qualify, relative to the ini file", default="")


def _site_file(config: pytest.Config) -> str | None:
    """The site this run qualifies, or None: then the plugin stays out of the way."""
    named = config.getoption("site") or os.environ.get(SITE_ENV_VAR)
    if named:
        return str(named)
    ini = str(config.getini("condaqa_site"))
    if ini and config.inipath is not None:
        return str(config.inipath.parent / ini)
    default = config.rootpath / "manifests" / "site.toml"
    return str(default) if default.is_file() else None


def active(config: pytest.Config) -> bool:
    return SITE_KEY in config.stash


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for line in (f"{REQUIRES}(kind): the kind of required check a condaqa suite test runs",
                 f"{CHECK}(env, check): the environment and required check of a condaqa test",
                 "cutover: performs a real cutover of the site (deselected unless -m names it)",
                 "xdist_group(name): the xdist worker group (registered here too, for -p no:xdist)"):
        config.addinivalue_line("markers", line)
    path = _site_file(config)
    if path is None:
        return
    try:
        site = load_site(path, base=config.invocation_params.dir)
        manifest = load_manifest(site.manifest)
        if site.demo and not hasattr(config, "workerinput"):
            ensure_demo(site, progress=lambda line: print(line, flush=True))
        kernels = find_kernels(site)
        check_manifest(manifest, kernels)
        sandbox_for(site)  # a bad sandbox_user or $CONDAQA_SANDBOX is a usage error, before any test
    except CondaqaError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SITE_KEY], config.stash[MANIFEST_KEY], config.stash[KERNELS_KEY] = site, manifest, kernels
    if hasattr(config, "workerinput"):
        return
    if site.link_target(site.qa_name) is None:
        raise pytest.UsageError(f"{site.qa_link} is absent: there is no installation to qualify (after a cutover, "
                                "make one with `condaqa new-installation NAME` or point qa at one with "
                                "`condaqa qa NAME`)")
    try:  # refuse to start during a cutover; the workers take the lock for as long as they qualify
        with locks.qualifying(site, _qualified_installations(site), "pytest (starting)"):
            pass
    except CondaqaError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.pluginmanager.register(Session(config, site, manifest, kernels), "condaqa-session")


def _site(config: pytest.Config) -> Site:
    return config.stash[SITE_KEY]


def _manifest(config: pytest.Config) -> list[Environment]:
    return config.stash[MANIFEST_KEY]


def _kernels(config: pytest.Config) -> list[Kernel]:
    return config.stash[KERNELS_KEY]


def _matches(kind: str, check: str) -> bool:
    return check == kind or (kind.endswith(":") and check.startswith(kind))


def _param_id(env: Environment, check: str, kernels: Sequence[Kernel]) -> str:
    if check.startswith(OWNER):
        return f"{env.name}-{check.removeprefix(OWNER)}"
    if check.startswith(KERNEL):
        return check.removeprefix(KERNEL)
    return env.name


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A suite test runs one kind of required check: one parameter per environment needing it."""
    config = metafunc.config
    marker = metafunc.definition.get_closest_marker(REQUIRES)
    if marker is None or not active(config):
        return
    site, kernels, kind = _site(config), _kernels(config), str(marker.args[0])
    params, qa = [], _qa_name(site)
    for env in _manifest(config):
        for check in required_checks(site, env, kernels, qa):
            if _matches(kind, check):
                marks = [pytest.mark.xdist_group(env.name), pytest.mark.condaqa_check(env.name, check)]
                params.append(pytest.param(env.name, id=_param_id(env, check, kernels), marks=marks))
    target = "exported_env" if kind == EXPORT else "_condaqa_env"
    metafunc.parametrize(target, params, indirect=target == "_condaqa_env")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`-k ENV` selects every test of an environment, a kernel's named otherwise too (before -k applies).
    Cutover tests change the site for every user: they run only when `-m` names them."""
    for item in items:
        marker = item.get_closest_marker(CHECK)
        if marker is not None:
            item.extra_keyword_matches.add(str(marker.args[0]))
    if "cutover" in (config.option.markexpr or "") and "not cutover" not in config.option.markexpr:
        return
    chosen = [i for i in items if i.get_closest_marker("cutover") is None]
    if len(chosen) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i.get_closest_marker("cutover") is not None])
        items[:] = chosen


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
def _qualifying(site: Site) -> Iterator[None]:
    """The qualification lock of qa and current, shared, for as long as this process qualifies."""
    try:
        lock = locks.qualifying(site, _qualified_installations(site), "pytest (condaqa qualification)")
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
    if marker is None or not active(item.config):
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
        kind = next(k for k in _FALLBACK if _matches(k, check))
        found = triaged(_FALLBACK[kind], name, report_.longreprtext[-2000:])
    required = replicated.required if replicated else required_checks(site, env, _kernels(item.config), _qa_name(site))
    store.record(site, site.qa_installation().name, env, check, outcome,
                         build_id=replicated.build_id if replicated else "", required=required, triage=found,
                         qa_tail=found.qa_tail if found else "", current_tail=found.current_tail if found else "",
                         seconds=report_.duration, started_in_current=item.stash.get(STARTED_IN_CURRENT_KEY, None))


def _build_words(replicated: Replicated) -> dict[str, Any]:
    """What the controller prints when a build ends: rebuilt, up to date, or where it failed."""
    if replicated.error is not None:
        words = f"FAILED at {replicated.error.stage}"
    else:
        words = "rebuilt" if replicated.build is not None and replicated.build.rebuilt else "up to date"
    return {"env": replicated.env.name, "seconds": replicated.seconds, "words": words}


def environment_of(nodeid: str, names: Sequence[str], kernel_envs: dict[str, str]) -> str:
    """The environment a test id belongs to: its parameter starts with the environment's name, or is
    the name of a kernel that runs it."""
    if "[" not in nodeid:
        return ""
    param = nodeid.split("[", 1)[1].rsplit("]", 1)[0]
    if param in kernel_envs and nodeid.split("[", 1)[0].endswith("test_kernel_starts"):
        return kernel_envs[param]
    for name in sorted(names, key=len, reverse=True):
        if param == name or param.startswith(name + "-"):
            return name
    return ""


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Send all tests of one environment to one worker, so each environment is built once.

    xdist's own `loadgroup` does not group xdist_group tests with pytest 9 (pytest-xdist#1386),
    so the default `load` distribution is replaced by one that groups by environment.
    """
    if config.getoption("dist") != "load" or not active(config):
        return None
    from xdist.scheduler import LoadScopeScheduling

    names = [e.name for e in _manifest(config)]
    kernel_envs = {k.name: k.environment for k in _kernels(config) if k.environment}

    class EnvironmentScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return environment_of(nodeid, names, kernel_envs) or nodeid

    return EnvironmentScheduling(config, log)


class Session:
    """Controller-side: progress lines, the summary, JUnit facts, and reports only for a real run."""

    def __init__(self, config: pytest.Config, site: Site, manifest: list[Environment], kernels: list[Kernel]) -> None:
        self.config, self.site, self.manifest, self.kernels = config, site, manifest, kernels
        self.names = [e.name for e in manifest]
        self.kernel_envs = {k.name: k.environment for k in kernels if k.environment}
        self.started: set[str] = set()
        self.ran: set[str] = set()  # environments with a qualification test that ran
        self.total = 0
        self.summary = ""
        self.rows: list[report.Row] = []  # the summary's rows, made once when the session finishes
        self.kept: Path | None = None  # the last junit.xml, put back if this run qualifies nothing
        self.sandbox = sandbox_for(site).describe()
        if config.option.xmlpath is None:
            junit = site.reports_dir / "junit.xml"
            config.option.xmlpath = str(junit)
            if junit.is_file():
                self.kept = junit.with_name(f".junit-{os.getpid()}.xml")
                shutil.copy2(junit, self.kept)

    def pytest_report_header(self) -> list[str]:
        return [f"condaqa sandbox: {self.sandbox}"]

    def _reporter(self) -> Any:
        return self.config.pluginmanager.get_plugin("terminalreporter")

    def _say(self, line: str, verbosity: int = 0) -> None:
        reporter = self._reporter()
        if reporter is None or self.config.get_verbosity() < verbosity:
            return
        if reporter._tw.width_of_current_line:  # xdist's progress dots leave the line open
            reporter._tw.line()
        reporter.write_line(line)

    def _xml(self) -> Any:
        from _pytest.junitxml import xml_key  # pytest's junitxml keeps its LogXML under this key

        return self.config.stash.get(xml_key, None)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._count([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if not self.total:
            self._count(ids)

    def _count(self, ids: list[str]) -> None:
        self.total = len({e for e in (environment_of(i, self.names, self.kernel_envs) for i in ids) if e})

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        env = environment_of(nodeid, self.names, self.kernel_envs)
        if env and env not in self.started:
            self.started.add(env)
            self._say(f"condaqa: {env}: started ({len(self.started)} of {self.total or '?'} environments)")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """classname = condaqa.<environment>, so Jenkins and GitLab group test cases by environment."""
        env = environment_of(report.nodeid, self.names, self.kernel_envs)
        if not env or CHECK not in report.keywords:  # a cutover smoke test is not a qualification
            return
        self.ran.add(env)
        built = getattr(report, "condaqa_build", None)
        if isinstance(built, dict):
            self._say(f"condaqa: {env}: {built['words']} in {built['seconds']:.1f}s")
        xml = self._xml()
        if xml is not None:
            xml.node_reporter(report).add_attribute("classname", f"condaqa.{env}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """The summary and per-environment facts as testsuite properties (the only place junit-10.xsd
        allows them) — only after a run that qualified something."""
        if not self.ran:
            return
        qa = report.qa_installation(self.site)
        self.rows = report.make_rows(self.site, self.manifest, qa, self.kernels)  # one verdict each, shown thrice
        with contextlib.suppress(OSError, CondaqaError):
            self.summary = str(report.write_summary(self.site, self.manifest, self.kernels, self.sandbox, qa,
                                                    self.rows)[0])
        xml = self._xml()
        if xml is None:
            return
        xml.add_global_property("condaqa.sandbox", self.sandbox)
        for env, row in zip(self.manifest, self.rows, strict=True):
            xml.add_global_property(f"{env.name}.owner", env.owner or "-")
            xml.add_global_property(f"{env.name}.disposition", str(env.disposition))
            xml.add_global_property(f"{env.name}.result", row.result)
            if row.category:
                xml.add_global_property(f"{env.name}.category", row.category)
                xml.add_global_property(f"{env.name}.hint", row.hint)
        for kernel in self.kernels:
            xml.add_global_property(f"kernel.{kernel.name}.display_name", kernel.display_name)
            xml.add_global_property(f"kernel.{kernel.name}.environment", kernel.environment or "-")
        for env in self.manifest:
            self._add_findings(xml, env.name)

    def _add_findings(self, xml: Any, env: str) -> None:
        saved = load_findings(self.site, env)
        if saved is None:
            return
        xml.add_global_property(f"{env}.findings", str(len(saved.findings)))
        xml.add_global_property(f"{env}.override", "yes" if saved.override else "no")
        for number, f in enumerate(saved.findings, 1):
            xml.add_global_property(f"{env}.finding.{number}", f"{f.severity} {f.rule} {f.package}: {f.action}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.ran:
            terminalreporter.write_line("condaqa: no qualification test ran; the last reports are left as they were")
            return
        qa = report.qa_installation(self.site)
        rows = [row for row in self.rows if row.environment in self.ran]
        counts: dict[str, int] = {}
        for row in rows:
            key = row.result + (f" [{row.category}]" if row.category else "")
            counts[key] = counts.get(key, 0) + 1
        terminalreporter.section("condaqa summary", sep="-")
        terminalreporter.write_line(f"{len(rows)} environments of {qa}: "
                                    + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
        for row in rows:
            if row.result not in (Verdict.PASSED, Verdict.EXPORTED):
                terminalreporter.write_line(f"  {row.environment}: {row.result}: {row.first_error}")
        terminalreporter.write_line(f"reports: {self.summary or self.site.reports_dir}, {self.config.option.xmlpath}")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """A run that qualified nothing puts the last junit.xml back (pytest has written an empty one)."""
        if self.kept is None:
            return
        if self.ran:
            self.kept.unlink(missing_ok=True)
        else:
            os.replace(self.kept, str(config.option.xmlpath))

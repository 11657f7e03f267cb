"""The pytest plugin: options, parametrization by environment, fixtures, results and JUnit facts.

Each REPLICATE environment is one value of the private `_condaqa_env` parameter; the public
`replicated_env` fixture builds it once per worker process (the same build.replicate the CLI
calls) and every test of that environment runs in one xdist worker (xdist_group).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from condaqa import findings, report, results, triage
from condaqa.build import BuildResult, replicate
from condaqa.checks import owner_checks
from condaqa.demo.site import ensure_demo
from condaqa.errors import BuildError, CondaqaError
from condaqa.manifest import Environment, load_manifest
from condaqa.site import Site, load_site

SITE_KEY = pytest.StashKey[Site]()
MANIFEST_KEY = pytest.StashKey[list[Environment]]()
TRIAGE_KEY = pytest.StashKey[triage.Triage]()
SUMMARY_KEY = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("condaqa", "condaqa qualification")
    group.addoption("--site", metavar="PATH", help="site.toml to qualify (default: $CONDAQA_SITE or manifests/site.toml)")
    group.addoption("--rebuild", action="store_true", help="rebuild environments even when their plan is unchanged")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    try:
        site = load_site(config.getoption("site"))
        manifest = load_manifest(site.manifest)
    except CondaqaError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SITE_KEY] = site
    config.stash[MANIFEST_KEY] = manifest
    if hasattr(config, "workerinput"):
        return
    if site.demo:
        try:
            ensure_demo(site, progress=lambda line: print(line, flush=True))
        except CondaqaError as exc:
            raise pytest.UsageError(str(exc)) from None
    if config.option.xmlpath is None:
        config.option.xmlpath = str(site.reports_dir / "junit.xml")
    config.pluginmanager.register(JunitFacts(config), "condaqa-junit")


def _site(config: pytest.Config) -> Site:
    return config.stash[SITE_KEY]


def _manifest(config: pytest.Config) -> list[Environment]:
    return config.stash[MANIFEST_KEY]


def _env_param(env: str, *values: object) -> object:
    ids = "-".join([env, *(str(v) for v in values)])
    return pytest.param(env, *values, id=ids, marks=pytest.mark.xdist_group(env))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    manifest = _manifest(config)
    replicated = [e.name for e in manifest if e.replicate]
    if "owner_check" in metafunc.fixturenames:
        site = _site(config)
        params = [_env_param(env, check.parent.name + "/" + check.name) for env in replicated
                  for check in owner_checks(site, env)]
        metafunc.parametrize(["_condaqa_env", "owner_check"], params, indirect=["_condaqa_env"])
    elif "_condaqa_env" in metafunc.fixturenames:
        metafunc.parametrize("_condaqa_env", [_env_param(env) for env in replicated], indirect=True)
    elif "exported_env" in metafunc.fixturenames:
        exported = [e.name for e in manifest if not e.replicate]
        metafunc.parametrize("exported_env", [_env_param(env) for env in exported])


@pytest.fixture(scope="session")
def site(request: pytest.FixtureRequest) -> Site:
    return _site(request.config)


@pytest.fixture(scope="session")
def manifest(request: pytest.FixtureRequest) -> list[Environment]:
    return _manifest(request.config)


@dataclass
class Replicated:
    """An environment as built in qa for this run, or the error that stopped the build."""

    env: Environment
    prefix: Path
    result: results.EnvResult
    build: BuildResult | None = None
    error: BuildError | None = None

    def require_built(self) -> None:
        """Skip a test whose environment did not build; test_builds reports why."""
        __tracebackhide__ = True
        if self.error is not None:
            pytest.skip(f"{self.env.name} did not build (see test_builds[{self.env.name}])")


_BUILT: dict[str, Replicated] = {}


@pytest.fixture(scope="session")
def _condaqa_env(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def replicated_env(request: pytest.FixtureRequest, _condaqa_env: str) -> Replicated:
    """The environment built in qa, once per worker process whatever the fixture teardown order."""
    if _condaqa_env in _BUILT:
        return _BUILT[_condaqa_env]
    site = _site(request.config)
    env = next(e for e in _manifest(request.config) if e.name == _condaqa_env)
    installation = site.installation(site.qa_name)
    started = time.monotonic()
    build, error = None, None
    try:
        build = replicate(site, env, rebuild=request.config.getoption("rebuild"))
    except BuildError as exc:
        error = exc
    saved = findings.load_findings(site, env.name)
    result = results.EnvResult(
        env=env.name,
        installation=installation.name,
        disposition=env.disposition,
        owner=env.owner,
        findings=len(saved.findings) if saved else 0,
        override=bool(saved and saved.override),
        build_seconds=round(time.monotonic() - started, 3),
        rebuilt=bool(build and build.rebuilt),
    )
    results.save(site, result)
    _BUILT[_condaqa_env] = Replicated(env, installation.env_prefix(env.name), result, build, error)
    return _BUILT[_condaqa_env]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    report = yield
    env = getattr(item, "callspec", None) and item.callspec.params.get("_condaqa_env")
    failed_setup = report.when == "setup" and report.outcome != "passed"
    if env in _BUILT and (report.when == "call" or failed_setup):
        replicated = _BUILT[env]
        outcome = {"passed": results.PASSED, "failed": results.FAILED}.get(report.outcome, report.outcome)
        found = item.stash.get(TRIAGE_KEY, None) if report.failed else None
        error = (found.detail if found else report.longreprtext) if report.failed else ""
        category = (found.category if found else triage.category_of_test(item.name)) if report.failed else ""
        replicated.result.record_test(item.name, outcome, error, category)
        results.save(_site(item.config), replicated.result)
    return report


@pytest.fixture
def fail_triaged(request: pytest.FixtureRequest) -> Callable[[triage.Triage], NoReturn]:
    """Fail the test with a triaged message; its category goes into the results, the summary and JUnit."""

    def fail(found: triage.Triage) -> NoReturn:
        __tracebackhide__ = True
        request.node.stash[TRIAGE_KEY] = found
        pytest.fail(found.message(), pytrace=False)

    return fail


def environment_of(nodeid: str, names: list[str]) -> str:
    """The environment a test id belongs to: its parameter starts with the environment's name."""
    if "[" not in nodeid:
        return ""
    param = nodeid.split("[", 1)[1].rsplit("]", 1)[0]
    for name in sorted(names, key=len, reverse=True):
        if param == name or param.startswith(name + "-"):
            return name
    return ""


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Send all tests of one environment to one worker, so each environment is built once.

    xdist's own `loadgroup` does not group xdist_group tests with pytest 9 (pytest-xdist#1386),
    so the default `load` distribution is replaced by one that groups by environment.
    """
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    names = [e.name for e in _manifest(config)]

    class EnvironmentScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return environment_of(nodeid, names) or nodeid

    return EnvironmentScheduling(config, log)


class JunitFacts:
    """Controller-side JUnit additions that stay inside the strict junit-10.xsd."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.names = [e.name for e in _manifest(config)]

    def _xml(self):
        from _pytest.junitxml import xml_key  # pytest's junitxml keeps its LogXML under this key

        return self.config.stash.get(xml_key, None)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """classname = condaqa.<environment>, so Jenkins and GitLab group test cases by environment."""
        xml = self._xml()
        env = environment_of(report.nodeid, self.names)
        if xml is not None and env:
            xml.node_reporter(report).add_attribute("classname", f"condaqa.{env}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """The summary for the run, and per-environment facts as testsuite properties (the only place
        junit-10.xsd allows them)."""
        site = _site(self.config)
        try:
            summary, _ = report.write_summary(site, _manifest(self.config))
            self.config.stash[SUMMARY_KEY] = str(summary)
        except (OSError, CondaqaError) as exc:
            self.config.stash[SUMMARY_KEY] = f"not written: {exc}"
        xml = self._xml()
        if xml is None:
            return
        qa = site.link_target(site.qa_name) or ""
        recorded = results.load_all(site, qa) if qa else {}
        for env in _manifest(self.config):
            xml.add_global_property(f"{env.name}.owner", env.owner or "-")
            xml.add_global_property(f"{env.name}.disposition", env.disposition)
            result = recorded.get(env.name)
            if result is not None and env.replicate:
                xml.add_global_property(f"{env.name}.result", result.outcome)
                if result.category:
                    xml.add_global_property(f"{env.name}.category", result.category)
                    xml.add_global_property(f"{env.name}.hint", triage.HINTS[result.category].format(env=env.name))
            self._add_findings(xml, site, env.name)

    @staticmethod
    def _add_findings(xml, site: Site, env: str) -> None:
        saved = findings.load_findings(site, env)
        if saved is None:
            return
        xml.add_global_property(f"{env}.findings", str(len(saved.findings)))
        xml.add_global_property(f"{env}.override", "yes" if saved.override else "no")
        for number, f in enumerate(saved.findings, 1):
            xml.add_global_property(f"{env}.finding.{number}", f"{f.severity} {f.rule} {f.package}: {f.action}")

    def pytest_terminal_summary(self, terminalreporter) -> None:
        summary = self.config.stash.get(SUMMARY_KEY, None)
        if summary:
            terminalreporter.write_line(f"condaqa summary: {summary}")

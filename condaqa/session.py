"""The controller's side of a qualification run: progress lines, the summary, JUnit facts, and an exit
status that says whether every environment the run ran is qualified (not only whether its tests passed).

harness.py registers it in the controller process only (the only one with xdist, or the one without it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from condaqa import report
from condaqa.errors import CondaqaError
from condaqa.junitfile import add_facts, case_names
from condaqa.kernels.specs import Kernel
from condaqa.manifest import Environment
from condaqa.plan.findings import load_findings
from condaqa.qualification import runs
from condaqa.sandbox.box import sandbox_for
from condaqa.site import Site
from condaqa.vocab import Verdict, counted

CHECK = "condaqa_check"  # marker of a parametrized suite test: (environment, check id)


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


class Properties(list[tuple[str, str]]):
    """The testsuite properties of the run's JUnit file, in order."""

    def add_global_property(self, name: str, value: str) -> None:
        self.append((name, value))


class Session:
    """Controller-side: progress lines, the summary, JUnit facts, and reports only for a real run."""

    def __init__(self, config: pytest.Config, site: Site, manifest: list[Environment], kernels: list[Kernel],
                 junit_name: str = "junit.xml", shard: str = "") -> None:
        self.config, self.site, self.manifest, self.kernels = config, site, manifest, kernels
        self.shard, self.began = shard, time.monotonic()
        self.names = [e.name for e in manifest]
        self.kernel_envs = {k.name: k.environment for k in kernels if k.environment}
        self.started: set[str] = set()
        self.ran: set[str] = set()  # environments with a qualification test that ran
        self.total = 0
        self.summary = ""
        self.rows: list[report.Row] = []  # the summary's rows, made once when the session finishes
        self.unqualified: list[str] = []  # environments this run ran, not qualified although every test passed
        self.classnames: dict[tuple[str, str], str] = {}  # a JUnit test case's (classname, name): its new classname
        self.properties = Properties()  # the testsuite properties added to the JUnit file
        self.kept: Path | None = None  # the last junit.xml, put back if this run qualifies nothing
        self.facts_written = False
        self.sandbox = sandbox_for(site).describe()
        if config.option.xmlpath is None:
            junit = site.reports_dir / junit_name  # a shard's own: junit-I-of-N.xml, merged by the last one
            config.option.xmlpath = str(junit)
            if junit.is_file():
                self.kept = junit.with_name(f".junit-{os.getpid()}.xml")
                shutil.copy2(junit, self.kept)

    def pytest_report_header(self) -> list[str]:
        left_out = self.site.left_out()
        return [f"condaqa sandbox: {self.sandbox}", *(f"condaqa: {name} is left out of the demo site: {why}"
                                                       for name, why in left_out.items())]

    def _reporter(self) -> Any:
        return self.config.pluginmanager.get_plugin("terminalreporter")

    def _say(self, line: str, verbosity: int = 0) -> None:
        reporter = self._reporter()
        if reporter is None or self.config.get_verbosity() < verbosity:
            return
        writer = self.config.get_terminal_writer()
        if writer.width_of_current_line:  # xdist's progress dots leave the line open
            writer.line()
        reporter.write_line(line)

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
        self.classnames[case_names(report.nodeid, self.config.getoption("junitprefix", None))] = f"condaqa.{env}"

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """The summary and per-environment facts as testsuite properties (the only place junit-10.xsd
        allows them) — only after a run that qualified something. A run whose tests all passed but that
        leaves an environment it ran unqualified (`--lf` re-ran its build alone: pending) exits 1, so cron
        and CI do not show green for it."""
        if not self.ran:
            return
        qa = report.qa_installation(self.site)
        self.rows = report.make_rows(self.site, self.manifest, qa, self.kernels)  # one verdict each, shown thrice
        if session.exitstatus == pytest.ExitCode.OK:
            self.unqualified = [r.environment for r in self.rows if r.environment in self.ran
                                and r.result not in (Verdict.PASSED, Verdict.EXPORTED)]
            if self.unqualified:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        with contextlib.suppress(OSError, CondaqaError):
            self.summary = str(report.write_summary(self.site, self.manifest, self.kernels, self.sandbox, qa,
                                                    self.rows)[0])
        verdicts = [str(r.result) for r in self.rows if r.environment in self.ran]
        runs.record(self.site, runs.finished(qa, self.shard, verdicts, int(session.exitstatus),
                                             time.monotonic() - self.began))
        facts = self.properties
        facts.add_global_property("condaqa.sandbox", self.sandbox)
        for env, row in zip(self.manifest, self.rows, strict=True):
            facts.add_global_property(f"{env.name}.owner", env.owner or "-")
            facts.add_global_property(f"{env.name}.disposition", str(env.disposition))
            facts.add_global_property(f"{env.name}.result", row.result)
            if row.category:
                facts.add_global_property(f"{env.name}.category", row.category)
                facts.add_global_property(f"{env.name}.hint", row.hint)
            if row.waiver:
                facts.add_global_property(f"{env.name}.waiver", row.waiver)
        for kernel in self.kernels:
            facts.add_global_property(f"kernel.{kernel.name}.display_name", kernel.display_name)
            facts.add_global_property(f"kernel.{kernel.name}.environment", kernel.environment or "-")
        for env in self.manifest:
            self._add_findings(facts, env.name)

    def _add_findings(self, facts: Properties, env: str) -> None:
        saved = load_findings(self.site, env)
        if saved is None:
            return
        facts.add_global_property(f"{env}.findings", str(len(saved.findings)))
        facts.add_global_property(f"{env}.override", "yes" if saved.override else "no")
        for number, f in enumerate(saved.findings, 1):
            facts.add_global_property(f"{env}.finding.{number}", f"{f.severity} {f.rule} {f.package}: {f.action}")

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
        terminalreporter.write_line(f"{counted(len(rows), 'environment')} of {qa}: "
                                    + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
        for row in rows:
            if row.result not in (Verdict.PASSED, Verdict.EXPORTED):
                terminalreporter.write_line(f"  {row.environment}: {row.result}: {row.first_error}")
        saved = {r.environment: found for r in rows if (found := load_findings(self.site, r.environment)) is not None}
        for f in report.rescued(saved):
            terminalreporter.write_line(f"  {f.environment}: {f.action}: publish it to the site's channel for good "
                                        "(README: Rescued packages)")
        terminalreporter.write_line(f"reports: {self.summary or self.site.reports_dir}, {self.config.option.xmlpath}")
        if self.unqualified:
            names, one = ", ".join(self.unqualified), len(self.unqualified) == 1
            terminalreporter.write_line(f"condaqa: exit 1: {names} {'is' if one else 'are'} not qualified; run "
                                        f"{'its' if one else 'their'} checks: pytest -k "
                                        + (names if one else repr(" or ".join(self.unqualified))))

    def write_facts(self) -> None:
        """condaqa's facts into the JUnit file pytest wrote, once; a shard's part gets them before the merge
        reads it (tracker.py)."""
        junit = Path(str(self.config.option.xmlpath or ""))
        if self.ran and not self.facts_written and junit.is_file():
            add_facts(junit, self.classnames, self.properties)
            self.facts_written = True

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """A run that qualified nothing puts the last junit.xml back (pytest has written an empty one); one that
        qualified something gets condaqa's facts in the file pytest wrote."""
        self.write_facts()
        if self.kept is None:
            return
        if self.ran:
            self.kept.unlink(missing_ok=True)
        else:
            os.replace(self.kept, str(config.option.xmlpath))

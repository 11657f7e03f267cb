"""The controller's hold on a run: every environment it collected is claimed (`pending`) until all its tests
have reported, so a run or a shard killed midway never leaves an old `passed` for what it did not finish;
a shard then writes its part of the reports and merges the parts once none is missing.

harness.py registers it in the controller process only, beside session.py's Session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from condaqa import locks, report, shards
from condaqa.kernels.specs import Kernel
from condaqa.manifest import Environment
from condaqa.qualification import store
from condaqa.sandbox.box import sandbox_for
from condaqa.session import environment_of
from condaqa.shardreports import Merged, merge, run_seconds, write_part
from condaqa.site import Site


class Tracker:
    def __init__(self, config: pytest.Config, site: Site, manifest: list[Environment], kernels: list[Kernel],
                 shard: shards.Shard | None, assignment: dict[str, int], write_facts: Callable[[], None]) -> None:
        self.config, self.site, self.shard, self.assignment = config, site, shard, assignment
        self.write_facts = write_facts  # the session's facts into this shard's JUnit, before it is merged
        self.by_name = {e.name: e for e in manifest}
        self.kernels = kernels
        self.kernel_envs = {k.name: k.environment for k in kernels if k.environment}
        self.left: dict[str, set[str]] = {}  # environment -> its test ids that have not reported yet
        self.claimed = False
        self.started = locks.now()
        self.merged: Merged | None = None
        self.run = "pytest" + (f" --shard {shard.label}" if shard else "")

    def _env(self, nodeid: str) -> str:
        return environment_of(nodeid, list(self.by_name), self.kernel_envs)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._claim([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self._claim(ids)

    def _claim(self, ids: list[str]) -> None:
        if self.claimed or self.config.option.collectonly:
            return
        self.claimed = True
        for nodeid in ids:
            env = self._env(nodeid)
            if env:
                self.left.setdefault(env, set()).add(nodeid)
        store.claim(self.site, self.site.qa_installation().name, [self.by_name[n] for n in sorted(self.left)],
                    self.run)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not (report.when == "call" or (report.when == "setup" and report.outcome != "passed")):
            return
        env = self._env(report.nodeid)
        left = self.left.get(env)
        if left is None or report.nodeid not in left:
            return
        left.discard(report.nodeid)
        if not left:
            store.release(self.site, self.site.qa_installation().name, self.by_name[env])

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """After pytest has written the JUnit: a shard's part and the merge; a whole run's test times."""
        if self.config.option.collectonly or (self.shard is None and not self.claimed):
            return
        installation = report.qa_installation(self.site)
        if self.shard is None:
            junit = self.site.reports_dir / "junit.xml"
            if junit.is_file() and str(self.config.option.xmlpath) == str(junit):
                seconds = run_seconds(junit, list(self.by_name))
                shards.save_durations(self.site, installation,
                                      {**shards.load_durations(self.site, installation), **seconds})
            return
        self.write_facts()
        write_part(self.site, self.shard, self.assignment, self.started, int(session.exitstatus))
        with locks.merging(self.site):
            self.merged = merge(self.site, list(self.by_name.values()), self.kernels, sandbox_for(self.site).describe(),
                                installation)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.shard is None or self.merged is None:
            return
        terminalreporter.write_line(f"condaqa: shard {self.shard.label} on {locks.host()} done")
        for line in self.merged.words():
            terminalreporter.write_line(f"condaqa: {line}")
        if self.merged.missing:
            terminalreporter.write_line("condaqa: when they are done, `condaqa report --merge` (or the last shard) "
                                        "merges them all")

"""A qualification's build: replicate an environment in qa (build/replicate.py) and record what was built.

The plugin and `condaqa replicate` build through here; neither decides what passing means.
"""

from __future__ import annotations

import time

from condaqa import locks
from condaqa.checks.drift import history_drift
from condaqa.errors import BuildError
from condaqa.manifest import Environment
from condaqa.plan.findings import Finding, add_findings, load_findings, save_findings
from condaqa.prefix import read_prefix
from condaqa.qualification import store
from condaqa.replication.replicate import BuildResult, replicate
from condaqa.sandbox.box import Sandbox
from condaqa.site import Site
from condaqa.triage import classify_build
from condaqa.vocab import PlanSource, Rule, Severity, Stage


def build(site: Site, sandbox: Sandbox, env: Environment, *, rebuild: bool = False) -> BuildResult:
    """Build `env` in qa and record what was built; a failed build records why."""
    installation = site.qa_installation().name
    started, clock = locks.now(), time.monotonic()
    try:
        built = replicate(site, sandbox, env, rebuild=rebuild,
                          before_build=lambda: store.invalidate(site, installation, env, started))
    except BuildError as exc:
        saved = load_findings(site, env.name)
        found = classify_build(env.name, exc, saved.findings if saved else ())
        if exc.stage is Stage.SOLVE and found.detail.strip():  # the cell cuts it: the findings keep it whole
            add_findings(site, env.name, [Finding(Rule.SOLVER, env.name, "*", "build stopped at solve",
                                                  found.detail.strip(), Severity.ERROR, found.hint)])
        store.record_failed_build(site, installation, env, started, str(exc.stage), found,
                                  seconds=time.monotonic() - clock)
        raise
    if built.plan.source is PlanSource.HISTORY:
        built.findings = [*built.findings, *history_drift(env.name, read_prefix(
            site.current_installation().env_prefix(env.name)), read_prefix(built.prefix))]
        save_findings(site, env.name, built.plan, built.findings)
    store.record_build(site, installation, env, built.stamp, rebuilt=built.rebuilt, seconds=built.seconds,
                       started=started)
    return built

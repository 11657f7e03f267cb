"""Turn an exported spec into a buildable plan; every change a rule makes is a Finding."""

from __future__ import annotations

from dataclasses import dataclass

from condaqa.manifest import Environment
from condaqa.plan import BuildPlan
from condaqa.site import Site
from condaqa.spec import EnvSpec

INFO = "info"
WARNING = "warning"
ERROR = "error"


@dataclass(frozen=True)
class Finding:
    rule: str
    environment: str
    package: str
    action: str
    reason: str
    severity: str = INFO
    hint: str = ""


def make_plan(site: Site, env: Environment, spec: EnvSpec) -> tuple[BuildPlan, list[Finding]]:
    """The plan for `env` from its spec, with the site's and the environment's pip options."""
    plan = BuildPlan(
        env=env.name,
        conda=tuple(spec.dependencies),
        pip=tuple(spec.pip),
        pip_args=tuple(site.expand(a) for a in (*site.pip_args, *env.pip_args)),
        channels=tuple(site.channels),
    )
    return plan, []

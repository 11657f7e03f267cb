"""Findings: what a sanitation rule changed in an environment's spec, and why, kept for the report.

reports/findings/<env>.json holds every finding of an environment's last plan with its
post-create steps; the summary, JUnit properties and the owners read it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from condaqa import atomic
from condaqa.inputs import guard, redact
from condaqa.plan.model import BuildPlan, PostStep
from condaqa.site import Site
from condaqa.vocab import PlanSource, Rule, Severity, StepKind

# Rules whose findings explain why a package's version or section differs from current.
EXPLAINS_DRIFT = (Rule.LISTED_TWICE, Rule.NOARCH_IN_PIP, Rule.OVERRIDE, Rule.HISTORY)


@dataclass(frozen=True)
class Finding:
    rule: Rule
    environment: str
    package: str
    action: str
    reason: str
    severity: Severity = Severity.INFO
    hint: str = ""


def explained_packages(findings: Iterable[Finding]) -> set[str]:
    """Normalised names whose difference from current a finding already explains."""
    return {canonicalize_name(f.package) for f in findings if f.rule in EXPLAINS_DRIFT and f.package != "*"}


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.ERROR]


@dataclass
class FindingsFile:
    """What reports/findings/<env>.json holds."""

    environment: str
    source: PlanSource = PlanSource.EXPORT
    findings: list[Finding] = field(default_factory=list)
    post_steps: list[PostStep] = field(default_factory=list)

    @property
    def override(self) -> bool:
        return self.source is PlanSource.OVERRIDE

    def to_json(self) -> str:
        data = {"environment": self.environment, "source": self.source, "override": self.override,
                "findings": [asdict(f) for f in self.findings], "post_steps": [asdict(s) for s in self.post_steps]}
        return redact(json.dumps(data, indent=2)) + "\n"


def findings_path(site: Site, env: str) -> Path:
    return site.reports_dir / "findings" / f"{env}.json"


def save_findings(site: Site, env: str, plan: BuildPlan | None, findings: list[Finding]) -> Path:
    source = plan.source if plan else PlanSource.EXPORT
    record = FindingsFile(env, source, list(findings), list(plan.post) if plan else [])
    path = guard(findings_path(site, env), [site.reports_dir], "write the findings")
    atomic.write_text(path, record.to_json())
    return path


def add_findings(site: Site, env: str, found: list[Finding]) -> None:
    """Add what a check found after the build (the versions check's missing executables) to the environment's
    findings file, once; the next plan's file starts afresh."""
    saved = load_findings(site, env) or FindingsFile(env)
    new = [f for f in found if f not in saved.findings]
    if new:
        saved.findings.extend(new)
        path = guard(findings_path(site, env), [site.reports_dir], "write the findings")
        atomic.write_text(path, saved.to_json())


def read_findings(path: Path) -> FindingsFile:
    data = json.loads(path.read_text(encoding="utf-8"))
    findings = [Finding(Rule(f["rule"]), f["environment"], f["package"], f["action"], f["reason"],
                        Severity(f.get("severity", Severity.INFO)), f.get("hint", ""))
                for f in data.get("findings", [])]
    steps = [PostStep(StepKind(s["kind"]), s["requirement"], s.get("reason", "")) for s in data.get("post_steps", [])]
    return FindingsFile(data["environment"], PlanSource(data.get("source", PlanSource.EXPORT)), findings, steps)


def load_findings(site: Site, env: str) -> FindingsFile | None:
    path = findings_path(site, env)
    try:
        return read_findings(path) if path.is_file() else None
    except (OSError, ValueError, KeyError):  # a findings file of another version, or cut short: no findings known
        return None

"""Findings: what a sanitation rule changed in an environment's spec, and why, kept for the report.

reports/findings/<env>.json holds every finding of an environment's last plan with its
post-create steps; the summary, JUnit properties and the owners read it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from condaqa import atomic
from condaqa.plan import BuildPlan, PostStep
from condaqa.prefix import normalize
from condaqa.site import Site

INFO = "info"
WARNING = "warning"
ERROR = "error"
SEVERITIES = (INFO, WARNING, ERROR)

# Rules whose findings explain why a package's version or section differs from current.
EXPLAINS_DRIFT = ("listed-twice", "noarch-in-pip", "override", "history")


@dataclass(frozen=True)
class Finding:
    rule: str
    environment: str
    package: str
    action: str
    reason: str
    severity: str = INFO
    hint: str = ""


def explained_packages(findings: Iterable[Finding]) -> set[str]:
    """Normalised names whose difference from current a finding already explains."""
    return {normalize(f.package) for f in findings if f.rule in EXPLAINS_DRIFT and f.package != "*"}


@dataclass
class FindingsFile:
    """What reports/findings/<env>.json holds."""

    environment: str
    source: str = "export"
    findings: list[Finding] = field(default_factory=list)
    post_steps: list[PostStep] = field(default_factory=list)

    @property
    def override(self) -> bool:
        return self.source == "override"

    def to_json(self) -> str:
        data = {"environment": self.environment, "source": self.source, "override": self.override,
                "findings": [asdict(f) for f in self.findings], "post_steps": [asdict(s) for s in self.post_steps]}
        return json.dumps(data, indent=2) + "\n"


def findings_path(site: Site, env: str) -> Path:
    return site.reports_dir / "findings" / f"{env}.json"


def save_findings(site: Site, env: str, plan: BuildPlan | None, findings: list[Finding]) -> Path:
    record = FindingsFile(env, plan.source if plan else "export", list(findings), list(plan.post) if plan else [])
    path = findings_path(site, env)
    atomic.write_text(path, record.to_json())
    return path


def read_findings(path: Path) -> FindingsFile:
    data = json.loads(path.read_text(encoding="utf-8"))
    return FindingsFile(data["environment"], data.get("source", "export"),
                        [Finding(**f) for f in data.get("findings", [])],
                        [PostStep(**s) for s in data.get("post_steps", [])])


def load_findings(site: Site, env: str) -> FindingsFile | None:
    path = findings_path(site, env)
    return read_findings(path) if path.is_file() else None

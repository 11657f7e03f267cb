"""Qualification results: one JSON file per environment and installation, kept in the site.

They live under ROOT/.condaqa/results/<installation>/ so that the cutover gate, `status` and
the summary read the same facts whichever checkout or CI job wrote them.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from condaqa import atomic
from condaqa.site import Site

PASSED = "passed"
FAILED = "failed"
EXPORTED = "exported"


@dataclass
class EnvResult:
    env: str
    installation: str
    disposition: str
    owner: str = ""
    outcome: str = PASSED
    category: str = ""
    first_error: str = ""
    findings: int = 0
    override: bool = False
    build_seconds: float = 0.0
    rebuilt: bool = False
    tests: dict[str, str] = field(default_factory=dict)
    finished_at: str = ""

    def record_test(self, test: str, outcome: str, error: str = "", category: str = "") -> None:
        self.tests[test] = outcome
        regression = self.category == "already-broken" and category not in ("", "already-broken")
        if outcome == FAILED and (self.outcome != FAILED or regression):  # a regression outranks old breakage
            self.outcome = FAILED
            self.first_error = error.strip().splitlines()[0][:300] if error.strip() else test
            self.category = category


def results_dir(site: Site, installation: str) -> Path:
    return site.state_dir / "results" / installation


def save(site: Site, result: EnvResult) -> Path:
    result.finished_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    path = results_dir(site, result.installation) / f"{result.env}.json"
    atomic.write_text(path, json.dumps(asdict(result), indent=2, sort_keys=True) + "\n")
    return path


def load(site: Site, installation: str, env: str) -> EnvResult | None:
    path = results_dir(site, installation) / f"{env}.json"
    try:
        return EnvResult(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None


def load_all(site: Site, installation: str) -> dict[str, EnvResult]:
    folder = results_dir(site, installation)
    if not folder.is_dir():
        return {}
    out = {}
    for path in sorted(folder.glob("*.json")):
        result = EnvResult(**json.loads(path.read_text(encoding="utf-8")))
        out[result.env] = result
    return out

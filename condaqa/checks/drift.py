"""After a history build: where its versions moved away from current's."""

from __future__ import annotations

from condaqa.plan.findings import Finding
from condaqa.prefix import PrefixContents
from condaqa.vocab import Rule, Severity


def history_drift(env: str, current: PrefixContents, built: PrefixContents) -> list[Finding]:
    """One finding per package whose version moved away from current's."""
    have = built.versions()
    findings = []
    for name, version in sorted(current.versions().items()):
        package = name.removeprefix("pip:")
        if name not in have:
            findings.append(Finding(Rule.HISTORY, env, package, f"{version} -> missing",
                                    "the history's specs no longer pull it in", Severity.WARNING,
                                    "add it to the environment's specs if it is needed"))
        elif have[name] != version:
            findings.append(Finding(Rule.HISTORY, env, package, f"{version} -> {have[name]}",
                                    "version drift: the solver chose another version for the history's specs"))
    return findings

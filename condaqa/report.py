"""The migration spreadsheet, automated: reports/summary.md and reports/summary.csv.

One row per environment of the manifest, built from where each stands (qualification.py) and
the findings of its last plan (reports/findings/<env>.json), so the end of a pytest session,
`condaqa report` and CI all write the same tables. Failures come first in the Markdown, each
environment's findings, and the failed check's own last lines in qa and in current, listed
under its group's table. Then the kernels Jupyter shows now: whether each started in qa and
in current (as its kernel test recorded it) and what the cutover does to its name.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from condaqa import atomic
from condaqa.inputs import guard
from condaqa.kernels import names
from condaqa.kernels.specs import Kernel
from condaqa.manifest import Environment
from condaqa.plan.findings import Finding, FindingsFile, findings_path, read_findings
from condaqa.qualification.required import kernel_check
from condaqa.qualification.store import CheckRecord, load
from condaqa.qualification.verdict import first_failure, standing
from condaqa.qualification.waivers import judge
from condaqa.site import Site
from condaqa.triage import hint
from condaqa.vocab import Category, Outcome, Rule, Severity, Verdict, counted


@dataclass(frozen=True)
class Row:
    environment: str
    owner: str
    disposition: str
    result: str
    category: str
    first_error: str
    findings: int
    override: bool
    build_seconds: float
    hint: str
    qa_output: str
    current_output: str
    waiver: str  # what the environment's waiver does for a failure today (qualification/waivers.py), or ""


def make_rows(site: Site, manifest: Sequence[Environment], installation: str, kernels: Sequence[Kernel]) -> list[Row]:
    out = []
    for env in manifest:
        found = standing(site, installation, env, kernels)
        result = load(site, installation, env.name)
        path = _findings_file(site, installation, env.name)
        saved = _read(path) if path else None
        failure = first_failure(result) if found.verdict is Verdict.FAILED else None
        waiver = judge(env, found)
        category = found.category if found.verdict is Verdict.FAILED else ""
        out.append(Row(
            environment=env.name,
            owner=env.owner or (result.owner if result else ""),
            disposition=str(env.disposition),
            result=str(found.verdict),
            category=category,
            first_error="" if found.verdict in (Verdict.PASSED, Verdict.EXPORTED) else found.reason,
            findings=len(saved.findings) if saved else (result.finding_count if result else 0),
            override=saved.override if saved else bool(result and result.override),
            build_seconds=round(result.build.seconds, 1) if result and result.build else 0.0,
            hint=hint(Category(category), env.name, env.owner) if category else "",
            qa_output=failure.qa_tail if failure else "",
            current_output=failure.current_tail if failure else "",
            waiver=waiver.words if waiver else "",
        ))
    return out


@dataclass(frozen=True)
class KernelRow:
    name: str
    environment: str
    display_name: str
    started_current: str  # yes, no, or "not run"
    started_qa: str  # yes, no, skipped, "not run", or "-" for a kernel condaqa does not test (nb_conda_kernels')
    name_change: str  # "-", or what the cutover does to the name (kernels/names.py)


def kernel_rows(site: Site, manifest: Sequence[Environment], installation: str,
                kernels: Sequence[Kernel]) -> list[KernelRow]:
    """One row per kernel name Jupyter shows now, with the kernel test's facts from `installation`'s results."""
    before = names.shown_names(site, site.current_installation(), kernels)
    change = names.changes(before, names.shown_names(site, site.installation(installation), kernels))
    tested = {e.name for e in manifest if e.replicate}
    rows = []
    for name, shown in sorted(before.shown.items()):
        spec = next((k for k in kernels if k.name == name), None)
        if spec is None:
            in_current, in_qa = "-", "-"
        else:
            result = load(site, installation, spec.environment) if spec.environment in tested else None
            in_current, in_qa = _started(result.checks.get(kernel_check(spec)) if result else None)
        rows.append(KernelRow(name, shown[-1].environment or "-", shown[-1].display_name or "-", in_current, in_qa,
                              change.get(name, "-")))
    return rows


def _started(check: CheckRecord | None) -> tuple[str, str]:
    """(started in current, started in qa) from a kernel test's record: the test starts current's spec
    after qa's and records whether it started."""
    if check is None:
        return "not run", "not run"
    in_qa = {Outcome.PASSED: "yes", Outcome.SKIPPED: "skipped"}.get(check.outcome, "no")
    if check.started_in_current is None:
        return "not run", in_qa
    return ("yes" if check.started_in_current else "no"), in_qa


def render_csv(rows: list[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([f.name for f in fields(Row)])
    for row in rows:
        writer.writerow(["yes" if v is True else "no" if v is False else v for v in astuple(row)])
    return buffer.getvalue()


_NOT_QUALIFIED = {str(v) for v in (Verdict.PENDING, Verdict.PARTIAL, Verdict.STALE, Verdict.MISSING, Verdict.NEVER)}
_GROUPS: tuple[tuple[str, Callable[[Row], bool]], ...] = (
    ("Failed", lambda r: r.result == Verdict.FAILED and r.category != Category.ALREADY_BROKEN),
    ("Already broken in current (not a regression of the migration)", lambda r: r.category == Category.ALREADY_BROKEN),
    ("Not qualified (pending, partial, stale, missing or never run)", lambda r: r.result in _NOT_QUALIFIED),
    ("Passed", lambda r: r.result == Verdict.PASSED),
    ("Export only", lambda r: r.result == Verdict.EXPORTED),
)
_HEADER = "| environment | owner | disposition | result | category | first error | findings | override | build s |"


def render_markdown(rows: list[Row], findings: dict[str, FindingsFile], installation: str, sandbox: str,
                    kernels: Sequence[KernelRow] = (), links: dict[str, str] | None = None) -> str:
    """The Markdown summary; `links` holds each findings file's path relative to the summary."""
    counts = ", ".join(f"{sum(1 for r in rows if test(r))} {title.split(' (')[0].lower()}" for title, test in _GROUPS)
    lines = [f"# Qualification of {installation}", "",
             f"{counted(len(rows), 'environment')}: {counts}. Generated {time.strftime('%Y-%m-%d %H:%M:%S')}; "
             "the same table is in summary.csv, and each environment's findings file is linked under it.", "",
             f"Owner checks, probes, kernels and pip ran in this sandbox: {sandbox}.", ""]
    for title, test in _GROUPS:
        group = [r for r in rows if test(r)]
        if not group:
            continue
        lines += [f"## {title}", "", _HEADER, "|" + "---|" * 9]
        lines += [_table_row(r) for r in group]
        lines.append("")
        for row in group:
            lines += _details(row, findings.get(row.environment), (links or {}).get(row.environment, ""))
    lines += _rescued_section(rescued(findings))
    if kernels:
        lines += ["## Kernels", "", f"The kernel names Jupyter shows now, and what the cutover to {installation} does "
                  "to each (notebooks save the name).", "",
                  "| kernel | environment | display name | started in current | started in qa | name change |",
                  "|" + "---|" * 6]
        lines += ["| " + " | ".join(_cell(v) for v in astuple(k)) + " |" for k in kernels]
    return "\n".join(lines).rstrip("\n") + "\n"


def rescued(findings: dict[str, FindingsFile]) -> list[Finding]:
    """The packages builds took from production into ROOT/rescue: each must still be published for good."""
    return [f for saved in findings.values() for f in saved.findings
            if f.rule is Rule.RESCUED and f.severity is Severity.INFO]


def _rescued_section(found: list[Finding]) -> list[str]:
    if not found:
        return []
    return ["## Rescued packages", "", "No channel of the site has these exact packages any more; each was taken from "
            "production into the site's rescue channel, which builds use after the site's channels. Publish each to "
            "the site's channel for good (README: Rescued packages).", "",
            "| environment | package | rescued | taken from |", "|" + "---|" * 4,
            *("| " + " | ".join(_cell(v) for v in (f.environment, f.package, f.action, f.reason)) + " |"
              for f in found), ""]


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ").strip()


def _table_row(r: Row) -> str:
    values = (r.environment, r.owner or "-", r.disposition, r.result, r.category or "-", r.first_error or "-",
              r.findings, "yes" if r.override else "no", r.build_seconds)
    return "| " + " | ".join(_cell(v) for v in values) + " |"


def _details(row: Row, saved: FindingsFile | None, link: str = "") -> list[str]:
    if not row.hint and not (saved and saved.findings):
        return []
    lines = [f"### {row.environment}", ""]
    if row.hint:
        lines += [f"**{row.category}**: {_cell(row.first_error)}", "", f"Hint: {row.hint}", ""]
    if row.waiver:
        lines += [f"{row.waiver[:1].upper()}{row.waiver[1:]}.", ""]
    for where, words in (("qa", row.qa_output), ("current", row.current_output)):
        if words.strip():
            lines += [f"Its last lines in {where}:", "", "```", *words.splitlines(), "```", ""]
    for f in saved.findings if saved else ():
        hint = f" Hint: {f.hint}" if f.hint else ""
        first, _, rest = f.reason.partition("\n")
        lines.append(f"- {f.severity} `{f.rule}` {f.package}: {f.action} — {first}.{hint}")
        if rest.strip():  # a solver's whole explanation: kept as it was written
            lines += ["", "  ```", *(f"  {line}" for line in rest.splitlines()), "  ```"]
    for step in saved.post_steps if saved else ():
        lines.append(f"- post-create step ({step.kind}): `{step.requirement}`")
    if link:
        lines += ["", f"Every finding: [{link}]({link})"]
    return [*lines, ""]


def qa_installation(site: Site) -> str:
    """The installation qa points to, else the one current points to (after a cutover)."""
    return site.link_target(site.qa_name) or site.link_target(site.current_name) or ""


def write_summary(site: Site, manifest: Sequence[Environment], kernels: Sequence[Kernel], sandbox: str,
                  installation: str | None = None, rows: list[Row] | None = None) -> tuple[Path, Path]:
    """Regenerate reports/summary.md and reports/summary.csv from `rows` (made here if not given: a
    verdict fingerprints the environment, so a caller that shows them too makes them once)."""
    installation = installation or qa_installation(site)
    rows = make_rows(site, manifest, installation, kernels) if rows is None else rows
    md, csv_path = (guard(site.reports_dir / name, [site.reports_dir], "write the summary")
                    for name in ("summary.md", "summary.csv"))
    files = {r.environment: f for r in rows if (f := _findings_file(site, installation, r.environment))}
    findings = {env: saved for env, path in files.items() if (saved := _read(path)) is not None}
    links = {env: os.path.relpath(path, md.parent) for env, path in files.items() if env in findings}
    table = kernel_rows(site, manifest, installation, kernels)
    atomic.write_text(md, render_markdown(rows, findings, installation, sandbox, table, links))
    atomic.write_text(csv_path, render_csv(rows))
    return md, csv_path


def _findings_file(site: Site, installation: str, env: str) -> Path | None:
    """The environment's findings file: in this run's reports/, else where its last build wrote it (`condaqa
    report` run from another folder than the qualification); None if neither exists."""
    here = findings_path(site, env)
    if here.is_file():
        return here
    result = load(site, installation, env)
    there = Path(result.findings_file) if result and result.findings_file else None
    return there if there is not None and there.is_file() else None


def _read(path: Path) -> FindingsFile | None:
    try:
        return read_findings(path)
    except (OSError, ValueError, KeyError):  # a findings file of another version, or cut short: no findings known
        return None

"""The site overview: reports/overview.html beside summary.md, self-contained.

Environments against checks as a grid (build, versions, imports, owner checks, kernels, export;
several owner checks or kernels show the worst), counts by verdict and category, the kernels
table, the qualification over time (the last runs, from qualification/runs.py) and the audit log of
lifecycle actions.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from condaqa import atomic
from condaqa.inputs import guard, redact
from condaqa.lifecycle import audit
from condaqa.manifest import Environment
from condaqa.pages.html import esc, outcome_class, page, para, table
from condaqa.pages.owner_page import stems
from condaqa.pages.owners import Owner
from condaqa.qualification import runs
from condaqa.qualification.required import BUILD, EXPORT, IMPORTS, KERNEL, OWNER, VERSIONS, CheckId
from condaqa.qualification.store import Result, load
from condaqa.report import KernelRow, Row
from condaqa.site import Site

COLUMNS = (("build", BUILD), ("versions", VERSIONS), ("imports", IMPORTS), ("owner checks", OWNER),
           ("kernels", KERNEL), ("export", EXPORT))
_WORST = ("failed", "skipped", "not run", "passed")
AUDIT_SHOWN = 30
RUNS_SHOWN = 30


def _cell(result: Result | None, prefix: str) -> str:
    """The outcome of the checks whose id is `prefix` (or starts with it, for owner: and kernel:), worst first."""
    if result is None:
        return "not run"
    wanted = [c for c in result.required if CheckId.parse(c).kind == prefix]
    if not wanted:
        return "-"
    outcomes = {str(result.checks[c].outcome) if c in result.checks else "not run" for c in wanted}
    worst = next(o for o in _WORST if o in outcomes) if outcomes <= set(_WORST) else sorted(outcomes)[0]
    return f"{worst} ({len(wanted)})" if prefix.endswith(":") and len(wanted) > 1 else worst


def grid(site: Site, manifest: Sequence[Environment], installation: str, rows: Sequence[Row],
         owners: Sequence[Owner]) -> list[list[str]]:
    """One row per environment: name, owner, plan, verdict, category, each column's outcome, its use."""
    by_row = {r.environment: r for r in rows}
    facts = {e.env: e for o in owners for e in o.environments}
    out = []
    for env in manifest:
        result = load(site, installation, env.name)
        row, fact = by_row[env.name], facts[env.name]
        out.append([env.name, fact.owner, str(env.disposition), row.result, row.category or "-",
                    *(_cell(result, prefix) for _, prefix in COLUMNS), fact.usage])
    return out


def _grid_table(cells: list[list[str]], running: set[str]) -> str:
    """The grid, an environment in use right now marked in its last cell."""
    head = "".join(f"<th>{esc(h)}</th>" for h in
                   ["environment", "owner", "plan", "verdict", "category", *(c for c, _ in COLUMNS), "in use"])
    body = []
    for row in cells:
        classes = [outcome_class(v) for v in row[:-1]] + ["now" if row[0] in running else ""]
        body.append('<tr class="env">' + "".join(f'<td class="{esc(c)}">{esc(v)}</td>' if c else f"<td>{esc(v)}</td>"
                                                 for c, v in zip(classes, row, strict=True)) + "</tr>")
    return f'<table id="grid"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _runs_table(shown: list[runs.Run]) -> str:
    top = max([r.environments for r in shown] + [1])
    rows = []
    for run in shown:
        bar = (f'<span class="bar p" style="width:{12 * run.qualified / top:.2f}em"></span>'
               f'<span class="bar f" style="width:{12 * run.failed / top:.2f}em"></span>')
        where = run.host + (f" (shard {run.shard})" if run.shard else "")
        rows.append(f"<tr><td>{esc(run.at)}</td><td>{esc(where)}</td><td>{run.environments}</td><td>{run.qualified}</td>"
                    f"<td>{run.failed}</td><td>{run.pending}</td><td>{run.exit}</td><td>{run.seconds:.0f} s</td>"
                    f"<td>{bar}</td></tr>")
    head = "".join(f"<th>{h}</th>" for h in ("finished", "host", "environments", "qualified", "failed", "pending",
                                             "exit", "took", ""))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _audit_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    return [[str(r.get("time", "?")), str(r.get("user", "?")), str(r.get("action", "?")),
             f"{r.get('from', r.get('installation', ''))} -> {r.get('to', '')}".strip(" ->") or "-",
             str(r.get("reason", "")) or "-"] for r in records[-AUDIT_SHOWN:]]


def render(site: Site, manifest: Sequence[Environment], installation: str, rows: Sequence[Row],
           kernels: Sequence[KernelRow], owners: Sequence[Owner]) -> str:
    verdicts = Counter(r.result for r in rows)
    categories = Counter(r.category for r in rows if r.category)
    body = [f"<h1>Qualification of {esc(installation)}</h1>",
            para(f"{len(rows)} environments of {site.current_link} -> {site.link_target(site.current_name)}; "
                 f"generated {time.strftime('%Y-%m-%d %H:%M')}. The same facts are in summary.md and summary.csv.",
                 "note"),
            "<h2>Counts</h2>",
            table(["verdict", "environments"], sorted(verdicts.items()), cell_classes=True),
            table(["category", "environments"], sorted(categories.items()) or [["-", 0]]),
            "<h2>Environments and their checks</h2>",
            para("Each cell is the outcome of that check against the build on disk now; several owner checks or "
                 "kernels show the worst, with their number. '-': not required.", "note"),
            _grid_table(grid(site, manifest, installation, rows, owners),
                        {e.env for o in owners for e in o.environments if e.in_use_now})]
    if kernels:
        body += ["<h2>Kernels</h2>", table(["kernel", "environment", "display name", "started in current",
                                            "started in qa", "name change"],
                                           [[k.name, k.environment, k.display_name, k.started_current, k.started_qa,
                                             k.name_change] for k in kernels], cell_classes=True)]
    shown = runs.last(site, installation, RUNS_SHOWN)
    body += ["<h2>Qualification over time</h2>",
             para(f"The last {RUNS_SHOWN} pytest runs that qualified environments of {installation}, oldest first: "
                  "the environments each ran, and where they stood when it finished.", "note"),
             _runs_table(shown) if shown else para("No qualification run has finished yet.")]
    records = audit.records(site)
    body += ["<h2>Lifecycle actions (audit log)</h2>",
             table(["time", "user", "action", "installations", "reason"], _audit_rows(records)) if records
             else para("No action recorded yet.")]
    named = stems(owners)
    body += ["<h2>Owners</h2>", "<ul>",
             *(f'<li><a href="owners/{esc(named[o.name])}.html">{esc(o.name)}</a>: {len(o.environments)} '
               "environment(s)</li>" for o in owners), "</ul>"]
    return redact(page(f"condaqa: qualification of {installation}", body))


def write_overview(site: Site, text: str) -> Path:
    path = guard(site.reports_dir / "overview.html", [site.reports_dir], "write the overview")
    atomic.write_text(path, text)
    return path

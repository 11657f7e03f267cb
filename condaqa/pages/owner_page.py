"""One owner's page, in Markdown and in self-contained HTML: reports/owners/<owner>.md and .html."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from condaqa import atomic
from condaqa.inputs import guard, redact
from condaqa.pages.html import esc, page, para, pre, table
from condaqa.pages.owners import Owner, OwnerEnv
from condaqa.site import Site


def folder(site: Site) -> Path:
    return site.reports_dir / "owners"


def _intro(owner: Owner, installation: str) -> str:
    return (f"The shared conda installation moves to {installation}. These are the environments that name "
            f"{owner.name} as their owner, what the move does to each, and what you need to do. Generated "
            f"{time.strftime('%Y-%m-%d %H:%M')}.")


def _md_cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ") or "-"


def markdown(owner: Owner, installation: str) -> str:
    lines = [f"# Your conda environments: {owner.name}", "", _intro(owner, installation), "",
             "| environment | plan | verdict | category | in use |", "|---|---|---|---|---|"]
    lines += [f"| {e.env} | {e.disposition} | {e.verdict} | {_md_cell(e.category)} | {_md_cell(e.usage)} |"
              for e in owner.environments]
    for e in owner.environments:
        lines += ["", f"## {e.env}", "", f"**What you must do:** {e.to_do}", "", f"**At the cutover:** {e.at_cutover}.",
                  "", f"**Use:** {e.usage}."]
        if e.first_error:
            lines += ["", f"**{e.verdict}{f' ({e.category})' if e.category else ''}:** {e.first_error}"]
        if e.hint:
            lines += ["", f"Hint: {e.hint}"]
        for where, words in (("the new installation", e.qa_output), ("today's installation", e.current_output)):
            if words.strip():
                lines += ["", f"Its last lines in {where}:", "", "```", *words.splitlines(), "```"]
        if e.changes:
            lines += ["", "Packages whose versions change:", "", *(f"- {c}" for c in e.changes)]
        if e.kernel_changes:
            lines += ["", "Kernel names that change (notebooks save the name):", "",
                      *(f"- {k}" for k in e.kernel_changes)]
    return redact("\n".join(lines) + "\n")


def _section(e: OwnerEnv) -> list[str]:
    body = [f'<section id="env-{esc(e.env)}">', f"<h2>{esc(e.env)}</h2>",
            f'<div class="todo"><strong>What you must do:</strong> {esc(e.to_do)}</div>']
    if e.in_use_now:  # said once, in red, not again as a plain "Use:" below
        body.append(f'<div class="inuse"><strong>In use right now:</strong> {esc(e.usage)}</div>')
    body.append(f"<p><strong>At the cutover:</strong> {esc(e.at_cutover)}.</p>")
    if not e.in_use_now:
        body.append(f"<p><strong>Use:</strong> {esc(e.usage)}.</p>")
    if e.first_error:
        body.append(f'<p class="{esc(e.verdict)}"><strong>{esc(e.verdict)}'
                    f"{esc(f' ({e.category})' if e.category else '')}:</strong> {esc(e.first_error)}</p>")
    if e.hint:
        body.append(para(f"Hint: {e.hint}", "note"))
    for where, words in (("the new installation", e.qa_output), ("today's installation", e.current_output)):
        if words.strip():
            body += [para(f"Its last lines in {where}:"), pre(words)]
    if e.changes:
        body += ["<h3>Packages whose versions change</h3>",
                 table(["package: current -> new"], [[c] for c in e.changes])]
    if e.kernel_changes:
        body += ["<h3>Kernel names that change</h3>", para("Notebooks save the kernel's name.", "note"),
                 table(["kernel: what happens to its name"], [[k] for k in e.kernel_changes])]
    return [*body, "</section>"]


def html_page(owner: Owner, installation: str) -> str:
    rows = [[e.env, e.disposition, e.verdict, e.category or "-", e.usage] for e in owner.environments]
    body = [f"<h1>Your conda environments: {esc(owner.name)}</h1>", para(_intro(owner, installation), "note"),
            '<table id="environments"><thead><tr><th>environment</th><th>plan</th><th>verdict</th><th>category</th>'
            "<th>in use</th></tr></thead><tbody>",
            *(f'<tr class="env"><td><a href="#env-{esc(r[0])}">{esc(r[0])}</a></td><td>{esc(r[1])}</td>'
              f'<td class="{esc(r[2])}">{esc(r[2])}</td><td>{esc(r[3])}</td><td>{esc(r[4])}</td></tr>' for r in rows),
            "</tbody></table>"]
    for e in owner.environments:
        body += _section(e)
    return redact(page(f"conda environments of {owner.name}", body))


def stems(owners: Sequence[Owner]) -> dict[str, str]:
    """Owner -> the file name of their pages; two owners whose names clean to one stem get -2, -3."""
    taken: dict[str, str] = {}
    for owner in owners:
        stem, n = owner.file_stem, 1
        while stem in taken.values():
            n += 1
            stem = f"{owner.file_stem}-{n}"
        taken[owner.name] = stem
    return taken


def write_owner_pages(site: Site, owners: list[Owner], installation: str) -> list[Path]:
    """reports/owners/<owner>.md and .html for each owner."""
    where, named = folder(site), stems(owners)
    written = []
    for owner in owners:
        stem = named[owner.name]
        for suffix, text in ((".md", markdown(owner, installation)), (".html", html_page(owner, installation))):
            path = guard(where / f"{stem}{suffix}", [site.reports_dir], "write an owner's page")
            atomic.write_text(path, text)
            written.append(path)
    return written

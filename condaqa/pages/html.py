"""Self-contained HTML: one file with its style inline, no script, no network, every text escaped.

Owners open these pages from a mail, a chat or a shared folder, often offline; so nothing is
fetched (a Content-Security-Policy that forbids it says so to the browser), and everything that
comes from environments, owners or checks goes through `esc`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:96em;padding:0 1em;
color:#1d1f21;background:#fff}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}
h3{font-size:1.05em;margin-bottom:.3em}
table{border-collapse:collapse;margin:.6em 0;width:100%}th,td{border:1px solid #d0d4d9;padding:.3em .5em;
text-align:left;vertical-align:top}td:last-child{overflow-wrap:anywhere}
th{background:#f3f5f7;white-space:nowrap}td[class]:not([class=""]):not(.now){white-space:nowrap}
pre{background:#f6f8fa;border:1px solid #e1e4e8;padding:.6em;overflow-x:auto;font-size:.85em;white-space:pre-wrap}
.passed,.exported,.yes{background:#e6f4ea}.failed,.no{background:#fce8e6}.already-broken{background:#fef3e0}
.pending,.partial,.stale,.missing,.never,.skipped{background:#fff8db}.none{color:#888}
.note{color:#555}td.now{background:#fce8e6;font-weight:600}
.todo{background:#eef3fb;border-left:4px solid #3b73c4;padding:.5em .8em;margin:.5em 0}
.inuse{background:#fce8e6;border-left:4px solid #c5221f;padding:.5em .8em;margin:.5em 0}
.bar{display:inline-block;height:.9em;vertical-align:middle}.bar.p{background:#34a853}.bar.f{background:#ea4335}
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, body: Iterable[str]) -> str:
    """A whole HTML document: `body` is already-escaped markup."""
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>", *body, "</body>",
        "</html>", ""])


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], row_class: str = "",
          cell_classes: bool = False) -> str:
    """A table; with `cell_classes`, each cell's text (a verdict, an outcome) is also its class, for its colour."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(f'<td class="{esc(outcome_class(v))}">{esc(v)}</td>' if cell_classes else f"<td>{esc(v)}</td>"
                        for v in row)
        body.append(f'<tr class="{esc(row_class)}">{cells}</tr>' if row_class else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_CLASSES = {"passed", "failed", "skipped", "exported", "yes", "no", "pending", "partial", "stale", "missing", "never",
            "already-broken"}


def outcome_class(value: object) -> str:
    """A verdict or an outcome (`passed`, `failed (2)`) is its own class; any other text has none."""
    text = str(value).split(" (")[0]
    return text if text in _CLASSES else "none" if text in ("-", "") else ""


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def para(text: str, cls: str = "") -> str:
    return f'<p class="{esc(cls)}">{esc(text)}</p>' if cls else f"<p>{esc(text)}</p>"

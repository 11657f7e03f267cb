"""Sending each owner their summary: a chat incoming webhook, or the local sendmail.

Slack and Mattermost accept the same incoming-webhook JSON, `{"text": ...}`, one POST per owner.
Mail goes through `sendmail -t -oi` to the owner's address: the owner itself when it holds an @,
else the owner at `--mail-domain` (or the local user of that name). A dry run returns what would
be sent and sends nothing. Every message says where the owner's full page is.
"""

from __future__ import annotations

import json
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage

from condaqa import proc
from condaqa.inputs import redact
from condaqa.pages.owners import Owner

TIMEOUT = 20.0
_ADDRESS = re.compile(r"^[A-Za-z0-9._+-]+(@[A-Za-z0-9.-]+)?$")


@dataclass(frozen=True)
class Sent:
    owner: str
    where: str  # the webhook (credentials masked) or the address
    text: str
    ok: bool
    problem: str = ""

    def line(self) -> str:
        state = "sent" if self.ok else f"NOT sent ({self.problem})"
        return f"{self.owner}: {state} to {self.where}"


def message(owner: Owner, page: str) -> str:
    return f"{owner.summary()}\nThe whole report, with the failed checks' own lines: {page}"


def post(url: str, text: str) -> str:
    """POST `{"text": text}` to an incoming webhook; "" when it answered 2xx, else why not."""
    request = urllib.request.Request(url, data=json.dumps({"text": text}).encode("utf-8"),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
            return "" if 200 <= answer.status < 300 else f"HTTP {answer.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))


def address(owner: str, domain: str) -> str:
    """The mail address of `owner`, or "" when the owner's name cannot be one."""
    if not _ADDRESS.match(owner):
        return ""
    return owner if "@" in owner or not domain else f"{owner}@{domain}"


def mail(to: str, subject: str, text: str) -> str:
    """Hand one mail to the local sendmail; "" when it took it, else why not."""
    sendmail = shutil.which("sendmail") or next((p for p in ("/usr/sbin/sendmail", "/usr/lib/sendmail")
                                                 if shutil.which(p)), "")
    if not sendmail:
        return "no sendmail on this machine"
    mail_message = EmailMessage()
    mail_message["To"], mail_message["Subject"] = to, subject
    mail_message.set_content(text)
    done = proc.run([sendmail, "-t", "-oi"], environ=proc.foreign_environ(), timeout=TIMEOUT,
                    stdin=mail_message.as_bytes())
    return "" if done.ok else f"sendmail exited {done.returncode}: {(done.stderr or done.stdout).strip()[-200:]}"


def notify(owners: Sequence[Owner], pages: dict[str, str], *, webhook: str = "", mail_domain: str | None = None,
           dry_run: bool = False) -> list[Sent]:
    """Send each owner their summary by webhook (when given), else by mail; with `dry_run`, only say what."""
    out = []
    for owner in owners:
        text = message(owner, pages.get(owner.name, "-"))
        if webhook:
            where = redact(webhook)
            problem = "" if dry_run else post(webhook, text)
        else:
            where = address(owner.name, mail_domain or "")
            if not where:
                out.append(Sent(owner.name, "-", text, False, f"{owner.name!r} is not a mail address or user name"))
                continue
            problem = "" if dry_run else mail(where, f"condaqa: your conda environments ({owner.name})", text)
        out.append(Sent(owner.name, where, text, not problem, problem))
    return out

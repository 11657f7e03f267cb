"""The owners' part of `condaqa report`: --owners writes their pages and the overview, --notify sends them."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from condaqa import report
from condaqa.commands import EXIT_FAILED, EXIT_OK
from condaqa.errors import ConfigError
from condaqa.kernels.specs import Kernel
from condaqa.manifest import Environment
from condaqa.pages import notify, overview
from condaqa.pages.owner_page import folder, stems, write_owner_pages
from condaqa.pages.owners import owners
from condaqa.site import Site
from condaqa.usage.evidence import collect


def owner_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--owners", action="store_true", help="also write one page per environment owner "
                        "(reports/owners/<owner>.md and .html) and the site overview (reports/overview.html)")
    parser.add_argument("--notify", action="store_true", help="send each owner their summary: to the chat "
                        "webhook (--webhook, else site.toml notify_webhook), else by the local sendmail")
    parser.add_argument("--webhook", metavar="URL", default=None, help="a Slack or Mattermost incoming webhook")
    parser.add_argument("--mail-domain", metavar="DOMAIN", help="mail OWNER@DOMAIN (default: the owner's name as "
                        "a local user, or the owner itself when it is an address)")
    parser.add_argument("--dry-run", action="store_true", help="with --notify: print what would be sent, send nothing")
    parser.add_argument("--since", metavar="SPAN", default="30d", help="how far back the pages read the usage "
                        "sampler log (default 30d)")


def owner_reports(args: argparse.Namespace, site: Site, manifest: Sequence[Environment], kernels: Sequence[Kernel],
                  installation: str, rows: list[report.Row]) -> int:
    try:
        usage = collect(site, args.since, with_files=False)
    except ValueError as exc:
        raise ConfigError(f"--since: {exc}") from None
    table = report.kernel_rows(site, manifest, installation, kernels)
    found = owners(site, manifest, installation, rows, table, usage)
    written = write_owner_pages(site, found, installation)
    page = overview.write_overview(site, overview.render(site, manifest, installation, rows, table, found))
    print(f"{len(found)} owner(s): {len(written)} page(s) in {folder(site)}; overview {page}")
    if not args.notify:
        return EXIT_OK
    named = stems(found)
    pages = {o.name: str(folder(site) / f"{named[o.name]}.html") for o in found}
    webhook = args.webhook if args.webhook is not None else site.notify_webhook
    sent = notify.notify(found, pages, webhook=webhook, mail_domain=args.mail_domain, dry_run=args.dry_run)
    for s in sent:
        if args.dry_run:
            print(f"would send to {s.where} for {s.owner}:" if s.ok else s.line())
            print("\n".join(f"  | {line}" for line in s.text.splitlines()) if s.ok else "", end="\n" if s.ok else "")
        else:
            print(s.line())
    return EXIT_OK if all(s.ok for s in sent) else EXIT_FAILED

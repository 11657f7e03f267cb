"""Subcommands: demo, inventory, export, replicate, status."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from condaqa import results
from condaqa.build import replicate
from condaqa.commands import EXIT_FAILED, EXIT_OK, command, site_of
from condaqa.commands.lifecycle import lifecycle_status
from condaqa.demo.site import ensure_demo
from condaqa.errors import BuildError, ConfigError
from condaqa.findings import load_findings
from condaqa.inventory import human_size, inventory
from condaqa.manifest import Environment, load_manifest, starter_ini
from condaqa.site import Site, load_site
from condaqa.sources import export_from_history
from condaqa.spec import export_environment, spec_path, write_spec
from condaqa.triage import classify_build


def _selected(site: Site, name: str | None, *, replicate_only: bool) -> list[Environment]:
    manifest = load_manifest(site.manifest)
    chosen = [e for e in manifest if name in (None, e.name)]
    if name is not None and not chosen:
        raise ConfigError(f"{site.manifest}: no environment {name!r} in the manifest")
    if replicate_only:
        if name is not None and not chosen[0].replicate:
            raise ConfigError(f"{site.manifest}:{chosen[0].line}: {name} is export-only; mark it REPLICATE to build it")
        chosen = [e for e in chosen if e.replicate]
    return chosen


def _demo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", metavar="DIR", type=Path, help="where to build it (default: the site's root)")


@command("demo", "build the embedded demo site (offline, a few seconds)", _demo_args)
def demo(args: argparse.Namespace) -> int:
    site = load_site(args.site)
    if args.root is not None:
        root = args.root.resolve()
        site = replace(site, root=root, specs_dir=root / site.specs_dir.name, kernels_dir=root / site.kernels_dir.name)
    if not ensure_demo(site):
        print(f"demo site already built at {site.root}")
    return EXIT_OK


def _inventory_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ini", action="store_true", help="print a starter environments.ini (all export)")


@command("inventory", "list every environment of current: size, owner, last change, kernels", _inventory_args)
def inventory_command(args: argparse.Namespace) -> int:
    site = site_of(args)
    facts = inventory(site)
    if args.ini:
        print(starter_ini([(f.name, f.comment()) for f in facts]), end="")
        return EXIT_OK
    width = max([len(f.name) for f in facts] + [11])
    print(f"{'environment':{width}}  {'size':>10}  {'owner':20}  {'modified':10}  kernels")
    for f in facts:
        owner = f"{f.user}:{f.group}"
        day = time.strftime("%Y-%m-%d", time.localtime(f.modified))
        print(f"{f.name:{width}}  {human_size(f.size):>10}  {owner:20}  {day:10}  {', '.join(f.kernels) or '-'}")
    print(f"{len(facts)} environments in {site.current} -> {site.link_target(site.current_name)}")
    return EXIT_OK


def _export_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", metavar="NAME", help="only this environment (default: every one in the manifest)")
    parser.add_argument("--from-history", action="store_true",
                        help="write the specs users asked for (conda-meta/history) instead of the exact pins")


@command("export", "write each manifest environment's spec to ROOT/<specs>/<env>.yml, read from its prefix", _export_args)
def export(args: argparse.Namespace) -> int:
    site = site_of(args)
    for env in _selected(site, args.env, replicate_only=False):
        path = spec_path(site, env.name)
        spec = export_from_history(site, env.name) if args.from_history else export_environment(site, env.name)
        write_spec(path, spec)
        print(f"{env.name}: {path}")
    return EXIT_OK


def _replicate_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", metavar="NAME", help="only this environment (default: every REPLICATE one)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild even when the plan is unchanged")


@command("replicate", "build REPLICATE environments in qa (idempotent; logs in reports/logs/)", _replicate_args)
def replicate_command(args: argparse.Namespace) -> int:
    site = site_of(args)
    chosen = _selected(site, args.env, replicate_only=True)
    failed = 0
    for number, env in enumerate(chosen, 1):
        print(f"[{number}/{len(chosen)}] {env.name}: ", end="", flush=True)
        try:
            built = replicate(site, env, rebuild=args.rebuild)
        except BuildError as exc:
            failed += 1
            saved = load_findings(site, env.name)
            verdict = classify_build(env.name, exc, saved.findings if saved else ())
            print(f"FAILED [{verdict.category}] at {exc.stage}: {(verdict.detail or str(exc)).splitlines()[0]}")
            print(f"    hint: {verdict.hint}\n    log: {exc.log}")
            continue
        print(f"built in {built.seconds:.1f}s" if built.rebuilt else "up to date")
    print(f"{len(chosen) - failed} of {len(chosen)} environments ready in {site.qa}")
    return EXIT_FAILED if failed else EXIT_OK


@command("status", "where current and qa point, installations, last qualification, cutover history")
def status(args: argparse.Namespace) -> int:
    site = site_of(args)
    print(f"site      {site.root}  ({site.file})")
    for link in (site.current_name, site.qa_name):
        print(f"{link:9} -> {site.link_target(link) or '(absent)'}")
    for inst in site.installations():
        version = inst.conda_version()
        envs = inst.environments()
        print(f"  {inst.name:12} {len(envs):3} environments  conda {version or '-'}")
    manifest = load_manifest(site.manifest)
    for link in (site.qa_name, site.current_name):
        target = site.link_target(link)
        recorded = results.load_all(site, target) if target else {}
        if not recorded:
            continue
        print(f"last qualification of {target} ({link}):")
        for env in manifest:
            result = recorded.get(env.name)
            if result is None:
                print(f"  {env.name:32} {env.disposition:9} not qualified yet")
                continue
            extra = f"  [{result.category}] {result.first_error}" if result.outcome == results.FAILED else ""
            print(f"  {env.name:32} {env.disposition:9} {result.outcome:8} {result.finished_at}{extra}")
    for line in lifecycle_status(site):
        print(line)
    return EXIT_OK

"""Subcommands: sanitize (environment files into buildable specs), report (the summary spreadsheet)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from condaqa import report, results
from condaqa.channels import RepodataIndex, qa_platform
from condaqa.commands import EXIT_FAILED, EXIT_OK, command, site_of
from condaqa.errors import CondaqaError, SpecError
from condaqa.manifest import load_manifest
from condaqa.findings import ERROR, WARNING, FindingsFile
from condaqa.sanitize import Sanitized, load_legacy, sanitize_file
from condaqa.sources import legacy_path
from condaqa.spec import dump_spec
from condaqa.triage import ALREADY_BROKEN

EXIT_BAD_INPUT = CondaqaError.exit_code


def _sanitize_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", metavar="FILE", nargs="+", type=Path, help="environment files (conda env export "
                        "output from any machine, or hand-written)")
    parser.add_argument("--out", metavar="DIR", type=Path, default=Path("sanitized"),
                        help="where to write <name>.yml and <name>.findings.json (default: ./sanitized)")
    parser.add_argument("--keep-builds", action="store_true", help="keep build strings (name=version=build)")
    parser.add_argument("--site", metavar="PATH", default=argparse.SUPPRESS,
                        help="also run the preflight against this site's channels, and use its legacy-noarch.txt")


@command("sanitize", "turn environment files into buildable specs, each change named in a finding", _sanitize_args)
def sanitize_command(args: argparse.Namespace) -> int:
    index, legacy, platform = None, frozenset(), ""
    if args.site is not None:
        site = site_of(args)
        index, legacy, platform = RepodataIndex(site), load_legacy(legacy_path(site)), qa_platform(site)
    code, written = EXIT_OK, set()
    for path in args.files:
        try:
            result = sanitize_file(path, index=index, legacy=legacy, keep_builds=args.keep_builds, platform=platform)
        except SpecError as exc:
            print(f"error: {exc}", file=sys.stderr)
            code = EXIT_BAD_INPUT
            continue
        target = _free_name(args.out, path.stem, written)
        _write(target, path, result)
        errors = sum(1 for f in result.findings if f.severity == ERROR)
        print(f"{path} -> {target}.yml: {_counts(result)}; findings in {target.name}.findings.json")
        if errors and code == EXIT_OK:
            code = EXIT_FAILED
    return code


def _free_name(folder: Path, stem: str, taken: set[Path]) -> Path:
    """out/<stem>, or out/<stem>-2 ... when two inputs share a file name."""
    candidate, number = folder / stem, 1
    while candidate in taken:
        number += 1
        candidate = folder / f"{stem}-{number}"
    taken.add(candidate)
    return candidate


def _write(target: Path, source: Path, result: Sanitized) -> None:
    header = [f"# Sanitized by condaqa from {source}; what changed and why: {target.name}.findings.json"]
    if result.post:
        header.append("# After creating the environment, run these post-create steps in it:")
        header += [f"#   {'pip install' if s.kind == 'pip' else 'conda install'} {s.requirement}" for s in result.post]
    target.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{target}.yml").write_text("\n".join(header) + "\n" + dump_spec(result.spec), encoding="utf-8")
    record = FindingsFile(result.spec.name, "file", result.findings, list(result.post))
    Path(f"{target}.findings.json").write_text(record.to_json(), encoding="utf-8")


def _counts(result: Sanitized) -> str:
    by = {s: sum(1 for f in result.findings if f.severity == s) for s in (ERROR, WARNING)}
    parts = [_plural(len(result.findings), "finding")] + [_plural(n, s) for s, n in by.items() if n]
    if result.post:
        parts.append(_plural(len(result.post), "post-create step"))
    return ", ".join(parts)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _report_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--installation", metavar="NAME", help="whose results (default: what qa points to)")


@command("report", "regenerate reports/summary.md and summary.csv from the saved results and findings", _report_args)
def report_command(args: argparse.Namespace) -> int:
    site = site_of(args)
    manifest = load_manifest(site.manifest)
    installation = args.installation or report.qa_installation(site)
    rows = report.make_rows(site, manifest, installation)
    md, csv_path = report.write_summary(site, manifest, installation)
    broken = sum(1 for r in rows if r.category == ALREADY_BROKEN)
    failed = sum(1 for r in rows if r.result == results.FAILED) - broken
    print(f"{len(rows)} environments of {installation}: {failed} failed, {broken} already broken in current; "
          f"{md} and {csv_path}")
    return EXIT_OK

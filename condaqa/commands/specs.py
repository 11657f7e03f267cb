"""Subcommands: export (specs from current's prefixes), sanitize (any environment file into a buildable spec)."""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from pathlib import Path

from condaqa import atomic
from condaqa.channels import RepodataIndex, qa_platform
from condaqa.commands import EXIT_FAILED, EXIT_OK, command, site_of
from condaqa.errors import CondaqaError, ConfigError, SpecError
from condaqa.inputs import redact
from condaqa.manifest import Environment, site_manifest
from condaqa.plan.findings import FindingsFile, errors
from condaqa.plan.foreign import Sanitized, sanitize_file
from condaqa.plan.planning import legacy_path, load_legacy, skipped_preflight
from condaqa.site import Site
from condaqa.spec.export import (
    WriteBehind,
    explicit_path,
    export_environment,
    export_explicit,
    export_from_history,
    history_spec_path,
    spec_path,
    write_export,
    write_spec,
)
from condaqa.spec.format import dump_spec
from condaqa.vocab import PlanSource, Severity, StepKind, counted

EXIT_BAD_INPUT = CondaqaError.exit_code


def selected(site: Site, name: str | None, *, replicate_only: bool) -> list[Environment]:
    """The manifest's environments, or the one named (an error naming the manifest if it is not there)."""
    manifest = site_manifest(site)
    chosen = [e for e in manifest if name in (None, e.name)]
    if name is not None and not chosen and name in site.left_out():
        raise ConfigError(f"{site.manifest}: {name} is left out of the demo site: {site.left_out()[name]}")
    if name is not None and not chosen:
        raise ConfigError(f"{site.manifest}: no environment {name[:80]!r} in the manifest")
    if replicate_only:
        if name is not None and not chosen[0].replicate:
            raise ConfigError(f"{site.manifest}:{chosen[0].line}: {name} is export-only; mark it REPLICATE to build it")
        chosen = [e for e in chosen if e.replicate]
    return chosen


def _export_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", metavar="NAME", help="only this environment (default: every one in the manifest)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--from-history", action="store_true",
                     help="the specs users asked for (conda-meta/history) instead of the exact pins; written to "
                     "<specs>/from-history/<env>.yml, beside the pinned exports")
    how.add_argument("--explicit", action="store_true",
                     help="conda's @EXPLICIT list of package URLs, as `conda list --explicit` prints it, which "
                     "`conda create --file` recreates exactly; written to <specs>/explicit/<env>.txt")


@command("export", "write each manifest environment's spec to ROOT/<specs>/<env>.yml, read from its prefix",
         _export_args)
def export(args: argparse.Namespace) -> int:
    site = site_of(args)
    with WriteBehind(print) as writer:
        for env in selected(site, args.env, replicate_only=False):
            if args.explicit:
                path = explicit_path(site, env.name)
                text, contents = export_explicit(site, env.name)
                left = f" (its {len(contents.pip)} pip distributions have no place in the @EXPLICIT format: the " \
                       ".yml export lists them)" if contents.pip else ""
                writer.write(partial(write_spec, site, path, text), f"{env.name}: {path}{left}")
                continue
            if args.from_history:
                path, spec = history_spec_path(site, env.name), export_from_history(site, env.name)
            else:
                path, spec = spec_path(site, env.name), export_environment(site, env.name)
            writer.write(partial(write_export, site, path, spec), f"{env.name}: {path}")
    return EXIT_OK


def _sanitize_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", metavar="FILE", nargs="+", type=Path, help="environment files (conda env export "
                        "output from any machine, or hand-written)")
    parser.add_argument("--out", metavar="DIR", type=Path, default=Path("sanitized"),
                        help="where to write <name>.yml and <name>.findings.json (default: ./sanitized); never over an "
                        "input file")
    parser.add_argument("--keep-builds", action="store_true", help="keep build strings (name=version=build)")
    parser.epilog = ("With --site, the preflight also runs against that site's channels, with its "
                     "legacy-noarch.txt and pip_args.")


@command("sanitize", "turn environment files into buildable specs, each change named in a finding", _sanitize_args)
def sanitize_command(args: argparse.Namespace) -> int:
    index: RepodataIndex | None = None
    legacy: frozenset[str] = frozenset()
    platform, pip_args = "", tuple[str, ...]()
    if getattr(args, "site", None) is not None:
        site = site_of(args)
        index, legacy, platform = RepodataIndex(site), load_legacy(legacy_path(site)), qa_platform(site)
        pip_args = tuple(site.expand(a) for a in site.pip_args)
    inputs = {os.path.realpath(p) for p in args.files}
    code, written = EXIT_OK, set[Path]()
    for path in args.files:
        target = _free_name(args.out, path.stem, written)
        try:
            outputs = (Path(f"{target}.yml"), Path(f"{target}.findings.json"))
            clash = [t for t in outputs if os.path.realpath(t) in inputs]
            if clash:
                raise SpecError(f"{clash[0]}: is one of the input files; choose another --out folder")
            result = sanitize_file(path, index=index, legacy=legacy, keep_builds=args.keep_builds, platform=platform,
                                   site_pip_args=pip_args)
            result.findings[:0] = skipped_preflight(result.spec.name, index)
        except SpecError as exc:
            print(f"error: {redact(str(exc))}", file=sys.stderr)
            code = EXIT_BAD_INPUT
            continue
        _write(target, path, result)
        print(f"{path} -> {target}.yml: {_counts(result)}; findings in {target.name}.findings.json")
        for finding in errors(result.findings):
            print(redact(f"  error {finding.rule} {finding.package}: {finding.reason}"))
        if errors(result.findings) and code == EXIT_OK:
            code = EXIT_FAILED
    # as pytest's preflight says it: nothing passes in silence (said last: a channel whose records of a name
    # looked up cannot be read becomes unreadable then)
    for channel, why in (index.unreadable if index is not None else {}).items():
        print(f"warning: preflight skipped for channel {channel}: {redact(why)}; a pin missing from the other "
              "channels may be in it, so none is called missing", file=sys.stderr)
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
        header += [f"#   {'pip install' if s.kind is StepKind.PIP else 'conda install'} {s.requirement}"
                   for s in result.post]
    atomic.write_text(Path(f"{target}.yml"), redact("\n".join(header) + "\n" + dump_spec(result.spec)))
    record = FindingsFile(result.spec.name, PlanSource.FILE, result.findings, list(result.post))
    atomic.write_text(Path(f"{target}.findings.json"), record.to_json())


def _counts(result: Sanitized) -> str:
    by = {s: sum(1 for f in result.findings if f.severity is s) for s in (Severity.ERROR, Severity.WARNING)}
    parts = [counted(len(result.findings), "finding")] + [counted(n, str(s)) for s, n in by.items() if n]
    if result.post:
        parts.append(counted(len(result.post), "post-create step"))
    return ", ".join(parts)


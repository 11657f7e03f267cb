"""ROOT/archive/<installation>/<env>/: what it takes to rebuild an environment exactly, offline, once the
channels have lost its versions.

An archive holds the environment's spec (`environment.yml`), its @EXPLICIT list (`explicit.txt`), every
conda package it holds as a local channel (`channel/`, each taken from production as rescue/sources.py
takes it: the cache file, the cache folder, else the prefix), the wheels of its pip distributions that
the site's wheelhouse (`--find-links` of pip_args) still has (`pip/`; the others are named in the
manifest), and `manifest.json`: the records it was made from and the digest of every file. It is
written beside its final place and renamed into it, so a folder that is there is whole.

`verify` rebuilds the environment from the archive alone (its channel, nothing else) into a scratch
prefix and compares it with the records, one by one: name, version, build and the files each lists.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from condaqa import atomic
from condaqa.engines import get_engine
from condaqa.engines.rattler import index_channel
from condaqa.errors import PrefixError
from condaqa.inputs import ARCHIVE_MANIFEST, read_json
from condaqa.plan.entries import PipOption, local_path
from condaqa.plan.model import BuildPlan
from condaqa.prefix import PipDistribution, is_environment, read_prefix
from condaqa.rescue.sources import file_digest, load_record, rescue
from condaqa.site import Installation, Site
from condaqa.spec.export import explicit_text, site_channels, spec_from_prefix, write_export, write_spec

MANIFEST_NAME, VERIFIED_NAME = "manifest.json", "verified.json"


@dataclass
class Archived:
    env: str
    folder: Path
    packages: int = 0
    sources: dict[str, int] = field(default_factory=dict)  # where the packages came from: how many from each
    missing: list[str] = field(default_factory=list)  # packages no source held intact, each with why
    pip_kept: list[str] = field(default_factory=list)
    pip_missing: list[str] = field(default_factory=list)  # pip distributions no wheelhouse has: name==version


def archive_dir(site: Site, installation: str, env: str) -> Path:
    return site.root / "archive" / installation / env


def verified(site: Site, installation: str, env: str) -> bool:
    """Whether `env` of `installation` has an archive that a rebuild from it alone matched."""
    return (archive_dir(site, installation, env) / VERIFIED_NAME).is_file()


def write_archive(site: Site, installation: Installation, env: str) -> Archived:
    """Archive `env` as `installation` holds it; nothing under the installation is written."""
    prefix = installation.env_prefix(env)
    if not is_environment(prefix):
        raise PrefixError(f"{prefix}: not an environment of {installation.name}; nothing to archive")
    folder = archive_dir(site, installation.name, env)
    staging = folder.with_name(f".{env}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    contents = read_prefix(prefix)
    write_export(site, staging / "environment.yml", spec_from_prefix(env, contents, site_channels(site)))
    write_spec(site, staging / "explicit.txt", explicit_text(contents))
    done = Archived(env, folder)
    records = [load_record(path) for path in sorted((prefix / "conda-meta").glob("*.json"))]
    for record in records:
        attempt = rescue(installation.path, prefix, record, staging / "channel")
        if attempt.rescued is None:
            done.missing.append(f"{attempt.dist}: {attempt.why()}")
            continue
        done.packages += 1
        done.sources[attempt.rescued.source] = done.sources.get(attempt.rescued.source, 0) + 1
    if done.packages:
        index_channel(staging / "channel")
    done.pip_kept, done.pip_missing = _wheels(site, contents.pip, staging / "pip")
    manifest = {"environment": env, "installation": installation.name, "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "records": [_identity(r) for r in records], "missing": done.missing, "pip": done.pip_kept,
                "pip_missing": done.pip_missing, "files": _digests(staging)}
    atomic.write_text(staging / MANIFEST_NAME, json.dumps(manifest, indent=1) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staging, folder)
    return done


def verify(site: Site, installation: str, env: str) -> list[str]:
    """What differs between the archive of `env` and a rebuild from it alone; [] when every record matches.
    Marks the archive verified when nothing does."""
    folder = archive_dir(site, installation, env)
    if not (folder / MANIFEST_NAME).is_file():
        raise PrefixError(f"{folder}: no archive of {env} ({installation}): `condaqa archive --env {env}` makes one")
    manifest: dict[str, Any] = read_json(folder / MANIFEST_NAME, ARCHIVE_MANIFEST, PrefixError)
    (folder / VERIFIED_NAME).unlink(missing_ok=True)
    problems = [f"{folder / name}: {what}" for name, what in _changed(folder, manifest["files"])]
    problems += [f"not in the archive: {line}" for line in manifest["missing"]]
    if problems:
        return problems
    wanted = {(r["name"], r["version"], r["build"]): r["files"] for r in manifest["records"]}
    problems = _compare(wanted, _rebuild(site, folder, env, wanted))
    if not problems:
        atomic.write_text(folder / VERIFIED_NAME, json.dumps({"verified": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                                              "records": len(wanted)}) + "\n")
    return problems


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    files = record.get("files")
    return {"name": record["name"], "version": record["version"], "build": record["build"],
            "files": sorted(f for f in files if isinstance(f, str)) if isinstance(files, list) else []}


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): file_digest(p, "sha256") for p in sorted(folder.rglob("*")) if p.is_file()}


def _changed(folder: Path, files: dict[str, str]) -> list[tuple[str, str]]:
    """The archive's files that are gone or no longer what the manifest says."""
    out = []
    for name, digest in files.items():
        path = folder / name
        if not path.is_file():
            out.append((name, "missing"))
        elif file_digest(path, "sha256") != digest:
            out.append((name, "changed since it was archived (its sha256 differs from the manifest's)"))
    return out


def _wheels(site: Site, dists: tuple[PipDistribution, ...], target: Path) -> tuple[list[str], list[str]]:
    """Copy the wheel of each pip distribution from the site's wheelhouses: (kept, missing), as name==version."""
    found: dict[tuple[str, str], Path] = {}
    for folder in _find_links(site):
        for wheel in sorted(folder.glob("*.whl")) if folder.is_dir() else ():
            with contextlib.suppress(InvalidWheelFilename):
                name, version, _, _ = parse_wheel_filename(wheel.name)
                found.setdefault((name, str(version)), wheel)
    kept, missing = [], []
    for dist in dists:
        kept_wheel = found.get((canonicalize_name(dist.name), dist.version))
        if kept_wheel is None:
            missing.append(f"{dist.name}=={dist.version}")
            continue
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(kept_wheel, target / kept_wheel.name)
        kept.append(f"{dist.name}=={dist.version}")
    return kept, missing


def _find_links(site: Site) -> list[Path]:
    """The local folders pip_args names with --find-links (or -f)."""
    options = PipOption.all_in(tuple(site.expand(a) for a in site.pip_args))
    return [path for o in options if o.name == "--find-links" and (path := local_path(o.value)) is not None]


def _rebuild(site: Site, folder: Path, env: str, wanted: dict[tuple[str, str, str], list[str]]
             ) -> dict[tuple[str, str, str], list[str]]:
    """Build the records `wanted` from the archive's channel alone into a scratch prefix; what it holds."""
    scratch = site.root / "archive" / ".verify" / env  # seen by the sandbox that compiles its bytecode
    shutil.rmtree(scratch, ignore_errors=True)
    alone = replace(site, channels=((folder / "channel").as_uri(),), rescue=False)
    plan = BuildPlan(env, tuple(f"{name} =={version} {build}" for name, version, build in sorted(wanted)))
    prefix = scratch / "envs" / env
    try:
        get_engine("rattler").create(alone, Installation("archive-verify", scratch), plan, prefix, io.StringIO())
        return {(r["name"], r["version"], r["build"]): r["files"]
                for r in map(_identity, map(load_record, sorted((prefix / "conda-meta").glob("*.json"))))}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _compare(wanted: dict[tuple[str, str, str], list[str]], rebuilt: dict[tuple[str, str, str], list[str]]
             ) -> list[str]:
    problems = [f"{'-'.join(k)}: not rebuilt" for k in sorted(set(wanted) - set(rebuilt))]
    problems += [f"{'-'.join(k)}: rebuilt, but not in the original" for k in sorted(set(rebuilt) - set(wanted))]
    for key in sorted(set(wanted) & set(rebuilt)):
        lost = sorted(set(wanted[key]) - set(rebuilt[key]))
        if lost:
            problems.append(f"{'-'.join(key)}: {len(lost)} file(s) of the original missing, first {lost[0]}")
    return problems

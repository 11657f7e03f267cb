"""ROOT/archive/<installation>/<env>/: what it takes to rebuild an environment exactly, offline, once the
channels have lost its versions.

An archive holds the environment's spec (`environment.yml`), its @EXPLICIT list (`explicit.txt`), every
conda package it holds as a local channel (`channel/`, each taken from production as rescue/sources.py
takes it: the cache file, the cache folder, else the prefix), the wheels of its pip distributions that
the site's wheelhouse (`--find-links` of pip_args) or the pip cache of condaqa's own builds of it still
has (`pip/`; the others are named in the manifest), and `manifest.json`: the records it was made from,
each pip distribution's RECORD, and the digest of every file. It is written beside its final place and
renamed into it, so a folder that is there is whole.

`verify` rebuilds the environment from the archive alone (its channel and its wheels, nothing else)
into a scratch prefix, with the site's engine, pip in the sandbox as every build's, and compares it
with the original one by one: each conda record's name, version, build and files; each pip
distribution's name, version and its RECORD's files and digests.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from condaqa import atomic
from condaqa.engines import get_engine
from condaqa.engines.rattler import index_channel
from condaqa.errors import PrefixError
from condaqa.inputs import ARCHIVE_MANIFEST, METADATA, read_json, read_text
from condaqa.plan.entries import PipOption, local_path
from condaqa.plan.model import BuildPlan
from condaqa.prefix import PipDistribution, is_environment, read_prefix, record_paths
from condaqa.replication.pip import pip_install
from condaqa.replication.replicate import pip_home
from condaqa.rescue.sources import file_digest, load_record, rescue
from condaqa.sandbox.box import sandbox_for
from condaqa.site import Installation, Site
from condaqa.spec.export import explicit_text, site_channels, spec_from_prefix, write_export, write_spec
from condaqa.vocab import Stage

Identity = tuple[str, str, str]  # a conda record's (name, version, build); a pip distribution's (PIP, name, version)
PIP = "pip's"  # no conda package name has an apostrophe
# What pip writes differently in every install of the same wheel: the installer's own files of the dist-info.
_PER_INSTALL = ("INSTALLER", "RECORD", "REQUESTED", "direct_url.json")

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
    records = _records(prefix)
    for record in records:
        attempt = rescue(installation.path, prefix, record, staging / "channel")
        if attempt.rescued is None:
            done.missing.append(f"{attempt.dist}: {attempt.why()}")
            continue
        done.packages += 1
        done.sources[attempt.rescued.source] = done.sources.get(attempt.rescued.source, 0) + 1
    if done.packages:
        index_channel(staging / "channel")
    done.pip_kept, done.pip_missing = _wheels(site, env, contents.pip, staging / "pip")
    manifest = {"environment": env, "installation": installation.name, "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "records": [_identity(r) for r in records], "missing": done.missing, "pip": done.pip_kept,
                "pip_missing": done.pip_missing, "pip_records": [_pip_identity(d) for d in contents.pip],
                "files": _digests(staging)}
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
    if "pip_records" not in manifest:
        return [f"{folder / MANIFEST_NAME}: written by a condaqa that did not keep the pip part's files; "
                f"write the archive again: condaqa archive --installation {installation} --env {env}"]
    problems = [f"{folder / name}: {what}" for name, what in _changed(folder, manifest["files"])]
    problems += [f"not in the archive: {line}" for line in manifest["missing"]]
    problems += [f"not in the archive: pip's {line} (no wheelhouse or pip cache had its wheel)"
                 for line in manifest["pip_missing"]]
    if problems:
        return problems
    wanted = {(r["name"], r["version"], r["build"]): r["files"] for r in manifest["records"]}
    wanted |= {(PIP, r["name"], r["version"]): r["files"] for r in manifest["pip_records"]}
    problems = _compare(wanted, _rebuild(site, folder, env, wanted, manifest["pip"]))
    if not problems:
        atomic.write_text(folder / VERIFIED_NAME, json.dumps({"verified": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                                              "records": len(wanted)}) + "\n")
    return problems


def _records(prefix: Path) -> list[dict[str, Any]]:
    return [load_record(path) for path in record_paths(prefix)]


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    files = record.get("files")
    return {"name": record["name"], "version": record["version"], "build": record["build"],
            "files": sorted(f for f in files if isinstance(f, str)) if isinstance(files, list) else []}


def _pip_identity(dist: PipDistribution) -> dict[str, Any]:
    """A pip distribution as its RECORD has it: each file of site-packages with its digest; a file outside
    (a script whose first line names the prefix) by its path alone."""
    record = dist.anchor / "RECORD"
    rows: Iterable[list[str]] = csv.reader(io.StringIO(read_text(record, METADATA, PrefixError))) \
        if record.is_file() else []
    files = []
    for path, digest, *_ in (row for row in rows if len(row) >= 2):
        if "__pycache__/" in path or path.endswith(".pyc") or path.rsplit("/", 1)[-1] in _PER_INSTALL:
            continue
        files.append(path if path.startswith("../") or not digest else f"{path} {digest}")
    return {"name": canonicalize_name(dist.name), "version": dist.version, "files": sorted(files)}


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


def _wheels(site: Site, env: str, dists: tuple[PipDistribution, ...], target: Path
            ) -> tuple[list[str], list[str]]:
    """Copy the wheel of each pip distribution from the site's wheelhouses, else from the pip cache of condaqa's
    own builds of `env` (a wheel pip built from a git commit or an sdist): (kept, missing), as name==version."""
    found: dict[tuple[str, str], Path] = {}
    for wheel in _wheel_files(site, env):
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


def _wheel_files(site: Site, env: str) -> list[Path]:
    """The wheels of the local folders pip_args names with --find-links (or -f), then of the pip caches of
    condaqa's builds of `env` in every installation (replication/replicate.py pip_home)."""
    options = PipOption.all_in(tuple(site.expand(a) for a in site.pip_args))
    folders = [path for o in options if o.name == "--find-links" and (path := local_path(o.value)) is not None]
    wheels = [wheel for folder in folders if folder.is_dir() for wheel in sorted(folder.glob("*.whl"))]
    homes = site.state_dir / "home"
    caches = [pip_home(site, home.name, env) / ".cache" / "pip" / "wheels"
              for home in (sorted(homes.iterdir()) if homes.is_dir() else [])]
    return wheels + [wheel for cache in caches for wheel in sorted(cache.rglob("*.whl"))]


def _rebuild(site: Site, folder: Path, env: str, wanted: dict[Identity, list[str]], wheels: list[str]
             ) -> dict[Identity, list[str]]:
    """Build the conda records `wanted` from the archive's channel alone into a scratch prefix with the site's
    engine (the conda engine: qa's conda), then its wheels with pip in the sandbox; what it holds."""
    scratch = site.root / "archive" / ".verify" / env  # seen by the sandbox that compiles bytecode and runs pip
    shutil.rmtree(scratch, ignore_errors=True)
    alone = replace(site, channels=((folder / "channel").as_uri(),), rescue=False)
    conda = sorted(k for k in wanted if k[0] != PIP)
    plan = BuildPlan(env, tuple(f"{name} =={version} {build}" for name, version, build in conda))
    prefix, log = scratch / "envs" / env, io.StringIO()
    engine = get_engine(site.engine)
    installation = site.qa_installation() if site.engine == "conda" else Installation("archive-verify", scratch)
    try:
        engine.create(alone, installation, plan, prefix, log)
        if wheels:
            args = ("--no-index", "--find-links", str(folder / "pip"), "--no-deps", "--force-reinstall")
            pip_install(sandbox_for(site), env, prefix / "bin" / "python", wheels, args, log, Stage.PIP,
                        scratch / "home")
        rebuilt = {(r["name"], r["version"], r["build"]): r["files"] for r in map(_identity, _records(prefix))}
        pip = map(_pip_identity, read_prefix(prefix).pip)
        return rebuilt | {(PIP, d["name"], d["version"]): d["files"] for d in pip}
    finally:
        engine.forget(site, installation, prefix)
        shutil.rmtree(scratch, ignore_errors=True)


def _compare(wanted: dict[Identity, list[str]], rebuilt: dict[Identity, list[str]]) -> list[str]:
    problems = [f"{_label(k)}: not rebuilt" for k in sorted(set(wanted) - set(rebuilt))]
    problems += [f"{_label(k)}: rebuilt, but not in the original" for k in sorted(set(rebuilt) - set(wanted))]
    for key in sorted(set(wanted) & set(rebuilt)):
        lost = sorted(set(wanted[key]) - set(rebuilt[key]))
        if lost:
            problems.append(f"{_label(key)}: {len(lost)} file(s) of the original missing or different, "
                            f"first {lost[0]}")
    return problems


def _label(key: Identity) -> str:
    return f"{PIP} {key[1]}=={key[2]}" if key[0] == PIP else "-".join(key)

"""Conda packages made from condaqa's own installed Python distributions.

The demo's Jupyter kernel environments need a real `ipykernel` and everything it imports.
condaqa depends on ipykernel, so that closure is already installed in the interpreter that
runs condaqa: this module turns each of those installed distributions back into a conda
package, as conda-forge would publish it, so the demo site needs nothing from outside (no
network, no wheel cache). Pure-Python distributions become `noarch: python` packages;
distributions with compiled extensions become packages for the running platform that pin
the running interpreter's minor version, which is what the demo's `python` package is.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import posixpath
import re
import sys
import sysconfig
from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from condaqa.demo.packages import TRAMPOLINE, Package, console_script, write_package
from condaqa.errors import SiteError
from condaqa.rescue.repack import Member

# pip's own bookkeeping: INSTALLER and REQUESTED say "pip put this here", and a
# direct_url.json would make the environment look pip-installed from a URL. RECORD is
# written anew to list the files the package really holds.
_PIP_MARKERS = frozenset({"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"})
_COMPILED = re.compile(r"\.(so|pyd|dylib)(\.[0-9]+)*$")
_SCRIPT_GROUPS = ("console_scripts", "gui_scripts")
# A relocatable header: sh finds the environment's python next to the script, Python reads
# the sh lines as a string. It needs no prefix rewriting, so write_package can carry it.


def conda_name(name: str) -> str:
    """The conda-forge spelling of a Python distribution name (`Jupyter_Core` -> `jupyter-core`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(names: Iterable[str], leave_out: Iterable[str] = ()) -> list[metadata.Distribution]:
    """The installed distributions that `names` need, each once, sorted by conda name.

    Requirements are followed as pip would for this interpreter: markers are evaluated
    here and extras are not followed, so the kernel channel holds what `import ipykernel`
    really uses and nothing a test or docs extra would pull in. `leave_out` names
    requirements not followed (and not depended on): dependencies a kernel only imports
    when it has them.
    """
    skipped = {conda_name(n) for n in leave_out}
    found: dict[str, metadata.Distribution] = {}
    todo: list[tuple[str, str | None]] = [(name, None) for name in names]
    while todo:
        name, wanted_by = todo.pop()
        if conda_name(name) in found:
            continue
        dist = _installed(name, wanted_by)
        found[conda_name(name)] = dist
        todo.extend((req, dist.metadata["Name"]) for req in _requirements(dist, skipped))
    return [found[key] for key in sorted(found)]


def distribution_package(dist: metadata.Distribution, subdir: str, leave_out: Iterable[str] = ()) -> Package:
    """One conda package holding an installed distribution's files, as conda-forge lays them out.

    Only the files its RECORD lists are taken; bytecode is left out (it belongs to one
    interpreter: conda compiles it when linking, py-rattler 0.28 leaves it to Python's first
    import) and console scripts become noarch entry points, or
    relocatable scripts in a binary package, because the installed ones name this
    interpreter in their shebang.
    """
    name = dist.metadata["Name"]
    _refuse_development_install(dist)
    version = _conda_version(name, dist.version)
    site = Path(str(dist.locate_file("")))
    files = dist.files or []
    noarch = _is_pure(dist, files)
    short = f"{sys.version_info[0]}.{sys.version_info[1]}"
    site_packages = "site-packages" if noarch else f"lib/python{short}/site-packages"
    prefix = _install_prefix(site)
    scripts = _scripts(dist)
    out: list[Member] = []
    here, root = str(site) + os.sep, str(prefix) + os.sep if prefix is not None else None
    for entry in files:
        rel = str(entry)
        if "__pycache__" in entry.parts or rel.endswith((".pyc", ".pyo")):
            continue
        if len(entry.parts) == 2 and entry.parts[0].endswith(".dist-info") and entry.name in _PIP_MARKERS:
            continue
        source = os.path.normpath(os.path.join(here, rel))
        if source.startswith(here):
            target = f"{site_packages}/{source[len(here):]}".replace(os.sep, "/")
        elif root is not None and source.startswith(root):
            target = source[len(root) :].replace(os.sep, "/")
        else:
            raise SiteError(f"{name} {dist.version}: {rel} lies outside the environment it was installed into")
        try:
            with open(source, "rb") as handle:
                data = handle.read()
                executable = bool(os.fstat(handle.fileno()).st_mode & 0o111)
        except OSError as exc:
            raise SiteError(f"{name} {dist.version}: {rel} is listed in its RECORD but cannot be read: {exc}") from None
        if target.startswith("bin/"):
            if target.removeprefix("bin/") in scripts:
                continue  # made from the entry point below, for this package's environment
            data = _relocatable(data)
            if noarch:
                target = "python-scripts/" + target.removeprefix("bin/")  # rattler links it to bin/
        out.append(Member(target, data, executable=executable))
    entry_points: list[str] = []
    if noarch:
        entry_points = [f"{script} = {target}" for script, target in sorted(scripts.items())]
    else:
        out.extend(Member(f"bin/{s}", console_script(t), executable=True) for s, t in sorted(scripts.items()))
    out.append(_record(_info_dir(name, dist.version, files), out, site_packages))
    upper = f"{sys.version_info[0]}.{sys.version_info[1] + 1}"
    depends = ["python" if noarch else f"python >={short},<{upper}"]
    for req in _requirements(dist, {conda_name(n) for n in leave_out}):
        dep = conda_name(_installed(req, name).metadata["Name"])
        if dep not in depends and dep != conda_name(name):
            depends.append(dep)
    return Package(
        conda_name(name),
        version,
        "pyh_0" if noarch else f"py{short.replace('.', '')}_0",
        "noarch" if noarch else subdir,
        depends=depends,
        files=out,
        noarch_python=noarch,
        entry_points=entry_points,
    )


def write_kernel_channel(channel: Path, subdir: str, names: Iterable[str] = ("ipykernel",),
                         leave_out: Iterable[str] = ()) -> list[Path]:
    """Write a conda package for each distribution of `names`' closure into `channel`.

    Compression dominates and bz2 releases the GIL, so packages are written on a few
    threads, largest first, to keep this cheap enough for every demo build.
    """
    leave_out = tuple(leave_out)
    packages = [distribution_package(dist, subdir, leave_out) for dist in closure(names, leave_out)]
    packages.sort(key=lambda p: -sum(len(f.data) for f in p.files))
    for folder in ("noarch", subdir):
        (channel / folder).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        written = list(pool.map(lambda pkg: write_package(channel, pkg), packages))
    return sorted(written)


def _installed(name: str, wanted_by: str | None) -> metadata.Distribution:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        by = f" (required by {wanted_by})" if wanted_by else ""
        raise SiteError(
            f"the Python distribution {name}{by} is not installed in {sys.prefix}; the demo's kernel packages "
            "are made from condaqa's own installation: install condaqa with its demo extra, "
            "pip install 'condaqa[demo]'"
        ) from None


def _requirements(dist: metadata.Distribution, leave_out: Collection[str] = ()) -> list[str]:
    """Names of the requirements that apply to this interpreter, extras and `leave_out` not followed."""
    names: list[str] = []
    for text in dist.requires or []:
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            raise SiteError(f"{dist.metadata['Name']} {dist.version}: unreadable requirement {text!r}: {exc}") from None
        if (req.marker is None or req.marker.evaluate({"extra": ""})) and conda_name(req.name) not in leave_out:
            names.append(req.name)
    return names


def _refuse_development_install(dist: metadata.Distribution) -> None:
    """An editable install holds a pointer to a work tree, not the files a package needs."""
    name = dist.metadata["Name"]
    direct = dist.read_text("direct_url.json")
    if direct:
        try:
            info = json.loads(direct)
        except ValueError:
            info = {}
        if isinstance(info, dict) and info.get("dir_info", {}).get("editable"):
            raise SiteError(
                f"{name} {dist.version} is installed in editable mode from {info.get('url', 'a work tree')}; "
                "it cannot be packaged: install it normally (pip install, no -e)"
            )
    if dist.read_text("RECORD") is None and dist.read_text("installed-files.txt") is None:
        raise SiteError(
            f"{name} {dist.version} has no RECORD (installed in development mode, or its metadata is "
            f"read from a source tree at {dist.locate_file('')}); it cannot be packaged"
        )


def _conda_version(name: str, version: str) -> str:
    import rattler  # only its version parser: no async call, so no runtime threads in this process

    try:
        rattler.Version(version)
    except Exception as exc:  # py-rattler raises its own InvalidVersionError
        raise SiteError(f"{name}'s version {version!r} is not a valid conda version: {exc}") from None
    if "-" in version:  # the archive name is name-version-build: a dash would split it wrongly
        raise SiteError(f"{name}'s version {version!r} is not a valid conda version: it contains '-'")
    return version


def _is_pure(dist: metadata.Distribution, files: list[metadata.PackagePath]) -> bool:
    wheel = dist.read_text("WHEEL") or ""
    purelib = re.search(r"^Root-Is-Purelib:\s*(\S+)", wheel, re.MULTILINE | re.IGNORECASE)
    if purelib is not None and purelib.group(1).lower() != "true":
        return False
    return not any(_COMPILED.search(entry.name) for entry in files)


def _install_prefix(site: Path) -> Path | None:
    """The prefix whose data files (share/, bin/) RECORD names as ../../../x, from sysconfig."""
    for scheme in sysconfig.get_scheme_names():
        try:
            paths = sysconfig.get_paths(scheme)
        except KeyError:
            continue
        if site in (Path(paths["purelib"]), Path(paths["platlib"])):
            return Path(paths["data"])
    if site.parent.name.startswith("python") and site.parent.parent.name in ("lib", "lib64"):
        return site.parents[2]
    return None


def _scripts(dist: metadata.Distribution) -> dict[str, str]:
    """Console and GUI scripts as `module:function`, extras dropped."""
    return {
        ep.name: f"{ep.module}:{ep.attr}"
        for ep in dist.entry_points
        if ep.group in _SCRIPT_GROUPS and ep.attr
    }


def _relocatable(data: bytes) -> bytes:
    """Swap a python shebang that names this interpreter for the relocatable header."""
    lines = data.split(b"\n")
    if lines[0].startswith(b"#!/bin/sh") and len(lines) > 2 and lines[1].startswith(b"'''exec'"):
        return TRAMPOLINE.encode() + b"\n".join(lines[3:])
    if lines[0].startswith(b"#!") and b"python" in lines[0]:
        return TRAMPOLINE.encode() + b"\n".join(lines[1:])
    return data


def _info_dir(name: str, version: str, files: list[metadata.PackagePath]) -> str:
    for entry in files:
        if len(entry.parts) == 2 and entry.parts[0].endswith(".dist-info"):
            return entry.parts[0]
    return f"{re.sub(r'[-_.]+', '_', name)}-{version}.dist-info"


def _record(info: str, files: list[Member], site_packages: str) -> Member:
    """The dist-info RECORD of what the package holds, paths relative to site-packages as pip writes them."""
    installed_site = "lib/pythonX.Y/site-packages"
    lines = []
    for f in files:
        path = "bin/" + f.path.removeprefix("python-scripts/") if f.path.startswith("python-scripts/") else f.path
        if path.startswith(site_packages + "/"):
            rel = path[len(site_packages) + 1 :]
        else:
            rel = posixpath.relpath(path, installed_site)
        digest = base64.urlsafe_b64encode(hashlib.sha256(f.data).digest()).rstrip(b"=").decode()
        lines.append(f"{rel},sha256={digest},{len(f.data)}")
    lines.append(f"{info}/RECORD,,")
    return Member(f"{site_packages}/{info}/RECORD", ("\n".join(lines) + "\n").encode())

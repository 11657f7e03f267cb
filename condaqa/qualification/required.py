"""The checks an environment must pass, and the signature of what each one depends on.

Required checks come from the manifest, env_checks/ and the kernel specs, exactly as the
pytest plugin parametrizes its tests (it asks `required_checks`). Each has a signature that
changes whenever what it runs changes: an owner check's whole folder, a kernel spec's exact
content (as the cutover to the installation judged will leave it), the manifest's `imports`.
An environment's manifest line and environments.toml entry have a digest of their own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import astuple, replace
from pathlib import Path
from typing import NamedTuple

from condaqa.checks.owner import check_id, owner_checks, signature
from condaqa.errors import ConfigError, SiteError
from condaqa.kernels.specs import Kernel, load_kernel_json, rewritten
from condaqa.manifest import Environment
from condaqa.site import Site

BUILD, VERSIONS, IMPORTS, EXPORT = "build", "versions", "imports", "export"
OWNER, KERNEL = "owner:", "kernel:"


class CheckId(NamedTuple):
    """A required check's id as results store it ("versions", "owner:hlink/check_x.py", "kernel:hlink"):
    its kind, and for an owner check or a kernel what it runs (the check's path under env_checks/, the
    kernel spec's folder). Made and read only here."""

    kind: str
    target: str = ""

    @classmethod
    def parse(cls, text: str) -> CheckId:
        kind = next((k for k in (OWNER, KERNEL) if text.startswith(k)), text)
        return cls(kind, text.removeprefix(kind) if kind != text else "")

    def __str__(self) -> str:
        return self.kind + self.target


def owner_check(check: Path) -> str:
    return str(CheckId(OWNER, check_id(check)))


def kernel_check(kernel: Kernel) -> str:
    return str(CheckId(KERNEL, kernel.folder))


def kernels_of(env: Environment, kernels: Sequence[Kernel]) -> list[Kernel]:
    """The kernel specs that run `env`: the python their argv names lives in its prefix (through any link)."""
    return [k for k in kernels if k.environment == env.name]


def required_checks(site: Site, env: Environment, kernels: Sequence[Kernel], installation: str) -> dict[str, str]:
    """check id -> signature (which changes when what the check runs changes), for `env` in `installation`."""
    if not env.replicate:
        return {EXPORT: ""}
    required = {BUILD: "", VERSIONS: "", IMPORTS: _digest(repr(env.imports))}
    for check in owner_checks(site, env.name):
        required[owner_check(check)] = signature(check)
    for kernel in kernels_of(env, kernels):
        required[kernel_check(kernel)] = kernel_signature(site, kernel, installation)
    return required


def kernel_signature(site: Site, kernel: Kernel, installation: str) -> str:
    """The spec's exact content as the cutover to `installation` leaves it: the same before that cutover,
    after it and after its rollback, and different after any other edit."""
    try:
        spec = load_kernel_json(kernel.spec_file)
    except ConfigError:
        return "unreadable"
    try:
        current = site.current_installation().path
    except SiteError:
        current = None
    if current is not None:
        spec = rewritten(spec, current, site.root / installation)
    return _digest(json.dumps(spec, sort_keys=True))


def entry_digest(env: Environment) -> str:
    """What the manifest says of `env` (environments.ini and environments.toml), where it says it and its
    waiver left out: a waiver is a decision about a result, and changes none."""
    return _digest(repr(astuple(replace(env, line=0, where="", waiver=None))))


def check_manifest(manifest: Sequence[Environment], kernels: Sequence[Kernel]) -> None:
    """environments.toml's `kernel = NAME` must name a kernel spec that runs that environment."""
    by_name = {k.name: k for k in kernels}
    for env in manifest:
        if not env.kernel:
            continue
        kernel = by_name.get(env.kernel.lower())
        where = env.where or f"environments.toml [{env.name}]"
        if kernel is None:
            known = ", ".join(sorted(by_name)) or "none"
            raise ConfigError(f"{where}: [{env.name}] kernel = {env.kernel[:80]!r} names no kernel spec of the site "
                              f"(known: {known})")
        if kernel.environment != env.name:
            raise ConfigError(f"{where}: [{env.name}] kernel = {env.kernel!r}, but {kernel.spec_file} runs "
                              f"{kernel.environment or kernel.interpreter}")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

"""The cutover gate: what must be true of an installation before `current` may point to it.

It reads only the library's facts and covers everything the cutover changes:
- every environment of current is in the manifest (one that is not would vanish from
  `current/envs` unannounced), and every REPLICATE one has the verdict `passed`
  (qualification/verdict.py);
- every kernel spec of the kernels folder was started for real: it names the python of a
  REPLICATE environment (as its first word, or inside a shell command), or site.toml's
  `unqualified_kernels` lists it as one the site accepts untested;
- no qualification of it runs now, on any host (a shard's lock card says where; locks.py);
- no two kernels take one name (Jupyter lowercases folder names: HLINK and hlink collide), and
  no name notebooks use changes, vanishes or collides after the cutover (kernels/names.py).
Anything else is a reason, in words, naming the environment or the kernel. A `failed` environment
whose waiver in environments.toml covers its failure today (qualification/waivers.py) passes,
and is named among the waived.
(switch.py adds readiness.py's readability problems.)
"""

from __future__ import annotations

from dataclasses import dataclass

from condaqa import locks
from condaqa.kernels import names
from condaqa.kernels.specs import Kernel, find_kernels
from condaqa.manifest import Environment, site_manifest
from condaqa.qualification.required import check_manifest, kernels_of
from condaqa.qualification.verdict import standing
from condaqa.qualification.waivers import judge
from condaqa.site import Site
from condaqa.vocab import Verdict


@dataclass(frozen=True)
class Gate:
    problems: list[str]  # why the installation may not become current: empty when it may
    waived: list[str]  # failures a waiver lets through, in words


def gate(site: Site, installation: str) -> Gate:
    """Why `installation` may not become current, one line per environment or kernel, and what is waived."""
    manifest = site_manifest(site)
    kernels = find_kernels(site)
    check_manifest(manifest, kernels)
    problems = [f"{installation}: being qualified by {who}" for who in locks.qualifications(site, installation)]
    problems += _unlisted(site, manifest) + _kernel_problems(site, manifest, kernels)
    waived: list[str] = []
    for env in manifest:
        if not env.replicate:
            continue
        found = standing(site, installation, env, kernels)
        if found.verdict is Verdict.PASSED:
            continue
        waiver = judge(env, found)
        if waiver is not None and waiver.covers:
            waived.append(f"{env.name}: {found.verdict} [{found.category}] {waiver.words}")
            continue
        runs = [k.name for k in kernels_of(env, kernels)]
        note = f" (runs kernel {', '.join(runs)})" if runs else ""
        said = f"; {waiver.words}" if waiver is not None else ""
        problems.append(f"{env.name}: {found.verdict}: {found.reason}{note}{said}")
    problems += _collisions(kernels) + names.continuity(site, site.installation(installation), kernels)
    return Gate(problems, waived)


def _collisions(kernels: list[Kernel]) -> list[str]:
    """Kernel specs whose folders Jupyter reads as one name: it shows one of them, and the cutover rewrites both."""
    by_name: dict[str, list[Kernel]] = {}
    for kernel in kernels:
        by_name.setdefault(kernel.name, []).append(kernel)
    return [f"kernel name {name}: {', '.join(str(k.spec_file) for k in taken)} all take it (Jupyter lowercases "
            "folder names); Jupyter shows only one of them"
            for name, taken in sorted(by_name.items()) if len(taken) > 1]


def _unlisted(site: Site, manifest: list[Environment]) -> list[str]:
    listed = {e.name for e in manifest}
    missing = [env for env in site.current_installation().environments() if env not in listed]
    return [f"{env}: in {site.current_link}/envs but not in {site.manifest}: mark it REPLICATE or export, or it "
            "vanishes from current at the cutover unannounced" for env in missing]


def _kernel_problems(site: Site, manifest: list[Environment], kernels: list[Kernel]) -> list[str]:
    by_name = {e.name: e for e in manifest}
    problems = []
    for kernel in kernels:
        env = by_name.get(kernel.environment)
        if not kernel.environment:
            if kernel.name not in site.unqualified_kernels:
                problems.append(f"kernel {kernel.folder} ({kernel.spec_file}): its argv names no environment's "
                                "python, so no qualification can start it as the cutover leaves it; list it in "
                                f"{site.file} unqualified_kernels to cut over without that")
        elif env is None:
            problems.append(f"{kernel.environment}: kernel {kernel.folder} runs it, but the manifest does not list it")
        elif not env.replicate:
            problems.append(f"{env.name}: export-only, but kernel {kernel.folder} runs it; mark it REPLICATE")
    return problems

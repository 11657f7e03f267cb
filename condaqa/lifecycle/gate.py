"""The cutover gate: what must be true of an installation before `current` may point to it.

It reads only the library's facts: the verdict of each REPLICATE environment and of each
environment a kernel spec runs (qualification.py), and the kernel names Jupyter would show
after the cutover (kernels/names.py: a name notebooks use that changes, vanishes or collides).
Anything but `passed` is a reason, in words, naming the environment or the kernel name.
(switch.py adds readiness.py's readability problems.)
"""

from __future__ import annotations

from condaqa import qualification
from condaqa.kernels import names
from condaqa.kernels.specs import find_kernels
from condaqa.manifest import load_manifest
from condaqa.site import Site
from condaqa.vocab import Verdict


def gate(site: Site, installation: str) -> list[str]:
    """Why `installation` may not become current: one line per environment or kernel name, empty when it may."""
    manifest = load_manifest(site.manifest)
    kernels = find_kernels(site)
    qualification.check_manifest(manifest, kernels)
    by_name = {e.name: e for e in manifest}
    problems = []
    for kernel in kernels:
        env = by_name.get(kernel.environment)
        if kernel.environment and env is None:
            problems.append(f"{kernel.environment}: kernel {kernel.name} runs it, but the manifest does not list it")
        elif env is not None and not env.replicate:
            problems.append(f"{env.name}: export-only, but kernel {kernel.name} runs it; mark it REPLICATE")
    for env in manifest:
        if not env.replicate:
            continue
        found = qualification.standing(site, installation, env, kernels)
        if found.verdict is not Verdict.PASSED:
            runs = [k.name for k in qualification.kernels_of(env, kernels)]
            note = f" (runs kernel {', '.join(runs)})" if runs else ""
            problems.append(f"{env.name}: {found.verdict}: {found.reason}{note}")
    return problems + names.continuity(site, site.installation(installation), kernels)


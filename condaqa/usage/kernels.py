"""Jupyter kernels that run an environment: kernel processes running now, and the site's kernel specs naming it.

A kernel process is a process started as ipykernel is (`-m ipykernel_launcher` or `ipykernel`, with
`-f` and a connection file); the spec it came from is the one whose python its command line starts.
A spec says a hub offers the environment, not that anyone starts it: it is evidence of a weaker kind.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from condaqa.kernels.specs import Kernel
from condaqa.site import Site
from condaqa.usage.processes import Process

_LAUNCHERS = ("ipykernel_launcher", "ipykernel", "ipykernel.kernelapp")


@dataclass(frozen=True)
class KernelSpecFact:
    env: str
    kernel: str
    spec_file: str
    modified: float


def is_kernel(process: Process) -> bool:
    argv = process.argv
    launched = any(argv[i] == "-m" and argv[i + 1] in _LAUNCHERS for i in range(len(argv) - 1))
    return launched or any(os.path.basename(w) == "ipykernel_launcher.py" for w in argv)


def spec_of(process: Process, kernels: Sequence[Kernel]) -> str:
    """The name of the spec whose python this kernel process starts, or "" when none of the site's does."""
    if not process.argv:
        return ""
    started = os.path.realpath(os.path.dirname(process.argv[0]))
    for kernel in kernels:
        if os.path.realpath(os.path.dirname(kernel.interpreter)) == started:
            return kernel.name
    return ""


def spec_facts(site: Site, kernels: Sequence[Kernel]) -> list[KernelSpecFact]:
    """The site's kernel specs that run an environment of current (through `current`, `envs` or its folder)."""
    live = {site.current_name, site.link_target(site.current_name) or "", "envs"}
    facts = []
    for kernel in kernels:
        if kernel.environment and kernel.installation in live:
            try:
                modified = kernel.spec_file.stat().st_mtime
            except OSError:
                modified = 0.0
            facts.append(KernelSpecFact(kernel.environment, kernel.name, str(kernel.spec_file), modified))
    return facts

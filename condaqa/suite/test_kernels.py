"""Every kernel that runs a REPLICATE environment starts and runs code in qa before the cutover.

Each kernel is started with jupyter_client as JupyterLab starts it, from the spec the cutover
will leave behind (versioned paths and `current` moved to qa's installation); it must answer
`kernel_info`, import the environment's key modules and report qa's environment as sys.prefix.
A kernel that fails the same way from current's spec is already broken, not a regression.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

from condaqa import triage
from condaqa.harness import STARTED_IN_CURRENT_KEY, Replicated, key_modules_or_fail
from condaqa.kernels.launch import after_cutover, start
from condaqa.kernels.specs import Kernel
from condaqa.qualification.required import KERNEL, CheckId
from condaqa.sandbox.box import Sandbox
from condaqa.site import Site

Fail = Callable[[triage.Triage], NoReturn]


@pytest.fixture
def kernel(kernels: list[Kernel], condaqa_check_id: str) -> Kernel:
    return {k.folder: k for k in kernels}[CheckId.parse(condaqa_check_id).target]


@pytest.mark.condaqa_requires(KERNEL)
def test_kernel_starts(replicated_env: Replicated, kernel: Kernel, site: Site, sandbox: Sandbox,
                       fail_triaged: Fail, request: pytest.FixtureRequest) -> None:
    """The kernel starts as the cutover will leave it, imports the key modules and runs in qa's environment;
    current's spec is started too, the baseline that tells a regression from old breakage."""
    replicated_env.require_built()
    env, expected = replicated_env.env, str(replicated_env.prefix)
    modules = key_modules_or_fail(sandbox, env, fail_triaged)
    argv, variables = after_cutover(site, kernel)
    qa = start(sandbox, env.name, kernel, argv, variables, modules, env.timeout,
               python=replicated_env.prefix / "bin" / "python")
    baseline = start(sandbox, env.name, kernel, kernel.argv, kernel.env, modules, env.timeout,
                     python=Path(kernel.python))
    request.node.stash[STARTED_IN_CURRENT_KEY] = baseline.ok
    if qa.ok and os.path.realpath(qa.prefix) == os.path.realpath(expected):
        return
    fail_triaged(triage.classify_kernel(env, qa, baseline, expected))

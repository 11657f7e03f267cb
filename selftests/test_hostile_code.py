"""Foreign code runs unprivileged and changes nothing outside its scratch folder, whatever it tries
(issue #18, cases 1, 2, 3 and 6): each hostile kernel spec, owner check or environment is qualified by
the real plugin, as users run it, and what it tried to change is looked at afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fixture_sites import write_project

from condaqa.site import Site

HELPERS = ("unshare", "bwrap", "setpriv", "sh", "env", "chroot", "mount")
PRELOAD = r"""#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void planted(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/preload-uid-%d", OUTSIDE, (int) getuid());
    FILE *f = fopen(path, "w");
    if (f) fclose(f);
}
"""


def qualify(pytester: pytest.Pytester, site: Site, *args: str) -> pytest.RunResult:
    write_project(pytester.path, site.root)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "0", *args)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the site that anyone may write: what hostile code would like to write to."""
    folder = tmp_path / "outside"
    folder.mkdir()
    folder.chmod(0o777)
    return folder


def _kernel_env(site: Site, name: str, value: str) -> None:
    spec = site.kernels_dir / "hlink" / "kernel.json"
    spec.write_text(spec.read_text().replace('"env": {', f'"env": {{\n  "{name}": "{value}",', 1))


def test_a_kernel_specs_path_does_not_choose_the_tools_that_start_the_sandbox(
        pytester: pytest.Pytester, kernel_site: Site, outside: Path) -> None:
    """Case 1: the hlink spec puts its environment's bin/ first on PATH; tools named like the sandbox's
    helpers planted there never run (before the fix, `unshare` from there ran as root)."""
    bin_dir = kernel_site.root / "v4.3" / "envs" / "hlink" / "bin"
    assert f'"PATH": "{bin_dir}:' in (kernel_site.kernels_dir / "hlink" / "kernel.json").read_text()
    for tool in HELPERS:
        real = shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")
        (bin_dir / tool).write_text(f'#!/bin/sh\nid -u > {outside}/{tool}-ran-as\nexec {real} "$@"\n')
        (bin_dir / tool).chmod(0o755)
    result = qualify(pytester, kernel_site, "-k", "hlink")
    assert result.ret == 0, result.stdout.str()
    assert sorted(p.name for p in outside.iterdir()) == []


def test_a_kernel_specs_ld_preload_reaches_only_the_kernel(
        pytester: pytest.Pytester, kernel_site: Site, outside: Path, tmp_path: Path) -> None:
    """Case 2: LD_PRELOAD in a spec's env names a library of the environment; it may load into the kernel,
    unprivileged and sandboxed, never into a helper that runs as root (before the fix, into `unshare`)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the planted library")
    source = tmp_path / "planted.c"
    source.write_text(PRELOAD.replace("OUTSIDE", f'"{outside}"'))
    library = kernel_site.root / "v4.3" / "envs" / "hlink" / "lib" / "libplanted.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    _kernel_env(kernel_site, "LD_PRELOAD", str(library))
    result = qualify(pytester, kernel_site, "-k", "hlink")
    assert result.ret == 0, result.stdout.str()
    assert sorted(p.name for p in outside.iterdir()) == []


REMOUNT = """import os, pathlib, subprocess
root = pathlib.Path(os.environ["CONDAQA_ENV_PREFIX"]).parents[2]
subprocess.run(["mount", "-o", "remount,rw,bind", str(root)])
try:
    (root / "written-by-a-check").write_text("the site is ours")
except OSError as exc:
    print("could not write:", exc)
"""


def test_an_owner_check_cannot_make_the_site_writable_again(pytester: pytest.Pytester, demo_site: Site) -> None:
    """Case 3: a check that remounts the site read-write and writes into it (before the fix, as root in a
    mount namespace, it could)."""
    write_project(pytester.path, demo_site.root)
    (pytester.path / "env_checks" / "survey_weights" / "check_remount.py").write_text(REMOUNT)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "0", "-k", "survey_weights")
    assert result.ret == 0, result.stdout.str()  # every check ran and passed, the remounting one too
    assert not (demo_site.root / "written-by-a-check").exists()


@pytest.mark.parametrize("sandbox", ["default", "none"])
def test_a_current_environment_linked_outside_the_site_is_not_changed_unnoticed(
        pytester: pytest.Pytester, kernel_site: Site, outside: Path, monkeypatch: pytest.MonkeyPatch,
        sandbox: str) -> None:
    """Case 6: current's survey_weights is a link to a folder outside the site, and a .pth file in it appends
    to one of its modules whenever its python starts. In the sandbox the write fails; where no sandbox works
    it happens, deep in the environment, and fails the environment as current-changed."""
    if sandbox == "none":
        monkeypatch.setenv("CONDAQA_SANDBOX", "none")
        monkeypatch.setenv("CONDAQA_FENCE", "detect")  # what condaqa before the sandbox called it
    envs = kernel_site.root / "v4.3" / "envs"
    moved = outside / "survey_weights"
    os.rename(envs / "survey_weights", moved)
    os.symlink(moved, envs / "survey_weights")
    module = next(moved.glob("lib/python*/site-packages/tabular/__init__.py"))
    shutil.copy2(module, module.with_name("copy"))
    os.replace(module.with_name("copy"), module)  # its own file, not a hard link into the demo as built
    before = module.read_bytes()
    (module.parent.parent / "zz_planted.pth").write_text(
        f"import pathlib; pathlib.Path({str(module)!r}).open('a').write('# changed by a .pth\\n')\n")
    result = qualify(pytester, kernel_site, "-k", "survey_weights")
    if sandbox == "default":
        assert result.ret == 0, result.stdout.str()
        assert module.read_bytes() == before
    else:
        assert result.ret == 1
        result.stdout.fnmatch_lines(["*[[]current-changed[]]*"])
        assert "tabular/__init__.py changed while" in result.stdout.str()

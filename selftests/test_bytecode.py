"""Bytecode of noarch:python packages: compiled in the sandbox, in chunks, once per interpreter build and
package, and linked into every environment whose sources are the same files (engines/bytecode.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_sites import make_site

from condaqa import proc
from condaqa.engines import bytecode, records
from condaqa.sandbox.box import NONE, sandbox_for
from condaqa.site import Site

SITE_PACKAGES = "lib/python3/site-packages"


def package_files(store: Path, count: int) -> list[str]:
    """`count` modules of one package, as py-rattler's cache holds them: each env links these files."""
    sources = [f"{SITE_PACKAGES}/pkg/mod_{i}.py" for i in range(count)]
    for i, source in enumerate(sources):
        (store / source).parent.mkdir(parents=True, exist_ok=True)
        (store / source).write_text(f"X = {i}\n")
    return sources


def environment(site: Site, name: str, store: Path, sources: list[str], *, copy: bool = False) -> Path:
    """An environment of qa holding the package's files (hard links of the store's, or copies) and its
    records: the python it runs (the one running these tests) and the package."""
    prefix = site.qa_installation().path / "envs" / name
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "python").symlink_to(os.path.realpath(sys.executable))
    for source in sources:
        (prefix / source).parent.mkdir(parents=True, exist_ok=True)
        if copy:
            (prefix / source).write_bytes((store / source).read_bytes())
        else:
            os.link(store / source, prefix / source)
    meta = prefix / "conda-meta"
    meta.mkdir()
    (meta / "python-3.11.0-0.json").write_text(json.dumps({"name": "python", "version": "3.11.0", "build": "0",
                                                          "sha256": "a" * 64, "files": []}))
    (meta / "pkg-1.0-py_0.json").write_text(json.dumps({"name": "pkg", "version": "1.0", "build": "py_0",
                                                        "noarch": "python", "sha256": "b" * 64, "files": sources}))
    return prefix


def finish(site: Site, prefix: Path, cache: Path) -> dict[str, object]:
    records.finish(prefix, prefix.name, ["pkg 1.0"], ["pkg-1.0-py_0.json"], sandbox=sandbox_for(site), cache=cache)
    record: dict[str, object] = json.loads((prefix / "conda-meta" / "pkg-1.0-py_0.json").read_text())
    return record


def pycs_of(record: dict[str, object]) -> list[str]:
    files = record["files"]
    assert isinstance(files, list)
    return [f for f in files if f.endswith(".pyc")]


def tree(prefix: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(prefix)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in prefix.rglob("*") if p.is_file() and not p.is_symlink()}


def test_more_files_than_a_process_may_print_or_one_chunk_holds_are_all_compiled_and_listed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing passes through the compiler's captured output (its last megabyte), and the chunks that
    compile in parallel each land their bytecode where the interpreter looks for it."""
    monkeypatch.setattr(proc, "OUTPUT_LIMIT", 64)
    monkeypatch.setattr(bytecode, "CHUNK", 7)
    site = make_site(tmp_path, ("alpha",), kernels=False)
    sources = package_files(tmp_path / "store", 20)
    prefix = environment(site, "one", tmp_path / "store", sources)
    record = finish(site, prefix, tmp_path / "pyc")
    pycs = pycs_of(record)
    assert len(pycs) == len(sources) and all((prefix / f).is_file() for f in pycs)
    assert pycs[3] == f"{SITE_PACKAGES}/pkg/__pycache__/mod_3.{sys.implementation.cache_tag}.pyc"
    assert {"_path": pycs[0], "path_type": "pyc_file"} in record["paths_data"]["paths"]  # type: ignore[index]
    assert record["requested_spec"] == "pkg 1.0"


def test_a_package_is_compiled_once_and_its_bytecode_linked_into_the_next_environment(tmp_path: Path) -> None:
    site = make_site(tmp_path, ("alpha",), kernels=False)
    sources = package_files(tmp_path / "store", 5)
    first, second = (environment(site, name, tmp_path / "store", sources) for name in ("first", "second"))
    pycs = pycs_of(finish(site, first, tmp_path / "pyc"))
    assert pycs_of(finish(site, second, tmp_path / "pyc")) == pycs
    for pyc in pycs:
        assert (second / pyc).stat().st_ino == (first / pyc).stat().st_ino  # the same file, compiled once
    before = tree(second)
    imported = subprocess.run([str(second / "bin" / "python"), "-c",
                               f"import sys; sys.path.insert(0, {str(second / SITE_PACKAGES)!r}); "
                               "import pkg.mod_0, pkg.mod_4; print(pkg.mod_4.X, pkg.mod_0.__file__)"],
                              capture_output=True, text=True, check=True)
    assert imported.stdout.split() == ["4", str(second / SITE_PACKAGES / "pkg" / "mod_0.py")]
    assert tree(second) == before  # Python took the linked bytecode as its own: nothing rewritten, nothing new


def test_a_source_that_is_not_the_same_file_is_compiled_for_its_environment(tmp_path: Path) -> None:
    site = make_site(tmp_path, ("alpha",), kernels=False)
    sources = package_files(tmp_path / "store", 3)
    shared = environment(site, "shared", tmp_path / "store", sources)
    pycs = pycs_of(finish(site, shared, tmp_path / "pyc"))
    copied = environment(site, "copied", tmp_path / "store", sources, copy=True)
    for source in sources:  # the same text, another file: as where py-rattler copied instead of linking
        os.utime(copied / source, (1_000_000, 1_000_000))
    assert pycs_of(finish(site, copied, tmp_path / "pyc")) == pycs
    assert all((copied / p).stat().st_ino != (shared / p).stat().st_ino for p in pycs)
    before = tree(copied)
    subprocess.run([str(copied / "bin" / "python"), "-c",
                    f"import sys; sys.path.insert(0, {str(copied / SITE_PACKAGES)!r}); import pkg.mod_2"], check=True)
    assert tree(copied) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="the compiler runs as another user only when condaqa runs as root")
def test_the_environments_interpreter_compiles_as_the_sandbox_user_and_cannot_write_the_environment(
        tmp_path: Path) -> None:
    """The interpreter is the environment's, foreign code: here one that tries to leave a file in its
    environment and says who it runs as through the name of the bytecode it leaves."""
    site = make_site(tmp_path, ("alpha",), kernels=False)
    if sandbox_for(site).mode == NONE:
        pytest.skip("no sandbox works here")
    sources = package_files(tmp_path / "store", 1)
    prefix = environment(site, "hostile", tmp_path / "store", sources)
    marker = prefix / "left-by-the-compiler"
    fake = prefix / "bin" / "fake-python"
    fake.write_text(f'#!/bin/sh\nid -u > {marker}\nfor out; do :; done\n'
                    'printf "uid-%s" "$(id -u)" > "$out/tag"; printf x > "$out/0.pyc"\n')
    fake.chmod(0o755)
    (prefix / "bin" / "python").unlink()
    (prefix / "bin" / "python").symlink_to(fake.name)
    pycs = pycs_of(finish(site, prefix, tmp_path / "pyc"))
    assert not marker.exists()
    assert pycs == [f"{SITE_PACKAGES}/pkg/__pycache__/mod_0.uid-65534.pyc"]  # nobody, the default sandbox user

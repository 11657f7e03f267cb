"""Kernel packages made from condaqa's own installed distributions.

The end-to-end test solves and links a real ipykernel environment with py-rattler from the
packages distributions.py writes, then starts the kernel with jupyter_client and asks it
for its sys.prefix. The unit tests use small distributions laid out as pip installs them.
"""

from __future__ import annotations

import base64
import ensurepip
import hashlib
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import rattler
from fixture_sites import pristine
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from condaqa.demo.catalog import KERNEL_OPTIONAL
from condaqa.demo.distributions import closure, conda_name, distribution_package
from condaqa.demo.packages import Package
from condaqa.errors import SiteError

SUBDIR = str(rattler.Subdir.current())
SHORT = f"{sys.version_info[0]}.{sys.version_info[1]}"

# py-rattler's async calls run in a child that leaves through os._exit: py-rattler 0.28 can
# abort the interpreter while it finalizes (see condaqa/engines/isolated.py).
SOLVE_AND_LINK = """
import asyncio, json, os, sys, traceback
from pathlib import Path
try:
    import rattler
    chan, env, cache = (Path(a) for a in sys.argv[1:4])
    records = asyncio.run(rattler.solve(
        sources=[rattler.Channel(chan.as_uri())],
        specs=["python", "ipykernel", "pip"],
        platforms=[rattler.Subdir.current(), "noarch"],
        virtual_packages=rattler.VirtualPackage.detect(),
    ))
    asyncio.run(rattler.install(records, target_prefix=env, cache_dir=cache, show_progress=False))
    print(json.dumps(sorted(str(r.subdir) + "/" + r.name.normalized for r in records)), flush=True)
except BaseException:
    traceback.print_exc()
    sys.stderr.flush()
    os._exit(1)
os._exit(0)
"""


@pytest.fixture(scope="module")
def kernel_env(_fixture_sites: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A real environment with python and ipykernel, solved and linked by py-rattler from the demo's `main`
    channel, which the demo build wrote with write_kernel_channel (beside python and its own pip)."""
    chan = pristine(_fixture_sites, "kernel_site") / "main"
    expected = {f"{pkg.subdir}/{pkg.filename}" for pkg in _closure_packages()}
    assert expected <= {f"{p.parent.name}/{p.name}" for p in chan.glob("*/*.tar.bz2")}
    tmp = tmp_path_factory.mktemp("kernel")
    env = tmp / "env"
    proc = subprocess.run(
        [sys.executable, "-c", SOLVE_AND_LINK, str(chan), str(env), str(tmp / "pkgs")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return env, json.loads(proc.stdout)


def test_the_solve_takes_every_package_of_the_closure(kernel_env: tuple[Path, list[str]]) -> None:
    _env, solved = kernel_env
    expected = {("noarch" if p.noarch_python else SUBDIR) + "/" + p.name for p in _closure_packages()}
    assert set(solved) == expected | {f"{SUBDIR}/python", f"{SUBDIR}/pip"}
    assert f"{SUBDIR}/pyzmq" in solved and "noarch/ipykernel" in solved


def test_the_environment_is_laid_out_as_conda_would(kernel_env: tuple[Path, list[str]]) -> None:
    env, _ = kernel_env
    site = env / "lib" / f"python{SHORT}" / "site-packages"
    # ipykernel's root-level file of a noarch package lands at PREFIX/share, not in site-packages
    assert (env / "share/jupyter/kernels/python3/kernel.json").is_file()
    assert not (site / "share").exists()
    info = next(site.glob("ipykernel-*.dist-info"))
    assert sorted(p.name for p in info.iterdir() if p.name in ("INSTALLER", "REQUESTED", "direct_url.json")) == []
    assert list(site.glob("zmq/backend/cython/_zmq*.so"))  # the binary package's extension
    run_env = {**os.environ, "JUPYTER_DATA_DIR": str(env / "no-user-data"), "JUPYTER_PATH": ""}
    # an entry point rattler wrote for a noarch package, and one of ours in a python-specific build
    specs = subprocess.run(
        [str(env / "bin/jupyter-kernelspec"), "list", "--json"], capture_output=True, text=True, env=run_env, check=True
    )
    kernelspecs = json.loads(specs.stdout)["kernelspecs"]
    assert kernelspecs["python3"]["resource_dir"] == str(env / "share/jupyter/kernels/python3")
    version = subprocess.run([str(env / "bin/pip"), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith(f"pip {pip_wheel_version()} from {site}/pip ")
    # which brought its bytecode: nothing is compiled, and Python takes it as it is
    pycs = list((site / "pip" / "__pycache__").glob("*.pyc"))
    assert pycs and all(p.stat().st_nlink > 1 for p in pycs)  # linked from the package cache
    probe = subprocess.run([str(env / "bin/python"), "-c", "import pip._internal.cli.main as m; print(m.__cached__)"],
                           capture_output=True, text=True, check=True)
    assert Path(probe.stdout.strip()).stat().st_nlink > 1


def test_the_kernel_starts_and_runs_in_the_environment(kernel_env: tuple[Path, list[str]], tmp_path: Path) -> None:
    env, _ = kernel_env
    spec = tmp_path / "kernels" / "demo-env"
    spec.mkdir(parents=True)
    argv = [str(env / "bin/python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "demo", "language": "python"}))
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    kernel_env_vars = {**os.environ, "IPYTHONDIR": str(tmp_path / "ipython"), "JUPYTER_RUNTIME_DIR": str(runtime)}
    manager = KernelManager(
        kernel_name="demo-env",
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")]),
        connection_file=str(runtime / "kernel-demo.json"),
    )
    manager.start_kernel(env=kernel_env_vars)
    try:
        client = manager.blocking_client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            msg_id = client.execute("import sys, ipykernel; print(sys.prefix); print(ipykernel.__file__)")
            out = _stream_output(client, msg_id)
        finally:
            client.stop_channels()
    finally:
        manager.shutdown_kernel(now=False)
    prefix, ipykernel_file = out.splitlines()
    assert prefix == str(env)
    assert ipykernel_file.startswith(str(env / "lib" / f"python{SHORT}" / "site-packages" / "ipykernel"))
    assert not Path(manager.connection_file).exists()


def _stream_output(client: BlockingKernelClient, msg_id: str) -> str:
    """stdout the kernel sent on iopub for `msg_id`, up to its idle status."""
    text = []
    while True:
        msg = client.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            text.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"]))
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(text)


# ---- unit tests on distributions laid out as pip installs them ------------------------------


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _install(
    prefix: Path,
    name: str,
    version: str,
    *,
    requires: tuple[str, ...] = (),
    files: dict[str, bytes] | None = None,
    purelib: bool = True,
    scripts: dict[str, str] | None = None,
    direct_url: dict[str, object] | None = None,
) -> metadata.Distribution:
    """A distribution as pip leaves it in prefix/lib/pythonX.Y/site-packages (RECORD, INSTALLER ...)."""
    site = prefix / "lib" / f"python{SHORT}" / "site-packages"
    info = f"{name.replace('-', '_')}-{version}.dist-info"
    contents = dict(files or {})
    metadata_text = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata_text += "".join(f"Requires-Dist: {r}\n" for r in requires)
    contents[f"{info}/METADATA"] = metadata_text.encode()
    contents[f"{info}/WHEEL"] = f"Wheel-Version: 1.0\nRoot-Is-Purelib: {str(purelib).lower()}\n".encode()
    contents[f"{info}/INSTALLER"] = b"pip\n"
    contents[f"{info}/REQUESTED"] = b""
    if direct_url is not None:
        contents[f"{info}/direct_url.json"] = json.dumps(direct_url).encode()
    if scripts:
        lines = "".join(f"{n} = {t}\n" for n, t in scripts.items())
        contents[f"{info}/entry_points.txt"] = f"[console_scripts]\n{lines}".encode()
        for script, target in scripts.items():
            module, func = target.split(":")
            body = f"#!{sys.executable}\nimport sys\nfrom {module} import {func}\nsys.exit({func}())\n"
            contents[f"../../../bin/{script}"] = body.encode()
    for rel, data in contents.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if rel.startswith("../../../bin/"):
            path.chmod(0o755)
    record = [_record_line(rel, data) for rel, data in contents.items()] + [f"{info}/RECORD,,"]
    (site / info / "RECORD").write_text("\n".join(record) + "\n")
    return metadata.PathDistribution(site / info)


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed prefix on sys.path, so importlib.metadata finds its distributions."""
    prefix = tmp_path / "prefix"
    _install(
        prefix,
        "Fake_Pure.Pkg",
        "1.0",
        requires=(
            "fake-binary>=2",
            "fake-nowhere; sys_platform == 'no-such-platform'",
            "fake-test-only; extra == 'test'",
            "Fake_Pure.Pkg[test]; extra == 'all'",
        ),
        files={
            "fake_pure/__init__.py": b"VALUE = 1\n",
            "fake_pure/cli.py": b"def main():\n    print('fake-cli ran')\n    return 0\n",
            "fake_pure/__pycache__/__init__.cpython-311.pyc": b"\x00compiled",
            "../../../share/fake/data.txt": b"data\n",
            "../../../bin/fake-tool": f"#!{sys.executable}\nprint('fake-tool ran')\n".encode(),
        },
        scripts={"fake-cli": "fake_pure.cli:main"},
        direct_url={"url": "file:///wheels/fake_pure-1.0-py3-none-any.whl", "archive_info": {}},
    )
    _install(
        prefix,
        "fake-binary",
        "2.0",
        requires=("fake-leaf",),
        files={
            "fake_binary/__init__.py": b"def main():\n    print('fake-bin ran')\n    return 0\n",
            f"fake_binary/_ext.cpython-{SHORT.replace('.', '')}-x86_64-linux-gnu.so": b"\x7fELF not really",
        },
        purelib=False,
        scripts={"fake-bin": "fake_binary:main"},
    )
    _install(prefix, "fake.leaf", "3.0", files={"fake_leaf.py": b""})
    site = prefix / "lib" / f"python{SHORT}" / "site-packages"
    monkeypatch.syspath_prepend(str(site))
    return site


def pip_wheel_version() -> str:
    return next((Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl")).name.split("-")[1]


def _closure_packages() -> list[Package]:
    """The demo's kernel closure (without the optional debugger and completion)."""
    return [distribution_package(d, SUBDIR, KERNEL_OPTIONAL) for d in closure(["ipykernel"], KERNEL_OPTIONAL)]


def test_closure_follows_markers_not_extras_each_once_sorted(fake_site: Path) -> None:
    names = [d.metadata["Name"] for d in closure(["fake-binary", "fake_pure.pkg", "fake-leaf"])]
    assert names == ["fake-binary", "fake.leaf", "Fake_Pure.Pkg"]


def test_closure_of_ipykernel_leaves_out_other_platforms_and_extras() -> None:
    names = [conda_name(d.metadata["Name"]) for d in closure(["ipykernel"])]
    assert names == sorted(names) and len(set(names)) == len(names)
    assert {"ipykernel", "ipython", "pyzmq", "tornado", "jupyter-client", "traitlets"} <= set(names)
    assert "appnope" not in names  # platform_system == 'Darwin'
    assert "pytest" not in names and "condaqa" not in names  # only behind extras / not required


def test_closure_names_a_missing_requirement(fake_site: Path) -> None:
    _install(fake_site.parents[2], "fake-needy", "1.0", requires=("fake-nowhere-else>=1", "fake-leaf"))
    with pytest.raises(SiteError, match=r"fake-nowhere-else \(required by fake-needy\) is not installed"):
        closure(["fake-needy"])
    with pytest.raises(SiteError, match="distribution fake-absent is not installed"):
        closure(["fake-absent"])


def test_a_pure_distribution_becomes_a_noarch_python_package(fake_site: Path) -> None:
    pkg = distribution_package(metadata.distribution("fake-pure-pkg"), SUBDIR)
    assert (pkg.name, pkg.version, pkg.subdir, pkg.noarch_python) == ("fake-pure-pkg", "1.0", "noarch", True)
    assert pkg.depends == ["python", "fake-binary"]
    assert pkg.entry_points == ["fake-cli = fake_pure.cli:main"]
    files = {f.path: f for f in pkg.files}
    info = "site-packages/Fake_Pure.Pkg-1.0.dist-info"
    assert sorted(files) == sorted(
        [
            "site-packages/fake_pure/__init__.py",
            "site-packages/fake_pure/cli.py",
            "share/fake/data.txt",  # at the package root: rattler links it to PREFIX/share
            "python-scripts/fake-tool",  # a script that is no entry point: rattler links it to bin/
            f"{info}/METADATA",
            f"{info}/WHEEL",
            f"{info}/entry_points.txt",
            f"{info}/RECORD",
        ]
    )
    tool = files["python-scripts/fake-tool"].data
    assert tool.startswith(b"#!/bin/sh\n") and tool.endswith(b"\nprint('fake-tool ran')\n")
    assert sys.executable.encode() not in tool
    record = files[f"{info}/RECORD"].data.decode().splitlines()
    assert any(line.startswith("../../../bin/fake-tool,sha256=") for line in record)
    assert any(line.startswith("../../../share/fake/data.txt,sha256=") for line in record)
    assert _record_line("fake_pure/cli.py", files["site-packages/fake_pure/cli.py"].data) in record
    assert not any("__pycache__" in line or "INSTALLER" in line or "direct_url" in line for line in record)


def test_a_compiled_distribution_becomes_a_package_for_the_platform(fake_site: Path, tmp_path: Path) -> None:
    pkg = distribution_package(metadata.distribution("fake-binary"), SUBDIR)
    upper = f"{sys.version_info[0]}.{sys.version_info[1] + 1}"
    assert (pkg.name, pkg.subdir, pkg.noarch_python, pkg.entry_points) == ("fake-binary", SUBDIR, False, [])
    assert pkg.depends == [f"python >={SHORT},<{upper}", "fake-leaf"]
    site = f"lib/python{SHORT}/site-packages"
    paths = {f.path for f in pkg.files}
    assert f"{site}/fake_binary/__init__.py" in paths
    assert any(p.startswith(f"{site}/fake_binary/_ext.") for p in paths)
    script = next(f for f in pkg.files if f.path == "bin/fake-bin")
    assert script.executable and sys.executable.encode() not in script.data
    # the script finds the environment's python next to itself: try it in a stand-in bin/
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    (bin_dir / "fake-bin").write_bytes(script.data)
    (bin_dir / "fake-bin").chmod(0o755)
    run_env = {**os.environ, "PYTHONPATH": str(fake_site)}
    ran = subprocess.run([str(bin_dir / "fake-bin")], capture_output=True, text=True, env=run_env, check=True)
    assert ran.stdout == "fake-bin ran\n"


def test_ipykernels_package_carries_its_kernel_spec_at_the_root() -> None:
    pkg = distribution_package(metadata.distribution("ipykernel"), SUBDIR)
    assert pkg.noarch_python and "share/jupyter/kernels/python3/kernel.json" in {f.path for f in pkg.files}
    assert not any(f.path.endswith(".pyc") for f in pkg.files)


def test_editable_installs_and_bad_versions_are_refused(fake_site: Path) -> None:
    prefix = fake_site.parents[2]
    editable_url: dict[str, object] = {"url": "file:///src/fake", "dir_info": {"editable": True}}
    editable = _install(prefix, "fake-dev", "1.0", direct_url=editable_url)
    with pytest.raises(SiteError, match=re.escape("fake-dev 1.0 is installed in editable mode from file:///src/fake")):
        distribution_package(editable, SUBDIR)
    dashed = _install(prefix, "fake-dashed", "1.0-1")
    with pytest.raises(SiteError, match=re.escape("fake-dashed's version '1.0-1' is not a valid conda version")):
        distribution_package(dashed, SUBDIR)
    source_tree = prefix / "src" / "fake_tree.egg-info"
    source_tree.mkdir(parents=True)
    (source_tree / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: fake-tree\nVersion: 1.0\n")
    (source_tree / "SOURCES.txt").write_text("setup.py\nfake_tree/__init__.py\n")
    with pytest.raises(SiteError, match=re.escape("fake-tree 1.0 has no RECORD")):
        distribution_package(metadata.PathDistribution(source_tree), SUBDIR)

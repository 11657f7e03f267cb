"""Property: whatever bytes a foreign file holds, its reader returns or raises a CondaqaError, in bounded
time and memory; never another exception (a RecursionError, a TypeError, a MemoryError).

Hypothesis feeds each reader random bytes, valid files with random bytes spliced in, and random
nesting (JSON, TOML and YAML brackets up to 2,000 deep). Runs are derandomized, so CI sees the same
cases every time. Time is measured and reported, not asserted (a loaded machine would make it
flaky); memory is asserted against a generous tracemalloc bound. `pytest -s` prints the numbers.
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from condaqa.errors import CondaqaError
from condaqa.kernels.specs import read_kernel
from condaqa.manifest import load_manifest
from condaqa.prefix import read_history, read_prefix
from condaqa.site import load_site
from condaqa.spec.format import load_spec

PEAK = 64 << 20  # bytes traced while reading inputs of a few KiB: far above what a bounded reader needs
SETTINGS = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
STATS: dict[str, list[float]] = {"cases": [0], "seconds": [0.0], "bytes": [0]}

TEMPLATES = {
    "record": '{"name": "tabular", "version": "2.0.0", "build": "0", "channel": "main", "files": ["a.py"]}',
    "history": "==> 2020-01-01 00:00:00 <==\n# cmd: conda create\n+main::tabular-2.0.0-0\n"
               "# update specs: ['tabular']\n",
    "kernel": '{"argv": ["/x/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "x"}',
    "site": '[site]\nroot = "."\nchannels = ["main"]\npip_args = ["--no-index"]\n',
    "ini": "[environments]\nalpha = REPLICATE\nbeta = export\n",
    "toml": '[alpha]\nowner = "x"\nimports = ["a.b"]\ntimeout = 30\n',
    "yaml": "name: alpha\nchannels: [main]\ndependencies:\n  - python=3.11\n  - pip:\n    - x==1\n",
}
OPEN = {"record": ('{"x":', "[", '{"y":'), "kernel": ('{"argv":', "[", '{"a":'),
        "site": ('[site]\nroot = "."\nchannels = ', "[", "{a = "), "toml": ("[alpha]\npip_args = ", "[", "{a = "),
        "yaml": ("name: a\ndependencies: ", "[", "{a: "), "history": ("# update specs: ", "[", "{"),
        "ini": ("[environments]\n", "[", "{")}


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    """One folder for every case (hypothesis runs many cases per test: tmp_path would be shared anyway)."""
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)
    cases, seconds, traced = STATS["cases"][0], STATS["seconds"][0], STATS["bytes"][0]
    print(f"\nreaders property: {cases} cases, worst {seconds * 1000:.1f} ms, worst traced memory "
          f"{traced / 2**20:.2f} MiB")


def _prefix(folder: Path) -> Path:
    (folder / "prefix" / "conda-meta").mkdir(parents=True, exist_ok=True)
    (folder / "prefix" / "conda-meta" / "history").touch()
    return folder / "prefix"


def _record(folder: Path, data: bytes) -> object:
    (_prefix(folder) / "conda-meta" / "x-1-0.json").write_bytes(data)
    return read_prefix(_prefix(folder))


def _history(folder: Path, data: bytes) -> object:
    (_prefix(folder) / "conda-meta" / "history").write_bytes(data)
    return read_history(_prefix(folder))


def _kernel(folder: Path, data: bytes) -> object:
    path = folder / "kernels" / "x" / "kernel.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return read_kernel(folder, "x", path)


def _site(folder: Path, data: bytes) -> object:
    (folder / "site.toml").write_bytes(data)
    return load_site(folder / "site.toml", base=folder)


def _ini(folder: Path, data: bytes) -> object:
    (folder / "m" / "environments.toml").unlink(missing_ok=True)
    (folder / "m").mkdir(exist_ok=True)
    (folder / "m" / "environments.ini").write_bytes(data)
    return load_manifest(folder / "m" / "environments.ini")


def _toml(folder: Path, data: bytes) -> object:
    (folder / "t").mkdir(exist_ok=True)
    (folder / "t" / "environments.ini").write_text(TEMPLATES["ini"], encoding="utf-8")
    (folder / "t" / "environments.toml").write_bytes(data)
    return load_manifest(folder / "t" / "environments.ini")


def _yaml(folder: Path, data: bytes) -> object:
    (folder / "env.yml").write_bytes(data)
    return load_spec(folder / "env.yml")


READERS: dict[str, Callable[[Path, bytes], object]] = {
    "record": _record, "history": _history, "kernel": _kernel, "site": _site, "ini": _ini, "toml": _toml,
    "yaml": _yaml}


def _spliced(kind: str) -> st.SearchStrategy[bytes]:
    """The kind's valid file with random bytes put in at a random place."""
    template = TEMPLATES[kind].encode()
    return st.tuples(st.integers(0, len(template)), st.binary(max_size=64)).map(
        lambda cut: template[:cut[0]] + cut[1] + template[cut[0]:])


def _nested(kind: str) -> st.SearchStrategy[bytes]:
    """Up to 2,000 levels of the kind's brackets, mixed, closed or not."""
    head, square, curly = OPEN[kind]
    return st.tuples(st.lists(st.sampled_from([square, curly]), max_size=2000), st.booleans()).map(
        lambda nest: (head + "".join(nest[0]) + ("".join("]" if o == "[" else "}" for o in reversed(nest[0]))
                                                  if nest[1] else "")).encode())


def _inputs(kind: str) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=4096), _spliced(kind), _nested(kind))


def _read(kind: str, folder: Path, data: bytes) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        READERS[kind](folder, data)
    except CondaqaError as exc:
        assert str(exc).strip(), "an error without words"
    finally:
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    STATS["cases"][0] += 1
    STATS["seconds"][0] = max(STATS["seconds"][0], seconds)
    STATS["bytes"][0] = max(STATS["bytes"][0], peak)
    assert peak < PEAK, f"{kind}: {peak} bytes traced for {len(data)} bytes of input"


@pytest.mark.parametrize("kind", list(READERS))
def test_a_reader_gives_a_value_or_a_clear_error_for_any_bytes(kind: str, folder: Path) -> None:
    @SETTINGS
    @given(data=_inputs(kind))
    def check(data: bytes) -> None:
        _read(kind, folder, data)

    check()

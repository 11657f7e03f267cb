"""Reading prefixes without conda and exporting conda env specs from them."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import NoReturn

import pytest
import yaml
from helpers_sites import make_site
from hypothesis import given, settings
from hypothesis import strategies as st

from condaqa import atomic
from condaqa.errors import PrefixError, SpecError
from condaqa.inputs import PATH_FILE, RECORD, FileKind, read_bytes
from condaqa.prefix import read_history, read_prefix, requested_specs, top_level_modules
from condaqa.site import Site
from condaqa.spec.export import EDITED_MARK, export_environment, write_export
from condaqa.spec.format import EnvSpec, dump_spec, load_spec, parse_spec


def current_prefix(site: Site, env: str) -> Path:
    return site.installation(site.current_name).env_prefix(env)


def site_channel_urls(site: Site) -> list[str]:
    """The demo's channels main and mpc are folders under its root: an export names them by file:// URL."""
    return [(site.root / name).as_uri() for name in ("main", "mpc")]


def test_read_prefix_separates_conda_and_pip(demo_site: Site) -> None:
    contents = read_prefix(current_prefix(demo_site, "nhis_reformat"))
    conda = {p.name: (p.version, p.subdir) for p in contents.conda}
    assert conda["tabular"] == ("1.1.0", "noarch") and conda["python"][1] == "linux-64"
    assert conda["pip"][0]  # pip's own dist-info belongs to its conda record, not to the pip list
    assert [(d.name, d.version) for d in contents.pip] == [("codebook", "1.2.0")]
    assert "tabular" in top_level_modules(contents) and "codebook" in top_level_modules(contents)


def test_export_is_conda_env_format_without_builds_or_prefix(demo_site: Site) -> None:
    spec = export_environment(demo_site, "nhis_reformat")
    data = yaml.safe_load(dump_spec(spec))
    assert list(data) == ["name", "channels", "dependencies"]
    assert data["channels"] == site_channel_urls(demo_site)  # folders by their URL, in the site's order
    assert "tabular=1.1.0" in data["dependencies"] and {"pip": ["codebook==1.2.0"]} in data["dependencies"]
    assert all(entry.count("=") == 1 for entry in data["dependencies"] if isinstance(entry, str))
    assert dump_spec(spec) == dump_spec(export_environment(demo_site, "nhis_reformat"))  # deterministic


def test_export_names_internal_channel(demo_site: Site) -> None:
    spec = export_environment(demo_site, "hlink")
    assert "linkage=2.2.0" in spec.dependencies and spec.channels == site_channel_urls(demo_site)
    assert spec.channels[1].endswith("/mpc")  # the internal channel linkage comes from, so any conda finds it


def test_export_of_missing_environment_is_clear(demo_site: Site) -> None:
    with pytest.raises(PrefixError, match="environment 'ghost' does not exist"):
        export_environment(demo_site, "ghost")


def test_corrupt_record_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "conda-meta").mkdir()
    (tmp_path / "conda-meta" / "history").touch()
    (tmp_path / "conda-meta" / "x-1-0.json").write_text("{not json")
    with pytest.raises(PrefixError, match=r"x-1-0.json: not valid JSON, so not a conda-meta record"):
        read_prefix(tmp_path)


def _record_prefix(tmp_path: Path, record: bytes) -> Path:
    (tmp_path / "conda-meta").mkdir()
    (tmp_path / "conda-meta" / "history").touch()
    (tmp_path / "conda-meta" / "x-1-0.json").write_bytes(record)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"name": "x", "version": "1", "build": "0", "files": "lib/x.py"}',
         "Expected `array | null`, got `str` - at `$.files`"),
        ('{"name": "x", "version": "1", "build": "0", "files": ["lib/x.py", ["lib/y.py"]]}',
         "Expected `str`, got `array` - at `$.files[1]`"),
        ('{"name": "x", "version": "1", "build": "0", "channel": 7}',
         "Expected `str | null`, got `int` - at `$.channel`"),
        ('{"version": "1", "build": "0"}', "Object missing required field `name`"),
        ('["x", "1", "0"]', "Expected `object`, got `array`"),
    ],
)
def test_a_record_of_other_types_than_conda_writes_names_the_file_and_the_field(tmp_path: Path, text: str,
                                                                              message: str) -> None:
    prefix = _record_prefix(tmp_path, text.encode())
    with pytest.raises(PrefixError) as caught:
        read_prefix(prefix)
    assert str(caught.value) == f"{prefix}/conda-meta/x-1-0.json: not a conda-meta record: {message}"


def test_a_record_only_python_s_json_reads_is_read(tmp_path: Path) -> None:
    """conda writes records with Python's json, which writes NaN, and lone surrogates for a file name that is
    not UTF-8; msgspec refuses both, so such a record is parsed by json and checked the same way."""
    dist = os.fsdecode(b"caf\xe9-1.0.dist-info")
    record = {"name": "x", "version": "1", "build": "0", "size": float("nan"),
              "files": [f"lib/python3.11/site-packages/{dist}/METADATA"]}
    prefix = _record_prefix(tmp_path, json.dumps(record).encode())
    (prefix / "lib" / "python3.11" / "site-packages" / dist).mkdir(parents=True)
    (prefix / "lib" / "python3.11" / "site-packages" / dist / "METADATA").write_text("Name: café\nVersion: 1.0\n")
    contents = read_prefix(prefix)
    assert [(p.name, p.version) for p in contents.conda] == [("x", "1")] and contents.pip == ()


def test_a_record_in_utf8_beyond_ascii_is_read(tmp_path: Path) -> None:
    record = '{"name": "x", "version": "1", "build": "0", "license": "Licence publique générale"}'
    contents = read_prefix(_record_prefix(tmp_path, b"\xef\xbb\xbf" + record.encode()))
    assert [(p.name, p.version) for p in contents.conda] == [("x", "1")]


def test_a_record_is_read_whole_when_its_file_system_reads_it_in_pieces(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A read may return fewer bytes than asked (FUSE, network file systems): the reader reads on."""
    files = [f"lib/x/m{i}.py" for i in range(2000)]
    prefix = _record_prefix(tmp_path, json.dumps({"name": "x", "version": "1", "build": "0", "files": files}).encode())
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: real_read(fd, min(n, 1000)))
    assert read_prefix(prefix).conda[0].name == "x"


def test_a_file_whose_file_system_states_no_size_is_read_to_its_end() -> None:
    """procfs states size 0; what it holds is read all the same, up to the cap."""
    status = read_bytes(Path("/proc/self/status"), PATH_FILE, PrefixError)
    assert status.startswith(b"Name:") and b"\nVmRSS:" in status
    with pytest.raises(PrefixError, match=r"/proc/self/status: larger than 1 KiB"):
        read_bytes(Path("/proc/self/status"), FileKind("a status", 1024, "status"), PrefixError)


def test_a_fifo_swapped_in_after_the_listing_is_refused_on_the_open_file(tmp_path: Path) -> None:
    """A record the folder listed as a regular file is opened without a stat first: one a FIFO replaced
    since is refused all the same, by the check on the open file, and the open does not block."""
    os.mkfifo(tmp_path / "x-1-0.json")
    with pytest.raises(PrefixError, match=r"x-1-0.json: is a FIFO \(named pipe\), not a conda-meta record"):
        read_bytes(tmp_path / "x-1-0.json", RECORD, PrefixError, listed_regular=True)


def test_history_formats(tmp_path: Path) -> None:
    (tmp_path / "conda-meta").mkdir()
    (tmp_path / "conda-meta" / "history").write_text(
        "==> 2017-01-01 10:00:00 <==\n# cmd: conda create -n x numpy python=3.6\n+defaults::numpy-1.11-py36_0\n"
        "# install specs: numpy >=1.0,<2,python=3.6\n"
        "==> 2020-01-01 10:00:00 <==\n+conda-forge/noarch::pyyaml-5.1-py_0\n# update specs: ['pyyaml', 'requests']\n"
        "==> 2021-01-01 10:00:00 <==\n-conda-forge/noarch::requests-2.0-py_0\n# remove specs: ['requests']\n"
    )
    revisions = read_history(tmp_path)
    assert revisions[0].specs == {"install": ("numpy >=1.0,<2", "python=3.6")}
    assert revisions[1].added == ("conda-forge/noarch::pyyaml-5.1-py_0",)
    assert revisions[2].removed == ("conda-forge/noarch::requests-2.0-py_0",)
    wanted = requested_specs(revisions, {"numpy", "python", "pyyaml"})
    assert wanted == {"numpy": "numpy >=1.0,<2", "python": "python=3.6", "pyyaml": "pyyaml"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# packages in environment at /x:\nbzip2   1.0.8  h1de35cc_0\n",
         "not a conda environment file (expected a mapping"),
        ("name: x\nchannels: [a]\n", "no 'dependencies' list"),
        ("dependencies: {a: 1}\n", "'dependencies' must be a list"),
        ("dependencies:\n  - a\n  - {conda: [b]}\n", "dependency 2 is a mapping other than"),
        ("dependencies: [a\n", "env.yml:2: not valid YAML"),
    ],
)
def test_parse_errors_name_the_file(text: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, "env.yml")
    assert str(caught.value).startswith("env.yml") and message in str(caught.value)


def test_round_trip_with_pip_and_variables(tmp_path: Path) -> None:
    text = "name: a\nchannels: [c]\ndependencies:\n- x=1\n- pip:\n  - y==2\nvariables: {K: v}\nprefix: /p\n"
    spec, site = parse_spec(text, "f"), make_site(tmp_path)
    write_export(site, site.specs_dir / "a.yml", spec)
    assert (site.specs_dir / "a.yml").read_text().startswith(EDITED_MARK)
    again = load_spec(site.specs_dir / "a.yml")
    assert (again.dependencies, again.pip, again.variables, again.prefix) == (["x=1"], ["y==2"], {"K": "v"}, "")
    assert dump_spec(again) == dump_spec(spec)


class _IndentedDumper(yaml.SafeDumper):
    """PyYAML as conda writes environment files since 4.8: sequences indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


# strings made of the characters and words where PyYAML quotes, or writes plain, what looks alike
_SCALARS = st.lists(st.sampled_from([*"a0_.=/:-# '\"!*[é\t", "yes", "1.0", "---", "...", "~", "0x1F", "12:30"]),
                    max_size=4).map("".join)


def _assert_written_as_pyyaml_writes_it(text: str, where: str) -> None:
    spec = EnvSpec("env")
    if where == "name":
        spec.name = text
    elif where != "nothing":
        getattr(spec, where).append(text)
    expected = yaml.dump(spec.to_dict(), Dumper=_IndentedDumper, sort_keys=False, default_flow_style=False, width=1000)
    assert dump_spec(spec) == expected


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(_SCALARS, st.sampled_from(["name", "channels", "dependencies", "pip", "nothing"]))
def test_a_spec_is_written_as_pyyaml_writes_it(text: str, where: str) -> None:
    """dump_spec writes most specs without PyYAML's emitter: the text is PyYAML's all the same, quotes and all."""
    _assert_written_as_pyyaml_writes_it(text, where)


@pytest.mark.parametrize(("text", "where"), [("a:", "dependencies"), ("a #b", "pip"), ("a: b", "channels"),
                                             ("-", "name"), ("...", "pip"), ("yes", "dependencies"),
                                             ("a b", "dependencies"), (" a", "pip"), ("caf\u00e9", "pip")])
def test_strings_pyyaml_quotes_are_quoted(text: str, where: str) -> None:
    _assert_written_as_pyyaml_writes_it(text, where)


def test_atomic_write_leaves_old_file_and_no_temp_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "spec.yml"
    target.write_text("old\n")

    def full(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> NoReturn:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError, match="No space left on device"):
        atomic.write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in Path(tmp_path).iterdir()] == ["spec.yml"]


def test_atomic_write_reaches_the_disk_before_it_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The new file's data, then the folder holding the rename, are synced: a power loss right after leaves
    the old file or the new one, never an empty one."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    atomic.write_text(tmp_path / "intent.json", "{}\n")
    assert len(synced) == 2 and synced[0].startswith(str(tmp_path / ".intent.json.")) and synced[1] == str(tmp_path)

"""The fingerprint's digests kept by inode within a process: a file hard-linked into many environments is
read once, and an edit is never hidden by a digest kept from before it."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from condaqa import fingerprint as fp


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths whose content the fingerprint reads, with nothing kept by inode from earlier tests."""
    monkeypatch.setattr(fp, "_by_inode", {})
    seen: list[str] = []
    real = fp._digest

    def counted(path: str) -> str:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(fp, "_digest", counted)
    return seen


def _linked_pair(tmp_path: Path, files: int) -> tuple[Path, Path]:
    """Two environments whose files are the same inodes, as two builds from one package cache leave them."""
    first, second = tmp_path / "envs" / "a", tmp_path / "envs" / "b"
    for prefix in (first, second):
        (prefix / "lib").mkdir(parents=True)
    for n in range(files):
        (first / "lib" / f"m{n}.py").write_text(f"VALUE = {n}\n")
        os.link(first / "lib" / f"m{n}.py", second / "lib" / f"m{n}.py")
    return first, second


def test_a_file_linked_into_two_environments_is_read_once_by_a_process(
        tmp_path: Path, reads: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fp, "_SETTLED_NS", 0)  # these files were written a moment ago; in a re-run they are old
    first, second = _linked_pair(tmp_path, 5)
    state = tmp_path / "state"

    one = fp.fingerprint(first, fp.cache_file(state, first))
    two = fp.fingerprint(second, fp.cache_file(state, second))

    assert one == two  # the same names and contents
    assert len(reads) == 5
    assert {Path(p).parent.parent for p in reads} == {first}
    fp.fingerprint(second, None)  # None: every file is read, whatever this process knows
    assert len(reads) == 10


def test_a_file_changed_a_moment_ago_is_read_again_through_a_link(tmp_path: Path, reads: list[str]) -> None:
    """Where ctime ticks coarsely (kernels before multigrain timestamps, Linux 6.13; NFS), a same-size edit
    in the same tick, its mtime put back, leaves the key as it was: a digest is kept by inode only for a
    file whose ctime is older than that, so a young one is read through every link."""
    first, second = _linked_pair(tmp_path, 1)
    state = tmp_path / "state"

    fp.fingerprint(first, fp.cache_file(state, first))
    fp.fingerprint(second, fp.cache_file(state, second))

    assert [Path(p).parent.parent for p in reads] == [first, second]


def _one_file(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An environment of one module, and where its digests are kept."""
    prefix = tmp_path / "envs" / "a"
    (prefix / "lib").mkdir(parents=True)
    module = prefix / "lib" / "m.py"
    module.write_text("VALUE = 1\n")
    return prefix, module, fp.cache_file(tmp_path / "state", prefix)


def test_a_same_size_edit_in_the_tick_a_file_was_hashed_in_is_seen_by_the_next_look(
        tmp_path: Path, reads: list[str]) -> None:
    """The digest cache, like the digests kept by inode, keeps a file's digest only once its ctime is a
    second old: otherwise a coarse ctime (see above) lets an edit keep the key its cached digest has."""
    prefix, module, cache = _one_file(tmp_path)
    before = fp.fingerprint(prefix, cache)
    mtime = module.stat().st_mtime_ns
    module.write_text("VALUE = 2\n")
    os.utime(module, ns=(mtime, mtime))
    kept = msgspec.json.decode(cache.read_bytes()) if cache.exists() else {}  # whatever the first look kept
    for entry in kept.values():  # what a coarse ctime would have left: the key the digest was kept by
        entry[3] = module.stat().st_ctime_ns
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(msgspec.json.encode(kept))

    assert fp.fingerprint(prefix, cache) != before


def test_a_settled_file_is_read_once_across_processes(
        tmp_path: Path, reads: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fp, "_SETTLED_NS", 0)  # written a moment ago; in a re-run it is old
    prefix, module, cache = _one_file(tmp_path)
    before = fp.fingerprint(prefix, cache)
    monkeypatch.setattr(fp, "_by_inode", {})  # a new process: only the cache on disk knows the file

    assert fp.fingerprint(prefix, cache) == before
    assert reads == [str(module)]


def test_a_regular_file_swapped_for_a_fifo_after_its_stat_counts_as_unreadable(tmp_path: Path) -> None:
    """Between the listing's stat and the read, a file can become a FIFO whose writer sends nothing: the
    read must neither wait nor fail the whole fingerprint."""
    fifo = tmp_path / "swapped"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        assert fp._digest(os.fspath(fifo)).startswith("unreadable:")
    finally:
        os.close(writer)
    assert fp._digest(os.fspath(tmp_path / "gone")).startswith("unreadable:")

"""Bytecode for the noarch:python files of a new environment: compiled once, linked everywhere.

conda compiles a noarch:python package's `.py` files for each environment it links them into.
The same package (pip, setuptools, a site's own libraries) lands in dozens of environments on
one python, and compiling it again each time was most of a build. So a `.pyc` compiled for one
environment is kept in the package cache, under the interpreter's build and the package's
digest, and hard-linked into the next environment whose source file has the same size and
modification time (py-rattler links a package's files from its cache, so they do): the `.pyc`
header records exactly those, so Python accepts it as if it had been compiled there, and
importlib corrects the file name in its code objects on load. Python replaces a stale `.pyc`
by writing a new file and renaming it, never in place, so an environment can never change the
copy another one links to.

What is not in the cache is compiled by the environment's own interpreter, which is foreign
code: it runs in the sandbox, as the sandbox user, in parallel chunks, and writes only into its
scratch folder; condaqa moves each `.pyc` to where the interpreter would have put it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from condaqa import atomic, proc
from condaqa.errors import BuildError
from condaqa.sandbox.box import Sandbox
from condaqa.vocab import Stage

COMPILE_TIMEOUT = 1800.0
CHUNK = 400  # sources per compiling process: a process starts in tens of milliseconds, compiles 400 in seconds
_TAG = re.compile(r"[a-z]+-\d+")
# Runs in the environment's interpreter (Python 2.7 and 3.x): compile source number i of the list (NUL
# between paths, which no path holds) to <scratch>/<i>.pyc, naming the source as itself, and write the
# interpreter's cache tag ("" on 2.x).
_COMPILE = """
import io, py_compile, sys
out = sys.argv[1]
for i, source in enumerate(io.open(out + "/sources", encoding="utf-8").read().split(u"\\0")):
    try:
        py_compile.compile(source, cfile="%s/%d.pyc" % (out, i), dfile=source, doraise=True)
    except py_compile.PyCompileError:
        pass
tag = getattr(getattr(sys, "implementation", None), "cache_tag", None) or ""
with open(out + "/tag", "w") as handle:
    handle.write(tag)
"""


@dataclass(frozen=True)
class Job:
    """The noarch:python sources of one environment to compile (paths relative to `prefix`), by record."""

    prefix: Path
    env: str
    sources: dict[str, list[str]]  # record file name in conda-meta -> its .py files
    keys: dict[str, str]  # record file name -> the package's digest
    interpreter: str  # the python package's digest: bytecode is kept per interpreter build ("" keeps none)


def compiled(job: Job, sandbox: Sandbox, cache: Path) -> dict[str, str]:
    """source -> its `.pyc` (relative to the prefix) for every source that compiles, from the cache where it can."""
    done: dict[str, str] = {}
    todo: dict[str, list[str]] = {}
    for record, sources in job.sources.items():
        kept = job.interpreter and job.keys[record]
        linked = _from_cache(job, cache / job.interpreter / job.keys[record], sources) if kept else {}
        done.update(linked)
        todo[record] = [s for s in sources if s not in linked]
    fresh = _compile(job, sandbox, [s for sources in todo.values() for s in sources])
    done.update(fresh)
    for record, sources in todo.items():
        if sources and job.interpreter and job.keys[record]:
            _keep(job, cache / job.interpreter / job.keys[record], sources, fresh)
    return done


def _from_cache(job: Job, folder: Path, sources: list[str]) -> dict[str, str]:
    """Link the cached `.pyc` of each source whose size and mtime are those it was compiled from."""
    try:
        index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    linked = {}
    for source in sources:
        entry = index.get(source)
        if not isinstance(entry, list) or len(entry) != 3 or not isinstance(entry[0], str):
            continue
        pyc, mtime, size = entry
        try:
            st = (job.prefix / source).stat()
            if (int(st.st_mtime), st.st_size) != (mtime, size):
                continue
            _place(folder / pyc, job.prefix / pyc, link=True)
        except OSError:
            continue
        linked[source] = pyc
    return linked


def _keep(job: Job, folder: Path, sources: list[str], fresh: dict[str, str]) -> None:
    """Keep the `.pyc` compiled here for `sources` (one package's) in the cache, with what they were compiled from."""
    index = {}
    for source in sources:
        if source not in fresh:
            continue
        st = (job.prefix / source).stat()
        _place(job.prefix / fresh[source], folder / fresh[source], link=True)
        index[source] = [fresh[source], int(st.st_mtime), st.st_size]
    if index:
        atomic.write_text(folder / "index.json", json.dumps(index, sort_keys=True))


def _compile(job: Job, sandbox: Sandbox, sources: list[str]) -> dict[str, str]:
    """Compile `sources` with the environment's python in the sandbox, in chunks on every core."""
    python = job.prefix / "bin" / "python"
    sources = [s for s in sources if _utf8(s)]  # the rest compile when first imported
    if not sources or not python.exists():
        return {}
    chunks = [sources[i:i + CHUNK] for i in range(0, len(sources), CHUNK)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(chunks), os.cpu_count() or 1)) as pool:
        results = list(pool.map(lambda chunk: _compile_chunk(job, sandbox, python, chunk), chunks))
    return {source: pyc for result in results for source, pyc in result.items()}


def _compile_chunk(job: Job, sandbox: Sandbox, python: Path, sources: list[str]) -> dict[str, str]:
    with sandbox.room(job.env, python=python) as room:
        (room.scratch / "sources").write_text("\0".join(str(job.prefix / s) for s in sources), encoding="utf-8")
        done = room.run([str(python), "-Wi", "-E", "-s", "-c", _COMPILE, str(room.scratch)],
                        what="compiling the bytecode", timeout=COMPILE_TIMEOUT, environ=proc.foreign_environ())
        if not done.ok:
            raise BuildError(f"{done.problem('compiling the bytecode')}: {done.tail(5)}", stage=Stage.INSTALL)
        tag = _tag(room.scratch / "tag")
        placed = {}
        for i, source in enumerate(sources):
            made = room.scratch / f"{i}.pyc"
            if made.is_file() and not made.is_symlink():
                pyc = _pyc_path(source, tag)
                _place(made, job.prefix / pyc, link=False)
                placed[source] = pyc
    return placed


def _utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _tag(path: Path) -> str:
    """The interpreter's cache tag ("" for Python 2), as it wrote it: foreign output, so checked."""
    try:
        tag = path.read_text(encoding="ascii")[:32]
    except (OSError, UnicodeDecodeError):
        raise BuildError("compiling the bytecode: the interpreter did not say its cache tag",
                         stage=Stage.INSTALL) from None
    if tag and not _TAG.fullmatch(tag):
        raise BuildError(f"compiling the bytecode: the interpreter's cache tag {tag!r} is not one",
                         stage=Stage.INSTALL)
    return tag


def _pyc_path(source: str, tag: str) -> str:
    """Where the interpreter looks for the bytecode of `source` (PEP 3147's __pycache__, or beside it on 2.x)."""
    if not tag:
        return source + "c"
    path = Path(source)
    return str(path.parent / "__pycache__" / f"{path.stem}.{tag}.pyc")


def _place(source: Path, target: Path, *, link: bool) -> None:
    """Put `source` at `target` by one rename (a hard link of it, or a copy that condaqa owns)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if link:
            os.unlink(tmp)
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
        else:
            shutil.copyfile(source, tmp)
            os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

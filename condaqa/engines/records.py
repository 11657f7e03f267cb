"""Leave an environment built by py-rattler as conda would: bytecode compiled and listed, specs recorded.

conda compiles the `.py` files of noarch:python packages when it links them and lists the
`.pyc` files in the package's record (`pyc_file` entries), so `conda remove` deletes them and
nothing untracked appears when the environment first imports them. It also records the spec
each requested package was installed for (`requested_spec`, the string "None" for
dependencies, conda 4.8 to 26.1). py-rattler 0.28 does neither.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path

from condaqa import atomic, proc
from condaqa.errors import BuildError
from condaqa.plan.entries import parse_conda
from condaqa.vocab import Stage

COMPILE_TIMEOUT = 1800.0
# Runs in the environment's python, which may be as old as 2.7: nothing newer than 2.7 and 3.5 share.
# Python 2's py_compile returns None and writes `source` + "c" beside the source, where conda 4.3 lists it.
_COMPILE = """
import json, py_compile, sys
done = []
for source in sys.stdin.read().splitlines():
    try:
        done.append((source, py_compile.compile(source, doraise=True) or source + "c"))
    except py_compile.PyCompileError:
        pass  # conda skips what does not compile (py2-only files in old packages)
with open(sys.argv[1], "wb") as out:
    out.write(json.dumps(done).encode("utf-8"))
"""


def finish(prefix: Path, requested: Iterable[str], records: Iterable[str]) -> None:
    """Compile the noarch:python sources of the records named `records` (file names in conda-meta),
    list their bytecode, and record `requested_spec`, as conda does."""
    wanted = {e.name: e.text for e in filter(None, map(parse_conda, requested))}
    meta = prefix / "conda-meta"
    loaded = {name: json.loads((meta / name).read_text(encoding="utf-8")) for name in records}
    compiled = _compile(prefix, [f for r in loaded.values() if r.get("noarch") == "python"
                                 for f in r.get("files", []) if f.endswith(".py")])
    for name, record in loaded.items():
        record["requested_spec"] = wanted.get(record["name"], "None")
        pycs = [compiled[f] for f in record.get("files", []) if f in compiled]
        if pycs:
            record["files"] = [*record["files"], *pycs]
            paths = record.setdefault("paths_data", {"paths_version": 1, "paths": []})
            paths["paths"] = [*paths.get("paths", []), *({"_path": p, "path_type": "pyc_file"} for p in pycs)]
        atomic.write_text(meta / name, json.dumps(record, indent=2) + "\n")


def _compile(prefix: Path, sources: list[str]) -> dict[str, str]:
    """source path -> its bytecode's path, both relative to the prefix, compiled by the environment's python."""
    python = prefix / "bin" / "python"
    if not sources or not python.exists():
        return {}
    listing = "\n".join(str(prefix / s) for s in sources).encode()
    with tempfile.TemporaryDirectory() as scratch:  # a file, not stdout: the list outgrows proc's output limit
        result = Path(scratch) / "compiled.json"
        done = proc.run([str(python), "-Wi", "-E", "-s", "-c", _COMPILE, str(result)], environ=proc.foreign_environ(),
                        timeout=COMPILE_TIMEOUT, stdin=listing)
        if not done.ok:
            raise BuildError(f"{done.problem('compiling the bytecode')}: {done.tail(5)}", stage=Stage.INSTALL)
        pairs = json.loads(result.read_text(encoding="utf-8"))
    return {str(Path(source).relative_to(prefix)): str(Path(pyc).relative_to(prefix)) for source, pyc in pairs}

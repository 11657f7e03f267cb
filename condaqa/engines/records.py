"""Leave an environment built by py-rattler as conda would: bytecode compiled and listed, specs recorded.

conda compiles the `.py` files of noarch:python packages when it links them and lists the
`.pyc` files in the package's record (`pyc_file` entries), so `conda remove` deletes them and
nothing untracked appears when the environment first imports them. It also records the spec
each requested package was installed for (`requested_spec`, the string "None" for
dependencies, conda 4.8 to 26.1). py-rattler 0.28 does neither.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from condaqa import atomic
from condaqa.engines import bytecode
from condaqa.plan.entries import parse_conda
from condaqa.sandbox.box import Sandbox


def finish(prefix: Path, env: str, requested: Iterable[str], records: Iterable[str], *, sandbox: Sandbox,
           cache: Path) -> None:
    """Compile the noarch:python sources of the records named `records` (file names in conda-meta),
    list their bytecode, and record `requested_spec`, as conda does; `cache` keeps the bytecode."""
    wanted = {e.name: e.text for e in filter(None, map(parse_conda, requested))}
    meta = prefix / "conda-meta"
    loaded = {name: json.loads((meta / name).read_text(encoding="utf-8")) for name in records}
    noarch = {name: [f for f in r.get("files", []) if f.endswith(".py")]
              for name, r in loaded.items() if r.get("noarch") == "python"}
    interpreter = _digest(next((json.loads(p.read_text(encoding="utf-8")) for p in meta.glob("python-[0-9]*.json")),
                               {}))
    job = bytecode.Job(prefix, env, {n: s for n, s in noarch.items() if s}, {n: _digest(loaded[n]) for n in noarch},
                       interpreter)
    compiled = bytecode.compiled(job, sandbox, cache) if job.sources else {}
    for name, record in loaded.items():
        record["requested_spec"] = wanted.get(record["name"], "None")
        pycs = [compiled[f] for f in record.get("files", []) if f in compiled]
        if pycs:
            record["files"] = [*record["files"], *pycs]
            paths = record.setdefault("paths_data", {"paths_version": 1, "paths": []})
            paths["paths"] = [*paths.get("paths", []), *({"_path": p, "path_type": "pyc_file"} for p in pycs)]
        atomic.write_text(meta / name, json.dumps(record, indent=2) + "\n")


def _digest(record: dict[str, object]) -> str:
    """What names a package build exactly: its sha256 (or md5), else its file name ("" without a record)."""
    for key in ("sha256", "md5", "fn"):
        value = record.get(key)
        if isinstance(value, str) and value and "/" not in value and not value.startswith("."):
            return value
    return ""

"""Hostile input costs nothing: YAML alias bombs and oversized files against `condaqa sanitize`.

    python benchmarks/bench_hostile.py [--repeat 5]

Each input is sanitized by the real command in its own process; the wall time and the peak
memory of that process are measured against `condaqa sanitize` of a plain environment file
(interpreter start and imports included in both), so the difference is what the hostile input
adds. Targets (issue #10): an alias bomb costs under a second and under 100 MB more. The selftests assert only
that each is refused with a message naming the file (selftests/test_hostile.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _common import PYTHON, log, run, table, verdict, write_results

TARGET_SECONDS = 1.0
TARGET_EXTRA_MIB = 100.0
PLAIN = "name: plain\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy=1.26\n  - pip:\n" \
        "      - requests==2.31.0\n"


def bomb(levels: int, inside_dependencies: bool) -> str:
    """Nested aliases: each level lists the one below nine times, 9**levels strings in all."""
    lines = ["name: bomb", 'a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 9) + "]")
    last = f"*a{levels - 1}"
    lines.append(f"dependencies: [{last}]" if inside_dependencies else f"dependencies: [python]\nextra: {last}")
    return "\n".join(lines) + "\n"


INPUTS = {
    "plain environment file (the reference)": PLAIN,
    "alias bomb, 9^7 nodes, in a key of its own": bomb(7, False),
    "alias bomb, 9^7 nodes, inside dependencies": bomb(7, True),
    "alias bomb, 9^9 nodes, inside dependencies": bomb(9, True),
    "5 MiB of YAML (over the size cap)": "name: big\ndependencies:\n" + "  - x\n" * (5 << 18),
    "deeply nested lists (10,000 levels)": "name: deep\ndependencies: " + "[" * 10_000 + "]" * 10_000 + "\n",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per input; the fastest counts")
    args = parser.parse_args(argv)
    rows, measured = [], {}
    with tempfile.TemporaryDirectory(prefix="condaqa-hostile-") as scratch:
        for label, text in INPUTS.items():
            path = Path(scratch) / f"input-{len(measured)}.yml"
            path.write_text(text, encoding="utf-8")
            log(f"sanitize: {label} ({len(text.encode())} bytes)")
            runs = [run([PYTHON, "-m", "condaqa.cli", "sanitize", str(path), "--out", str(Path(scratch) / "out")])
                    for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r.seconds)
            measured[label] = {"bytes": len(text.encode()), "exit": best.returncode, "seconds": round(best.seconds, 3),
                               "peak_mib": round(max(r.peak_tree_mib for r in runs), 1),
                               "message": (best.stderr.strip().splitlines() or [""])[-1][:200]}
    reference = measured["plain environment file (the reference)"]
    for label, m in measured.items():
        extra_s, extra_mib = m["seconds"] - reference["seconds"], m["peak_mib"] - reference["peak_mib"]
        ok = label.startswith("plain") or (extra_s < TARGET_SECONDS and extra_mib < TARGET_EXTRA_MIB)
        m.update(extra_seconds=round(extra_s, 3), extra_mib=round(extra_mib, 1), met=ok)
        rows.append([label, m["bytes"], m["exit"], m["seconds"], f"{extra_s:+.3f}", m["peak_mib"], f"{extra_mib:+.1f}",
                     verdict(ok)])
    table(f"condaqa sanitize of hostile input (best of {args.repeat})",
          ["input", "bytes", "exit", "seconds", "extra s", "peak MiB", "extra MiB", "< 1 s and < 100 MiB extra"], rows)
    write_results("hostile", {"inputs": measured, "repeat": args.repeat,
                              "targets": {"seconds_max": TARGET_SECONDS, "extra_mib_max": TARGET_EXTRA_MIB}})
    return 0 if all(m["met"] for m in measured.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

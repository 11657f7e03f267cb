"""Shared helpers of the benchmarks: timing, peak memory, commands, tables and results JSON.

Every benchmark is a script run by hand (`python benchmarks/bench_<name>.py`), not a timed
test. Each writes benchmarks/results/<name>.json with the machine it ran on (or into
$CONDAQA_BENCH_RESULTS: a trial run with small arguments leaves the measured figures alone).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = Path(os.environ.get("CONDAQA_BENCH_RESULTS", BENCH / "results"))
WORK = Path(os.environ.get("CONDAQA_BENCH_WORK", BENCH / ".work"))
PYTHON = sys.executable

# Measure a normal installation, where Python caches bytecode: a sandbox that sets
# PYTHONDONTWRITEBYTECODE makes every process (each engine child, each pytest worker)
# compile condaqa from source again. Both sides of every comparison run without it.
BYTECODE_VAR_WAS = os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# Each measured command waits until other work uses fewer than QUIET_CORES cores (at most
# QUIET_MAX_WAIT seconds); what other work used during the run is recorded as foreign_cpu_s.
QUIET_CORES = float(os.environ.get("CONDAQA_BENCH_QUIET_CORES", "0.3"))
QUIET_MAX_WAIT = float(os.environ.get("CONDAQA_BENCH_QUIET_WAIT", "600"))


def machine() -> dict:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "PYTHONDONTWRITEBYTECODE_unset_for_the_runs": BYTECODE_VAR_WAS is not None,
        "loadavg_1min_at_end": round(os.getloadavg()[0], 2),  # others' work on the machine skews figures
    }


def write_results(name: str, data: dict) -> Path:
    """benchmarks/results/<name>.json: the figures, the machine, the command that produced them."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "benchmark": name,
        "command": f"python benchmarks/bench_{name}.py" + "".join(f" {a}" for a in sys.argv[1:]),
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **data,
    }
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def table(title: str, headers: list[str], rows: list[list[object]]) -> str:
    """A small plain-text table (also valid Markdown)."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [f"\n{title}", "| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=False)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + " |" for r in cells[1:]]
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- running and measuring commands ------------------------------------------------------


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children_map() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def tree_rss_kib(root: int) -> int:
    """Resident memory of a process and all its descendants, in KiB (Linux /proc)."""
    tree = _children_map()
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += _rss_kib(pid)
        todo.extend(tree.get(pid, ()))
    return total


class TreeSampler:
    """Samples the summed RSS of a process tree every `interval` seconds; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:  # a /proc walk costs ~2 ms of CPU
        self.pid, self.interval, self.peak_kib = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, tree_rss_kib(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Run:
    """One measured command: wall seconds, exit code, peak memory, output."""

    cmd: list[str]
    seconds: float
    returncode: int
    peak_tree_mib: float  # sampled sum over the process tree
    peak_process_mib: float  # largest single process (getrusage of the waited-for children)
    stdout: str = ""
    stderr: str = ""
    extra: dict = field(default_factory=dict)
    foreign_cpu_s: float = 0.0  # CPU seconds the rest of the machine used during the run
    cpu_s: float = 0.0  # CPU seconds of the command and what it waited for (user + system)
    busy_before: float = 0.0  # cores busy with other work just before the run
    started_at: float = 0.0  # time.time() when the command started (after waiting for quiet)

    def summary(self) -> dict:
        return {"seconds": round(self.seconds, 3), "returncode": self.returncode,
                "peak_tree_mib": round(self.peak_tree_mib, 1), "peak_process_mib": round(self.peak_process_mib, 1),
                "foreign_cpu_s": round(self.foreign_cpu_s, 1)}

    def check(self) -> Run:
        if self.returncode != 0:
            tail = "\n".join((self.stdout + "\n" + self.stderr).strip().splitlines()[-30:])
            raise SystemExit(f"command failed (exit {self.returncode}): {' '.join(self.cmd)}\n{tail}")
        return self


# Runs argv[1:] and reports its own children's peak RSS: a fresh process per measurement, so
# RUSAGE_CHILDREN covers exactly the measured command and what it waited for.
_MEASURE = (
    "import json, resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[1:])\n"
    "use = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "sys.stderr.write('\\n@@peak ' + json.dumps([rc, use.ru_maxrss, use.ru_utime + use.ru_stime]) + '\\n')\n"
    "sys.exit(rc)\n"
)


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:9]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def machine_busy(seconds: float = 1.0) -> float:
    """How many cores were busy over the next `seconds` (0 .. cores)."""
    b0, t0 = _cpu_jiffies()
    time.sleep(seconds)
    b1, t1 = _cpu_jiffies()
    return (b1 - b0) / max(1, t1 - t0) * (os.cpu_count() or 1)


def wait_quiet(threshold: float = QUIET_CORES, max_wait: float = QUIET_MAX_WAIT) -> float:
    """Wait until others use less than `threshold` cores (a shared machine skews every figure)."""
    started = time.monotonic()
    busy = machine_busy()
    told = False
    while busy > threshold and time.monotonic() - started < max_wait:
        if not told:
            log(f"waiting for the machine to be quiet ({busy:.1f} cores busy with other work)")
            told = True
        busy = machine_busy(2.0)
    if busy > threshold:
        log(f"warning: measuring on a busy machine ({busy:.1f} cores busy with other work)")
    return busy


def run(cmd: list[str], *, cwd: Path = REPO, env: dict | None = None, quiet: bool = True) -> Run:
    """Run `cmd` on a quiet machine, timing it from start to exit, sampling its memory and
    measuring how much CPU other work on the machine took meanwhile."""
    full_env = {**os.environ, **(env or {})}
    busy_before = wait_quiet()
    jiffies_before = _cpu_jiffies()[0]
    started_at = time.time()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [PYTHON, "-c", _MEASURE, *cmd], cwd=cwd, env=full_env, text=True,
        stdout=subprocess.PIPE if quiet else None, stderr=subprocess.PIPE,
    )
    with TreeSampler(proc.pid) as sampler:
        out, err = proc.communicate()
    seconds = time.perf_counter() - started
    machine_cpu = (_cpu_jiffies()[0] - jiffies_before) / os.sysconf("SC_CLK_TCK")
    peak, own_cpu = 0, 0.0
    lines = err.splitlines()
    for line in reversed(lines):
        if line.startswith("@@peak "):
            _, peak, own_cpu = json.loads(line[len("@@peak "):])
            lines.remove(line)
            break
    measured = Run(cmd, seconds, proc.returncode, sampler.peak_kib / 1024, peak / 1024, out or "", "\n".join(lines))
    # CPU the machine spent beyond the measured command (the sampler's own is a few %).
    measured.foreign_cpu_s = max(0.0, machine_cpu - own_cpu)
    measured.cpu_s = own_cpu
    measured.busy_before = busy_before
    measured.started_at = started_at
    return measured


def self_peak_mib() -> float:
    """This process's own peak RSS so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pytest_cmd(site_toml: Path, workers: int | str, *extra: str) -> list[str]:
    """The qualification run as a site runs it: the shipped suite, `-n N` (a count or "auto"), `--site PATH`.

    Run it from the benchmark's work folder: reports go to reports/ of the folder pytest runs from.
    """
    return [PYTHON, "-m", "pytest", "--pyargs", "condaqa.suite", "-n", str(workers), "--site", str(site_toml), "-q",
            "-p", "no:cacheprovider", *extra]


def condaqa_cmd(site_toml: Path, *args: str) -> list[str]:
    return [PYTHON, "-m", "condaqa.cli", "--site", str(site_toml), *args]

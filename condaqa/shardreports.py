"""The reports of a sharded qualification: each shard's part, and the merge into the site's reports.

A shard writes reports/junit-I-of-N.xml (pytest's own JUnit) and reports/shard-I-of-N.json (its
part: which environments, which host, when, its exit status, and the assignment it computed). Merging
reads every part of the newest run (the parts that carry the newest part's assignment), writes one
reports/junit.xml with every test case and, for each environment, the facts its own shard recorded,
regenerates the summary from the results (which read the same whatever host wrote them), and names
the shards that are missing. Once none is missing, the test times it read become the durations the
next run's assignment balances.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from condaqa import atomic, locks, report, shards
from condaqa.kernels.specs import Kernel
from condaqa.manifest import Environment
from condaqa.site import Site

_PART = re.compile(r"shard-(\d+)-of-(\d+)\.json")


@dataclass(frozen=True)
class Part:
    shard: int
    total: int
    assignment: str
    environments: list[str]
    host: str
    pid: int
    started: str
    finished: str
    exit: int

    @property
    def junit(self) -> str:
        return f"junit-{self.shard}-of-{self.total}.xml"


@dataclass
class Merged:
    total: int = 0
    present: list[Part] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # "shard 2 of 3" and why, in words
    junit: Path | None = None
    summary: Path | None = None

    def words(self) -> list[str]:
        if not self.total:
            return ["no shard has written its part yet"]
        hosts = ", ".join(f"{p.shard} on {p.host}" for p in self.present) or "none"
        lines = [f"merged {len(self.present)} of {self.total} shards (shard {hosts}) into {self.junit} "
                 f"and {self.summary}"]
        lines += [f"missing: {m}" for m in self.missing]
        return lines


def part_file(site: Site, shard: shards.Shard) -> Path:
    return site.reports_dir / f"shard-{shard.suffix}.json"


def write_part(site: Site, shard: shards.Shard, assignment: dict[str, int], started: str, exit_status: int) -> Path:
    """This shard is done: what it ran, where and when (its JUnit is pytest's, written beside it)."""
    part = Part(shard.index, shard.total, shards.digest(assignment),
                sorted(n for n, i in assignment.items() if i == shard.index), locks.host(), os.getpid(), started,
                locks.now(), exit_status)
    path = part_file(site, shard)
    atomic.write_text(path, json.dumps(asdict(part), indent=1) + "\n")
    return path


def _parts(site: Site) -> list[Part]:
    found = []
    for path in sorted(site.reports_dir.glob("shard-*-of-*.json")):
        if not _PART.fullmatch(path.name):
            continue
        try:
            found.append(Part(**json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError):
            continue  # a part cut short by a crash: its shard counts as missing
    return found


def merge(site: Site, manifest: Sequence[Environment], kernels: Sequence[Kernel], sandbox: str,
          installation: str) -> Merged:
    """Merge the newest run's parts into reports/junit.xml and the summary; say which shards are missing."""
    parts = _parts(site)
    if not parts:
        return Merged()
    newest = max(parts, key=lambda p: (p.finished, p.shard))
    run = {p.shard: p for p in parts if (p.total, p.assignment) == (newest.total, newest.assignment)}
    merged = Merged(newest.total)
    for index in range(1, newest.total + 1):
        part = run.get(index)
        if part is None:
            other = next((p for p in parts if p.shard == index and p.total == newest.total), None)
            merged.missing.append(f"shard {index} of {newest.total}: "
                                  + (f"its part is from another run (finished {other.finished} on {other.host}); "
                                     "run it again" if other else "no part yet (still running, not started, or "
                                     "killed: run it again)"))
        elif not (site.reports_dir / part.junit).is_file():
            merged.missing.append(f"shard {index} of {newest.total}: {part.junit} is missing")
        else:
            merged.present.append(part)
    names = [e.name for e in manifest]
    merged.junit, seconds = _merge_junit(site, merged.present, names)
    merged.summary = report.write_summary(site, manifest, kernels, sandbox, installation)[0]
    if not merged.missing:
        shards.save_durations(site, installation, {**shards.load_durations(site, installation), **seconds})
    return merged


def _owner(prop: str, names: Sequence[str]) -> str:
    return next((n for n in sorted(names, key=len, reverse=True) if prop.startswith(n + ".")), "")


def _merge_junit(site: Site, parts: Sequence[Part], names: Sequence[str]) -> tuple[Path, dict[str, float]]:
    """One testsuite with every part's test cases; an environment's properties from the shard that ran it.
    Returns the file and the seconds each environment's tests took."""
    root = ET.Element("testsuites", name="pytest tests")
    suite = ET.SubElement(root, "testsuite", name="pytest")
    props = ET.SubElement(suite, "properties")
    totals = dict.fromkeys(("errors", "failures", "skipped", "tests"), 0)
    wall, stamps, seen = 0.0, [], set()
    seconds: dict[str, float] = {}
    for part in parts:
        owned = set(part.environments)
        ET.SubElement(props, "property", name=f"condaqa.shard.{part.shard}",
                      value=f"host {part.host}, pid {part.pid}, {part.started} to {part.finished}, exit {part.exit}")
        for one in ET.parse(site.reports_dir / part.junit).getroot().iter("testsuite"):
            for key in totals:
                totals[key] += int(one.get(key, "0"))
            wall = max(wall, float(one.get("time", "0")))
            stamps.append(one.get("timestamp", ""))
            for prop in one.iterfind("properties/property"):
                name = prop.get("name", "")
                env = _owner(name, names)
                if name in seen or (env and env not in owned):
                    continue
                seen.add(name)
                props.append(prop)
            for case in one.iterfind("testcase"):
                suite.append(case)
                env = case.get("classname", "").removeprefix("condaqa.")
                if env in owned:
                    seconds[env] = seconds.get(env, 0.0) + float(case.get("time", "0"))
    suite.attrib.update({k: str(v) for k, v in totals.items()})
    suite.set("time", f"{wall:.3f}")
    suite.set("timestamp", min((s for s in stamps if s), default=""))
    suite.set("hostname", ",".join(sorted({p.host for p in parts})))
    path = site.reports_dir / "junit.xml"
    ET.indent(root)
    atomic.write_text(path, ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")
    return path, seconds


def run_seconds(junit: Path, names: Sequence[str]) -> dict[str, float]:
    """Seconds each environment's tests took in one JUnit file (a whole run's)."""
    seconds: dict[str, float] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        env = case.get("classname", "").removeprefix("condaqa.")
        if env in names:
            seconds[env] = seconds.get(env, 0.0) + float(case.get("time", "0"))
    return seconds

"""`condaqa sanitize`: the rules run on any environment file, from this site or another machine."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from condaqa.channels import RepodataIndex
from condaqa.errors import SpecError
from condaqa.inputs import ENVIRONMENT_FILE, control_character, name_problem, read_text
from condaqa.plan.findings import Finding
from condaqa.plan.model import BuildPlan, PostStep
from condaqa.plan.rules import Context, apply_rules, local_sources
from condaqa.spec.format import EnvSpec, parse_spec
from condaqa.vocab import PlanSource, Rule, Severity

# A channel is a name (conda-forge, pytorch/label/nightly), a URL, or an absolute folder; nothing a shell would run.
_CHANNEL = re.compile(r"^(?:[A-Za-z0-9_.+-]+(?:/[A-Za-z0-9_.+-]+)*|[a-z][a-z0-9+.-]*://[^\s'\"`$;&|<>()]*|/[^\s'\"`$;&|<>()]*)$")


@dataclass
class Sanitized:
    """An environment file after the rules: the buildable spec, its post-create steps, the findings."""

    spec: EnvSpec
    post: tuple[PostStep, ...]
    findings: list[Finding]


def sanitize_spec(spec: EnvSpec, ctx: Context) -> Sanitized:
    """Run the rules on a spec read from any file; keys conda's env format lacks are named, not kept."""
    findings = []
    if spec.prefix:
        findings.append(ctx.finding(Rule.SPEC_KEYS, "prefix", "dropped", f"prefix: {spec.prefix[:200]} names the "
                                    f"exporting machine's folder{_platform_of(spec.prefix)}; conda ignores it"))
    for key in spec.extra:
        findings.append(ctx.finding(Rule.SPEC_KEYS, key[:80], "dropped", f"{key[:80]!r} is not a key of conda's "
                                    "environment format (name, channels, dependencies, variables)", Severity.WARNING))
    channels = []
    for channel in spec.channels:
        if _CHANNEL.match(channel) and control_character(channel) is None:
            channels.append(channel)
        else:
            findings.append(ctx.finding(Rule.SPEC_KEYS, channel[:80], "dropped", f"channel {channel[:80]!r} is not a "
                                        "channel name, URL or folder", Severity.ERROR))
    plan = BuildPlan(env=spec.name, conda=tuple(spec.dependencies), pip=tuple(spec.pip), channels=tuple(channels),
                     source=PlanSource.FILE)
    plan, found = apply_rules(plan, ctx)
    out = EnvSpec(spec.name, channels, list(plan.conda), list(plan.pip), dict(spec.variables))
    return Sanitized(out, plan.post, findings + found)


def _platform_of(prefix: str) -> str:
    if re.match(r"^[A-Za-z]:\\", prefix):
        return " (exported on Windows: win-only packages such as vc or vs2015_runtime will not exist for Linux)"
    if prefix.startswith(("/Users/", "/opt/anaconda3")):
        return " (probably exported on macOS: osx-only packages will not exist for Linux)"
    return ""


def sanitize_file(path: Path, *, index: RepodataIndex | None = None, legacy: frozenset[str] = frozenset(),
                  keep_builds: bool = False, platform: str = "", site_pip_args: tuple[str, ...] = ()) -> Sanitized:
    """`condaqa sanitize FILE`: SpecError (naming the file) for anything that is not an environment file."""
    try:
        text = read_text(path, ENVIRONMENT_FILE, SpecError)
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    if text.lstrip().startswith("# packages in environment at"):
        raise SpecError(f"{path}: this is `conda list` output, not an environment file; write one with "
                        "`conda env export -n ENV --no-builds > FILE.yml` (or `condaqa export`)")
    spec = parse_spec(text, str(path), default_name=path.stem)
    problem = name_problem(spec.name)
    if problem:
        raise SpecError(f"{path}: name: {spec.name[:80]!r} is not an environment name conda accepts: {problem}")
    if not spec.dependencies and not spec.pip:
        raise SpecError(f"{path}: the environment file lists no dependencies")
    present = local_sources(BuildPlan(spec.name, (), tuple(spec.pip)), None)
    ctx = Context(spec.name, legacy, index, None, keep_builds, platform, str(path),
                  present=frozenset(p for p in present if p.exists()), site_pip_args=site_pip_args)
    return sanitize_spec(spec, ctx)

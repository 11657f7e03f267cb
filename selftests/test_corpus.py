"""`condaqa sanitize` on real environment files published in public projects (data/corpus).

For every file: the rules that need no channel run; the output is a valid conda environment
spec (its keys, entry syntax, no prefix, no build strings); nothing is silently lost (each input
entry, pip option lines included, is in the output, a post-create step, or named in a
finding); the command exits 1 exactly for the files that get error findings (the pip option
lines that add an index); and a file that is not an environment file gets a clear error naming it.
SOURCES.tsv says which files are not environment files.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import rattler
import yaml

from condaqa.cli import main
from condaqa.errors import SpecError
from condaqa.plan import foreign as sanitize
from condaqa.plan.entries import parse_conda, parse_pip
from condaqa.spec.format import dump_spec, load_spec, parse_spec
from condaqa.vocab import Rule, Severity

# A copy of the shared corpus travels with the selftests; CONDAQA_CORPUS points at another one.
CORPUS = Path(os.environ.get("CONDAQA_CORPUS", Path(__file__).resolve().parent / "data" / "corpus"))
EXPORTS = CORPUS / "exports"
FILES = sorted(EXPORTS.glob("*.y*ml"))


def not_environment_files() -> set[str]:
    """Files SOURCES.tsv describes as not being environment files."""
    sources = CORPUS / "SOURCES.tsv"
    if not sources.is_file():
        return set()
    rows = csv.DictReader(sources.read_text(encoding="utf-8").splitlines(), delimiter="\t")
    return {row["file"] for row in rows if "not an env" in " ".join(str(v) for v in row.values()).lower()}


INVALID = not_environment_files()


def has_errors(result: sanitize.Sanitized) -> bool:
    return any(f.severity is Severity.ERROR for f in result.findings)


def named(result: sanitize.Sanitized) -> set[str]:
    """Every package or entry a finding or a post-create step names."""
    names = set()
    for finding in result.findings:
        names |= {part.strip() for part in finding.package.split(",")}
    names |= {step.requirement for step in result.post}
    return names


def conda_name(entry: str) -> str:
    parsed = parse_conda(entry)
    assert parsed is not None, f"{entry!r} is not a conda entry"
    return parsed.name


@pytest.mark.parametrize("path", [f for f in FILES if f.name not in INVALID], ids=lambda p: p.name)
def test_sanitized_spec_is_valid_and_loses_nothing_silently(path: Path) -> None:
    source = load_spec(path)
    result = sanitize.sanitize_file(path)
    text = dump_spec(result.spec)
    data = yaml.safe_load(text)
    assert set(data) <= {"name", "channels", "dependencies", "variables"} and data["name"] == source.name
    again = parse_spec(text, "output")
    for entry in again.dependencies:
        spec = rattler.MatchSpec(entry)
        assert spec.name is not None and spec.build is None, f"{entry!r} keeps a build string"
    assert all(parse_pip(line) is not None for line in again.pip)

    kept = {conda_name(e) for e in again.dependencies}
    mentioned = named(result)
    for entry in source.dependencies:
        parsed = parse_conda(entry)
        assert (parsed and parsed.name in kept) or entry in mentioned, f"conda entry {entry!r} silently lost"
    for line in source.pip:
        pip_entry = parse_pip(line)
        assert line in again.pip or line in mentioned or (pip_entry and pip_entry.name in mentioned) or any(
            line in step for step in mentioned), f"pip entry {line!r} silently lost"


# The corpus files whose build an error finding stops, read by a person: a pip section that adds a package
# source (--extra-index-url) the site's pip_args do not give.
STOPPED = {"py39_pytorch_rocm.yml"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_command_writes_a_spec_or_refuses_the_file_by_name(
        path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sanitize", str(path), "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    if path.name in INVALID:
        assert code == 2 and err.startswith(f"error: {path}: ") and "Traceback" not in err + out
        assert not list(tmp_path.iterdir())
        with pytest.raises(SpecError, match=str(path)):
            sanitize.sanitize_file(path)
        return
    assert code == (1 if path.name in STOPPED else 0), err  # 1 exactly when an error finding
    written = tmp_path / f"{path.stem}.yml"
    assert f"{path} -> {tmp_path / path.stem}.yml" in out
    assert load_spec(written).dependencies and (tmp_path / f"{path.stem}.findings.json").is_file()


def test_the_corpus_has_the_formats_it_promises() -> None:
    """Guard against an emptied or swapped corpus silently passing the tests above."""
    texts = {p.name: p.read_text(encoding="utf-8") for p in FILES}
    assert INVALID and INVALID.issubset(texts)
    assert any("prefix: C:\\" in t for t in texts.values()) and any("git+" in t for t in texts.values())
    assert any("- pip:" in t for t in texts.values()) and any("--extra-index-url" in t for t in texts.values())


def test_a_corpus_file_with_an_extra_index_gets_an_error_and_the_others_pass() -> None:
    """Both exit codes of the command are exercised: the pip option lines are refused, nothing else in these
    real-world files is."""
    results = {p.name: sanitize.sanitize_file(p) for p in FILES if p.name not in INVALID}
    failing = {name for name, result in results.items() if has_errors(result)}
    with_index = {name for name in results if "--extra-index-url" in (EXPORTS / name).read_text(encoding="utf-8")}
    assert with_index and failing == with_index and failing != set(results)
    for name in with_index:
        refused = [f for f in results[name].findings if f.severity is Severity.ERROR and f.rule is Rule.PIP_OPTIONS]
        assert refused and all(f.package.startswith("--extra-index-url") for f in refused), name
        assert not any(line.startswith("-") for line in results[name].spec.pip), name

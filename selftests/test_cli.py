"""The `condaqa` command on a demo site: output, files written, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn

import pytest

from condaqa.cli import main
from condaqa.manifest import Environment, load_manifest, site_manifest
from condaqa.plan.planning import plan_environment
from condaqa.sandbox.box import Sandbox
from condaqa.site import Site
from condaqa.spec.format import load_spec
from condaqa.vocab import Rule, Severity


def run(site: Site, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--site", str(site.file), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_explains_commands_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    out = capsys.readouterr().out
    assert caught.value.code == 0
    for word in ("inventory", "export", "replicate", "status", "cutover", "rollback", "Exit codes"):
        assert word in out


def test_inventory_lists_current_and_its_kernels(demo_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(demo_site, capsys, "inventory")
    assert code == 0
    hlink = next(line for line in out.splitlines() if line.startswith("hlink "))
    assert hlink.split()[-1] == "hlink"  # the kernel spec naming v4.3/envs/hlink
    assert "super_important_jupyter_kernel" in out and "environments in" in out


def test_inventory_ini_is_a_valid_starter_manifest(
        demo_site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(demo_site, capsys, "inventory", "--ini")
    assert code == 0
    (tmp_path / "environments.ini").write_text(out)
    envs = load_manifest(tmp_path / "environments.ini")
    assert {e.name for e in envs} == set(demo_site.installation("current").environments())
    # nothing runs from the demo: only the environments kernel specs run are proposed REPLICATE (the gate needs it)
    assert {e.name for e in envs if e.replicate} == {"hlink", "super_important_jupyter_kernel"}
    assert "# usage: kernel spec hlink runs it; no process seen -> REPLICATE\nhlink = REPLICATE" in out


def test_export_writes_one_spec_per_manifest_environment(demo_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, _ = run(demo_site, capsys, "export")
    assert code == 0
    names = [e.name for e in site_manifest(demo_site)]
    assert sorted(p.stem for p in demo_site.specs_dir.glob("*.yml")) == sorted(names)
    assert not list(demo_site.specs_dir.glob(".*"))  # no temp files left behind
    assert load_spec(demo_site.specs_dir / "hlink.yml").name == "hlink"


def test_export_stops_at_an_unreadable_environment_once_the_one_before_is_written(
        pip_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    """Each export is written while the next environment is read: a read that fails still lets the write
    before it finish and be named, and nothing after it is exported."""
    names = [e.name for e in site_manifest(pip_site)]
    broken = pip_site.current_installation().env_prefix(names[1]) / "conda-meta" / "zz-1-0.json"
    broken.write_text("{not json")
    code, out, err = run(pip_site, capsys, "export")
    assert code == 2 and f"{broken}: not valid JSON, so not a conda-meta record" in err
    assert out.splitlines() == [f"{names[0]}: {pip_site.specs_dir / names[0]}.yml"]
    assert [p.stem for p in pip_site.specs_dir.glob("*.yml")] == [names[0]]


def test_replicate_one_then_nothing_to_do(demo_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(demo_site, capsys, "replicate", "--env", "hlink")
    assert code == 0 and "[1/1] hlink: built in" in out
    assert f"1 environment built, 0 up to date, 0 failed in {demo_site.qa_link}" in out
    code, out, _ = run(demo_site, capsys, "replicate", "--env", "hlink")
    assert code == 0 and "hlink: up to date" in out
    assert f"0 environments built, 1 up to date, 0 failed in {demo_site.qa_link}" in out  # not "1 of 1 built"
    code, out, _ = run(demo_site, capsys, "replicate", "--env", "hlink", "--rebuild")
    assert code == 0 and "[1/1] hlink: rebuilt in" in out  # a build that replaced one, unlike the first


def test_replicate_failure_exits_1_and_names_the_log(kernel_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    demo_site = kernel_site
    record = next((demo_site.root / "v4.3" / "envs" / "hlink" / "conda-meta").glob("linkage-*.json"))
    data = json.loads(record.read_text().replace('"version": "2.2.0"', '"version": "9.9.9"'))
    del data["paths_data"]  # as conda 4.3 wrote it: nothing in production to rescue 9.9.9 from
    record.write_text(json.dumps(data))
    code, out, _ = run(demo_site, capsys, "replicate", "--env", "hlink")
    log = next(line.split("log: ", 1)[1] for line in out.splitlines() if "log: " in line)
    assert code == 1 and "linkage-9.9.9-pyh_0 not rescued" in Path(log).read_text(encoding="utf-8")
    assert "hlink: FAILED [missing-version] at preflight: " in out and "9.9.9" in out
    assert "hint: " in out and "hlink.log" in out


def test_export_from_history_writes_what_users_asked_for(demo_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(demo_site, capsys, "export", "--env", "nhis_reformat", "--from-history")
    spec = load_spec(demo_site.specs_dir / "from-history" / "nhis_reformat.yml")
    assert not (demo_site.specs_dir / "nhis_reformat.yml").exists()  # the pinned export is not overwritten
    assert code == 0
    assert spec.dependencies == ["fixedwidth", "pip", "python"] and spec.pip == ["codebook==1.2.0"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("replicate", "--env", "old_not_used"), "old_not_used is export-only"),
        (("export", "--env", "ghost"), "no environment 'ghost' in the manifest"),
    ],
)
def test_bad_arguments_exit_2(demo_site: Site, capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
                              message: str) -> None:
    code, _, err = run(demo_site, capsys, *args)
    assert code == 2 and message in err and err.startswith("error: ")


def test_bad_manifest_exits_2_naming_file_and_line_and_writes_nothing(
        demo_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    demo_site.manifest.write_text("[environments]\nhlink = REPLICATE\nhlink = export\n")
    code, _, err = run(demo_site, capsys, "export")
    assert code == 2 and "environments.ini:3: environment 'hlink' is listed twice" in err
    assert not demo_site.specs_dir.exists()


def test_status_tells_where_links_point(demo_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(demo_site, capsys, "status")
    assert code == 0
    assert "current   -> v4.3" in out and "qa        -> v4.8" in out
    assert "rollback would return to" in out


def test_site_is_accepted_after_the_command_too(demo_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--site", str(demo_site.file)]) == 0
    assert "current   -> v4.3" in capsys.readouterr().out
    assert main(["--site", "/nowhere/site.toml", "status", "--site", str(demo_site.file)]) == 0  # the last one wins


def test_a_hand_edited_export_is_named_as_ignored_and_where_fixes_go(
        demo_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(demo_site, capsys, "export", "--env", "hlink")[0] == 0
    path = demo_site.specs_dir / "hlink.yml"
    env = next(e for e in load_manifest(demo_site.manifest) if e.name == "hlink")
    assert [f for f in plan_environment(demo_site, env)[1] if f.rule is Rule.EDITED_EXPORT] == []
    path.write_text(path.read_text().replace("linkage=2.2.0", "linkage=2.1.0"))
    [edited] = [f for f in plan_environment(demo_site, env)[1] if f.rule is Rule.EDITED_EXPORT]
    assert edited.severity is Severity.WARNING and edited.action == "ignored by the build"
    assert str(path) in edited.reason and "manifests/overrides/hlink.yml" in edited.hint


def test_demo_root_works_outside_a_clone_with_no_site_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """condaqa installed from a wheel, run in a folder without manifests/: `condaqa demo --root DIR` builds."""
    monkeypatch.delenv("CONDAQA_SITE", raising=False)
    assert not (tmp_path / "manifests").exists()
    assert main(["demo", "--no-real-conda", "--root", str(tmp_path / "demo")]) == 0, capsys.readouterr().err
    assert (tmp_path / "demo" / "current").is_symlink() and (tmp_path / "demo" / "kernels").is_dir()
    assert "site ready at" in capsys.readouterr().out


def test_inventory_json_lists_every_environment_of_current(
        demo_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    code, out, _ = run(demo_site, capsys, "inventory", "--json")
    facts = json.loads(out)
    assert code == 0 and {f["name"] for f in facts} == set(demo_site.installation("current").environments())
    hlink = next(f for f in facts if f["name"] == "hlink")
    assert hlink["kernels"] == ["hlink"] and hlink["size"] > 0 and hlink["user"]


def test_quiet_says_only_what_was_done_and_verbose_adds_each_build_log(
        demo_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    code, quiet, _ = run(demo_site, capsys, "-q", "replicate", "--env", "hlink")
    assert code == 0 and len(quiet.splitlines()) == 1 and quiet.startswith("1 environment built, 0 up to date"), quiet
    code, normal, _ = run(demo_site, capsys, "replicate", "--env", "hlink")
    assert code == 0 and normal.splitlines()[0] == "[1/1] hlink: up to date" and "log:" not in normal, normal
    code, verbose, _ = run(demo_site, capsys, "replicate", "--env", "hlink", "--verbose")
    [log] = [line.split("log: ", 1)[1] for line in verbose.splitlines() if "log: " in line]
    assert code == 0 and "[1/1] hlink: up to date" in verbose and Path(log).is_file(), verbose
    with pytest.raises(SystemExit) as caught:
        main(["replicate", "-q", "-v"])
    assert caught.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_a_bug_is_an_internal_error_with_its_traceback_and_exit_3(
        demo_site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(site: Site, sandbox: Sandbox, env: Environment, *, rebuild: bool = False) -> NoReturn:
        raise KeyError("a bug")

    monkeypatch.setattr("condaqa.commands.replicate.build", broken)
    code, _, err = run(demo_site, capsys, "replicate", "--env", "hlink")
    assert code == 3 and "Traceback" in err and "KeyError: 'a bug'" in err
    assert err.rstrip().endswith("Please report it with the traceback above")

"""condaqa usage, inventory --ini's proposal, the cutover's in-use refusal, the owners' pages and --notify,
against real processes started from the demo's environments (a python sleeping in one, a kernel from its spec),
a real sampler log, /proc read as another user, a real headless browser and a webhook server on loopback."""

from __future__ import annotations

import datetime
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from condaqa.cli import main
from condaqa.errors import ConfigError
from condaqa.kernels.specs import find_kernels
from condaqa.manifest import site_manifest
from condaqa.qualification import runs
from condaqa.site import Site, load_site
from condaqa.usage import processes, sampler

EXPORT_ONLY = "old_not_used"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def run(site: Site, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["--site", str(site.file), *argv])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture
def sleeper(demo_site: Site, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A python of the export-only environment, sleeping, started through `current` as a user would."""
    python = demo_site.current_link / "envs" / EXPORT_ONLY / "bin" / "python"
    process = subprocess.Popen([str(python), "-c", "import time; time.sleep(120)"], cwd=tmp_path)
    yield process
    process.kill()
    process.wait()


def test_a_python_running_in_an_export_only_environment_is_named_proposed_and_blocks_the_cutover_until_it_ends(
        demo_site: Site, sleeper: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(demo_site, capsys, "usage")
    assert code == 0
    assert re.search(rf"^{EXPORT_ONLY}: in use now: 1 process\(es\) of root", out, re.M), out
    assert f"pid {sleeper.pid}: " in out
    assert re.search(r"^scratch_jdoe: not seen in use", out, re.M)

    code, out = run(demo_site, capsys, "usage", "--json")
    found = {e["env"]: e for e in json.loads(out)["environments"]}
    assert [(e["pid"], e["user"], e["now"]) for e in found[EXPORT_ONLY]["evidence"] if e["now"]] == \
        [(sleeper.pid, "root", True)]

    code, out = run(demo_site, capsys, "inventory", "--ini")
    assert f"\n{EXPORT_ONLY} = REPLICATE\n" in out and "\nscratch_jdoe = export\n" in out
    assert re.search(rf"# usage: in use now: .*pid {sleeper.pid}.* -> REPLICATE\n{EXPORT_ONLY} = REPLICATE", out)

    for argv in (("cutover", "--dry-run"), ("cutover",)):
        code, out = run(demo_site, capsys, *argv)
        assert code == 1
        assert f"{EXPORT_ONLY}: in use now by 1 process(es): pid {sleeper.pid} (root)" in out, out
    assert demo_site.link_target(demo_site.current_name) == "v4.3"

    sleeper.kill()
    sleeper.wait()
    code, out = run(demo_site, capsys, "cutover", "--dry-run")
    assert "in use now" not in out


def test_a_python_started_by_a_relative_path_is_found_from_its_working_folder(demo_site: Site) -> None:
    """`cd ROOT && current/envs/x/bin/python`: a venv-style python's exe lies outside the environment, and
    its command line names it only relative to the folder it was started from."""
    relative = f"current/envs/{EXPORT_ONLY}/bin/python"
    process = subprocess.Popen([relative, "-c", "import time; time.sleep(120)"], cwd=demo_site.root)
    try:
        found = [p for p in processes.processes() if p.pid == process.pid]
        prefix = Path(os.path.realpath(demo_site.current_link / "envs" / EXPORT_ONLY))
        assert [(s.process.pid, s.how) for s in processes.sightings(found, {EXPORT_ONLY: [prefix]})] == \
            [(process.pid, "command line")]
    finally:
        process.kill()
        process.wait()


def test_a_kernel_started_from_its_spec_is_named_with_its_spec(demo_site: Site, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    kernel = next(k for k in find_kernels(demo_site) if k.name == "hlink")
    connection = tmp_path / "kernel-test.json"
    argv = [a.replace("{connection_file}", str(connection)) for a in kernel.argv]
    process = subprocess.Popen(argv, env={**os.environ, **kernel.env}, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _, out = run(demo_site, capsys, "usage")
    finally:
        process.kill()
        process.wait()
    assert re.search(rf"^  kernel: .* root: pid {process.pid}: kernel hlink \(", out, re.M), out
    assert re.search(r"^hlink: in use now: 1 process\(es\) of root", out, re.M)


def test_the_sampler_log_remembers_a_process_after_it_ended(demo_site: Site, sleeper: subprocess.Popen[bytes],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(demo_site, capsys, "usage", "--sample")
    assert code == 0 and out.startswith("sampled: 1 process(es)")
    sleeper.kill()
    sleeper.wait()
    folder = sampler.folder(demo_site)
    log = next(folder.glob("*.jsonl"))
    with log.open("a") as handle:
        handle.write('{"time": "cut short by a full disk\n')
    sampler.append(demo_site, [], {}, 0, datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=60))

    code, out = run(demo_site, capsys, "usage", "--since", "1d")
    assert re.search(rf"^{EXPORT_ONLY}: last seen \S+ \S+ by root \(.*time.sleep\(120\)\)", out, re.M), out
    assert "sampler: 1 sample(s)" in out and "1 unreadable line(s)" in out

    code, out = run(demo_site, capsys, "inventory", "--ini", "--since", "1d")
    assert f"\n{EXPORT_ONLY} = REPLICATE\n" in out
    code, out = run(demo_site, capsys, "cutover", "--dry-run")
    assert f"warning: {EXPORT_ONLY}: seen in use" in out and "within the last 14 days" in out
    assert "in use now" not in out


def test_proc_of_other_users_unreadable_is_said_and_their_command_lines_still_match(
        demo_site: Site, sleeper: subprocess.Popen[bytes], tmp_path: Path) -> None:
    """Read /proc as `nobody` (setpriv): root's sleeper has no readable exe, cwd or maps, yet its command line
    names the environment; nobody's own process is read whole."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to read /proc as another user")
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    source = Path(__file__).resolve().parent.parent
    environ = {"PYTHONPATH": f"{source}:{sysconfig.get_paths()['purelib']}", "PATH": os.environ["PATH"]}
    python = next((p for p in (sys.executable, "/usr/bin/python3")  # pyenv's, under /root, may be closed to nobody
                   if subprocess.run([*as_nobody, p, "-c", "import condaqa.usage.processes"], cwd="/", env=environ,
                                     capture_output=True).returncode == 0), None)
    if python is None:
        pytest.skip(f"nobody can run neither {sys.executable} nor /usr/bin/python3 with condaqa")
    own = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "sleep", "60"])
    prefix = os.path.realpath(demo_site.current_link / "envs" / EXPORT_ONLY)
    through = str(demo_site.current_link / "envs" / EXPORT_ONLY)  # nobody cannot resolve the site's links
    script = f"""
import json, sys
from pathlib import Path
from condaqa.usage import processes
found = [processes.read_process(Path("/proc/{sleeper.pid}"), 0), processes.read_process(Path("/proc/{own.pid}"), 0)]
seen = processes.sightings(found, {{"{EXPORT_ONLY}": [Path({prefix!r}), Path({through!r})]}})
print(json.dumps({{"unreadable": [list(p.unreadable) for p in found], "seen": [(s.process.pid, s.how) for s in seen],
                  "words": processes.unreadable_words(found)}}))
"""
    try:
        done = subprocess.run([*as_nobody, python, "-c", script], capture_output=True, text=True, timeout=60, cwd="/",
                              env=environ)
    finally:
        own.kill()
        own.wait()
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts["unreadable"][0] == ["exe (Permission denied)", "cwd (Permission denied)",
                                      "mapped file (Permission denied)"]
    assert facts["unreadable"][1] == []
    assert facts["seen"] == [[sleeper.pid, "command line"]]
    assert facts["words"][0].startswith("1 process(es) of root: cwd (Permission denied)")
    assert "run as root" in facts["words"][0]


def test_usage_window_must_be_a_span(tmp_path: Path) -> None:
    site_file = tmp_path / "site.toml"
    site_file.write_text('[site]\nroot = "."\nusage_window = "two weeks"\n')
    with pytest.raises(ConfigError, match=r"usage_window: 'two weeks' is not a span of time"):
        load_site(site_file)


def _owner_site(demo_site: Site) -> Site:
    """The demo with an owner whose name is markup, to see it escaped."""
    toml = demo_site.manifest.with_suffix(".toml")
    text = toml.read_text().replace('owner = "former-staff"', 'owner = "<b>former</b> & staff"')
    toml.write_text(text)
    return demo_site


def _dom(page: Path, tmp_path: Path) -> str:
    assert CHROMIUM is not None
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           f"--user-data-dir={tmp_path / 'chromium'}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_report_owners_writes_a_page_per_owner_and_an_overview_that_a_browser_shows_offline(
        demo_site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = _owner_site(demo_site)
    code, out = run(site, capsys, "report", "--owners")
    assert code == 0, out
    reports = load_site(site.file).reports_dir  # condaqa writes reports where it runs from, as the CLI did here
    owners = reports / "owners"
    stems = sorted(p.stem for p in owners.glob("*.html"))
    assert stems == sorted(p.stem for p in owners.glob("*.md"))
    assert "b_former_b_staff" in stems and "root" in stems  # scratch_jdoe names no owner: its prefix's user
    assert len(stems) == 10
    for page in [reports / "overview.html", *owners.glob("*.html")]:
        text = page.read_text()
        assert "<b>former" not in text and not re.search(r"""(src|href)=["']?(https?:|//)""", text)
    assert "&lt;b&gt;former&lt;/b&gt; &amp; staff" in (owners / "b_former_b_staff.html").read_text()
    nhis = (owners / "nhis-team.md").read_text()
    assert "## nhis_reformat" in nhis and "## noarch_in_pip" in nhis and "What you must do" in nhis
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine: the pages were checked as text only")
    overview = _dom(reports / "overview.html", tmp_path)
    assert overview.count('<tr class="env">') == len(site_manifest(site))
    assert "Qualification of v4.8" in overview
    owner_page = _dom(owners / "nhis-team.html", tmp_path)
    assert owner_page.count('<tr class="env">') == 2 and 'id="env-nhis_reformat"' in owner_page


def test_the_overview_shows_the_last_runs_oldest_first_and_passes_over_a_cut_line(
        demo_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    runs.record(demo_site, runs.finished("v4.8", "", ["passed", "failed", "exported"], 1, 61.0))
    with runs.log_file(demo_site, "v4.8").open("a") as log:
        log.write('{"at": "2026-12-01 02:0')  # a full disk cut the write
    runs.record(demo_site, runs.finished("v4.8", "2/3", ["passed", "pending"], 0, 30.0))
    first, second = runs.last(demo_site, "v4.8", 5)
    assert (first.qualified, first.failed, first.pending, first.exit) == (2, 1, 0, 1)
    assert (second.shard, second.qualified, second.pending) == ("2/3", 1, 1)
    code, out = run(demo_site, capsys, "report", "--owners")
    assert code == 0, out
    page = (load_site(demo_site.file).reports_dir / "overview.html").read_text()
    over_time = page.split("Qualification over time")[1].split("<h2>")[0]
    rows = [row for row in over_time.split("<tr>") if "<td>" in row]
    assert len(rows) == 2 and "61 s" in rows[0] and f"{second.host} (shard 2/3)" in rows[1], over_time


class _Hook(http.server.BaseHTTPRequestHandler):
    posted: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Hook.posted.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def test_notify_posts_each_owner_their_summary_to_the_webhook(demo_site: Site,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks/abc"
    _Hook.posted.clear()
    try:
        code, out = run(demo_site, capsys, "report", "--owners", "--notify", "--webhook", url, "--dry-run")
        assert code == 0 and _Hook.posted == []
        assert "would send to" in out and "| - nhis_reformat: never." in out
        code, out = run(demo_site, capsys, "report", "--owners", "--notify", "--webhook", url)
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0, out
    assert len(_Hook.posted) == 10 and out.count(": sent to http://127.0.0.1") == 10
    nhis = next(p["text"] for p in _Hook.posted if "(nhis-team)" in p["text"])
    assert "- nhis_reformat: never." in nhis and "- noarch_in_pip: never." in nhis and "nhis-team.html" in nhis

"""A local git repository holding a pure-Python project, for the demo's pip installs from git.

Its pyproject.toml names an in-tree PEP 517 backend (wheel_backend.py, standard library only),
so `pip install git+file:///...@<commit>` builds it offline, with build isolation and no index,
and pip records the commit in direct_url.json as it would for a project on a git server.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from condaqa import proc
from condaqa.errors import SiteError

PYPROJECT = """[build-system]
requires = []
build-backend = "wheel_backend"
backend-path = ["."]
"""

BACKEND = '''"""An in-tree PEP 517 backend: packs the project's package into a pure-Python wheel."""
import base64
import hashlib
import pathlib
import zipfile

NAME, VERSION = {name!r}, {version!r}
INFO = f"{{NAME}}-{{VERSION}}.dist-info"


def _digest(data):
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    root = pathlib.Path(__file__).parent
    files = {{p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / NAME).rglob("*.py"))}}
    files[f"{{INFO}}/METADATA"] = f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n".encode()
    files[f"{{INFO}}/WHEEL"] = (b"Wheel-Version: 1.0\\nGenerator: wheel_backend\\nRoot-Is-Purelib: true\\n"
                               b"Tag: py3-none-any\\n")
    record = [f"{{path}},sha256={{_digest(data)}},{{len(data)}}" for path, data in files.items()]
    files[f"{{INFO}}/RECORD"] = ("\\n".join(record + [f"{{INFO}}/RECORD,,"]) + "\\n").encode()
    name = f"{{NAME}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(pathlib.Path(wheel_directory) / name, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return name
'''

# Fixed identity and dates make the commit id the same on every machine.
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "condaqa demo", "GIT_AUTHOR_EMAIL": "demo@condaqa.invalid",
    "GIT_COMMITTER_NAME": "condaqa demo", "GIT_COMMITTER_EMAIL": "demo@condaqa.invalid",
    "GIT_AUTHOR_DATE": "2019-06-03T09:00:00+00:00", "GIT_COMMITTER_DATE": "2019-06-03T09:00:00+00:00",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}


def make_repo(folder: Path, name: str, version: str) -> str:
    """Write and commit the project `name` in `folder`; returns the commit id."""
    git = shutil.which("git")
    if git is None:
        raise SiteError("the demo site needs `git` on PATH (for its pip install from a git repository)")
    package = folder / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        f'"""{name} {version}: installed from a git repository in the condaqa demo."""\n'
        f"__version__ = {version!r}\n", encoding="utf-8")
    (folder / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (folder / "wheel_backend.py").write_text(BACKEND.format(name=name, version=version), encoding="utf-8")
    environ = proc.foreign_environ(_GIT_ENV)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", f"{name} {version}"],
                 ["rev-parse", "HEAD"]):
        done = proc.run([git, *args], environ=environ, timeout=120, cwd=folder)
        if not done.ok:
            raise SiteError(f"git {' '.join(args)} in {folder} failed: {done.stderr.strip()}")
    return done.stdout.strip()

"""site.toml: defaults, relative paths, the site chooser, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from condaqa.errors import ConfigError
from condaqa.site import load_site
from condaqa.sitefile import site_file


def test_relative_paths_resolve_against_the_site_file(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "site.toml").write_text('[site]\nroot = "../tree"\nchannels = ["main", "https://x.org/c"]\n')
    site = load_site(tmp_path / "m" / "site.toml")
    assert site.root == tmp_path / "tree"
    assert site.manifest == tmp_path / "m" / "environments.ini"
    assert site.checks_dir == tmp_path / "env_checks"
    assert site.current_link == tmp_path / "tree" / "current" and site.qa_link == tmp_path / "tree" / "qa"
    assert site.channel_urls() == [(tmp_path / "tree" / "main").as_uri(), "https://x.org/c"]
    assert site.expand("{root}/wheelhouse") == f"{tmp_path / 'tree'}/wheelhouse"


def test_environment_variable_chooses_the_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[site]\nroot = "/pkg/conda"\n')
    monkeypatch.setenv("CONDAQA_SITE", str(path))
    assert site_file() == path
    assert site_file(tmp_path / "other.toml") == tmp_path / "other.toml"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[site]\n", "[site] needs 'root'"),
        ("root = '/x'\n", "missing [site] table"),
        ("[site]\nroot = '/x'\ncolour = 1\n", "unknown key(s) in [site]: colour"),
        ("[site]\nroot = '/x'\nchannels = 'main'\n", "[site] channels must be a list of strings"),
        ("[site]\nroot = '/x'\ndemo = 'yes'\n", "[site] demo must be bool"),
        ("[site]\nroot = '/x'\ncurrent = 'a/b'\n", "current must be a plain name"),
        ("[site]\nroot = \n", "Invalid value (at line 2"),
    ],
)
def test_bad_site_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "site.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_site(path)
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_missing_site_file_says_how_to_choose(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"site file not found .*CONDAQA_SITE"):
        load_site(tmp_path / "nope.toml")

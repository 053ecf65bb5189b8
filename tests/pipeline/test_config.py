from pathlib import Path

import pytest

from pipeline.config import Config, load_config
from pipeline.errors import PipelineError


def test_defaults_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[walk]\ndefault_branches = ["refs/heads/trunk"]\n[fetch]\nmax_file_bytes = 1000\n')
    config = load_config(path)
    assert config.walk.default_branches == ("refs/heads/trunk",)
    assert config.fetch.max_file_bytes == 1000
    assert config.decode == Config().decode
    assert config.digest() != Config().digest()


def test_execution_settings_do_not_change_the_digest(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[execution]\nfetch_threads = 2\n")
    config = load_config(path)
    assert config.execution.fetch_threads == 2
    assert config.digest() == Config().digest()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[fetch]\nmax_bytes = 3\n", r"\[fetch\] has unknown key\(s\) max_bytes"),
        ("[fech]\n", r"unknown config section\(s\) fech"),
        ("[fetch]\nmax_file_bytes = -1\n", r"max_file_bytes must be a positive integer"),
        ("[walk]\ndefault_branches = 'main'\n", r"default_branches must be a list of strings"),
        ("[walk\n", r"not valid TOML"),
    ],
)
def test_bad_config_gets_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(PipelineError, match=message):
        load_config(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="config file does not exist"):
        load_config(tmp_path / "nope.toml")

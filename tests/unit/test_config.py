"""Configuration loading: the shipped file, unknown keys, types, values, environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import SECTIONS, Config, load
from hub.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_hub_toml_loads_and_equals_the_built_in_defaults() -> None:
    shipped = load(REPO / "hub.toml", env={})
    defaults = Config()
    for section in SECTIONS:  # every section, so a new one cannot be forgotten
        assert getattr(shipped, section) == getattr(defaults, section), section


def test_default_binds_to_loopback() -> None:
    assert load(REPO / "hub.toml", env={}).http.host == "127.0.0.1"


def test_unknown_key_is_refused_naming_file_section_key_and_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "[http]\nprot = 1\n")
    with pytest.raises(ConfigError) as err:
        load(path, env={})
    message = str(err.value)
    assert str(path) in message and "[http]" in message and "'prot'" in message
    assert "port" in message  # what is allowed


def test_unknown_section_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown section or key 'smtpd'"):
        load(write(tmp_path, "[smtpd]\nport = 25\n"), env={})


def test_wrong_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[http\] port: must be a whole number, got 'x'"):
        load(write(tmp_path, '[http]\nport = "x"\n'), env={})


def test_bool_is_not_a_number(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be a whole number"):
        load(write(tmp_path, "[http]\nport = true\n"), env={})


def test_bad_value_is_refused_with_what_is_allowed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"port: 0 to 65535"):
        load(write(tmp_path, "[http]\nport = 70000\n"), env={})


def test_an_opt_out_text_that_says_nothing_of_opting_out_is_refused(tmp_path: Path) -> None:
    # WASPA: what is appended to a marketing text must itself tell how to opt out, or
    # every such message would go without one.
    with pytest.raises(ConfigError, match=r"marketing_optout_text: .*how to opt out"):
        load(write(tmp_path, '[messages]\nmarketing_optout_text = " Visit acme.co.za"\n'),
             env={})
    worded = load(write(tmp_path, '[messages]\nmarketing_optout_text = " SMS STOP to 31337"\n'),
                  env={})
    assert worded.messages.marketing_optout_text == " SMS STOP to 31337"


def test_invalid_toml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(write(tmp_path, "[http\n"), env={})


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[http]\nport = 9000\n")
    config = load(path, env={"SMSHUB_HTTP__PORT": "9100", "SMSHUB_HTTP__ENABLED": "no",
                             "SMSHUB_SIMULATOR__UNDELIVERED_SUFFIXES": "13, 99",
                             "SMSHUB_DISPATCHER__RETRY_BASE": "2"})
    assert config.http.port == 9100
    assert config.http.enabled is False
    assert config.simulator.undelivered_suffixes == ["13", "99"]
    assert config.dispatcher.retry_base == 2.0


def test_environment_with_unknown_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="SMSHUB_HTTP__PROT: unknown key 'prot'"):
        load(None, env={"SMSHUB_HTTP__PROT": "1", "SMSHUB_CONFIG": ""})


def test_environment_with_bad_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="SMSHUB_HTTP__PORT: must be a whole number"):
        load(None, env={"SMSHUB_HTTP__PORT": "eighty"})


def test_smshub_config_variable_selects_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[hub]\nlog_level = \"debug\"\n")
    assert load(None, env={"SMSHUB_CONFIG": str(path)}).hub.log_level == "debug"


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "nope.toml", env={})

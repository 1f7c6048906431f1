"""CLI papercuts a new user met (issue #17): which spool it opened, read commands that
would have made a new one, `config check --json` on a bad file, and a closed pipe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hub.cli import main
from hub.cli_base import spool_location

READ_COMMANDS = [["account", "list"], ["account", "show", "acme"], ["batch", "list"],
                 ["batch", "show", "b1"], ["status", "m1"], ["carriers", "--costs"]]


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with no hub.toml and no spool, the CLI started in it."""
    for var in ("SMSHUB_CONFIG", "SMSHUB_HUB__DATA_DIR", "SMSHUB_SPOOL__URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("argv", READ_COMMANDS, ids=" ".join)
def test_read_command_without_a_spool_refuses_and_creates_none(
        argv: list[str], elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    spool = elsewhere / "var" / "spool.db"
    assert f"smshub: no spool at {spool}; run `smshub db upgrade`" in err
    assert "--config" in err
    assert not (elsewhere / "var").exists()


@pytest.mark.postgres
def test_read_command_on_an_empty_postgresql_database_refuses(
        elsewhere: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SMSHUB_SPOOL__URL", pg_url)
    assert main(["account", "list"]) == 1
    assert "no spool at postgresql://" in capsys.readouterr().err


def test_cli_names_the_spool_it_opened_on_stderr(
        elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    named = f"smshub: spool {elsewhere / 'var' / 'spool.db'}"
    assert main(["account", "create", "acme"]) == 0  # a write command may create it
    assert named in capsys.readouterr().err.splitlines()
    assert main(["account", "list", "--json"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [named]
    assert json.loads(out)[0]["name"] == "acme"


def test_spool_location_never_shows_a_password() -> None:
    assert (spool_location("postgresql://hub:s3cret@db.example:5432/sms")
            == "postgresql://hub:***@db.example:5432/sms")
    assert spool_location("postgresql://db.example/sms") == "postgresql://db.example/sms"


def test_config_check_json_reports_a_bad_file_as_json(
        elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = elsewhere / "bad.toml"
    bad.write_text("[dispatcher]\nbatch_sise = 10\n")
    assert main(["--config", str(bad), "config", "check", "--json"]) == 2
    shown = json.loads(capsys.readouterr().out)
    assert shown["ok"] is False and shown["source"] == str(bad)
    assert "batch_sise" in shown["error"]


def test_output_into_a_closed_pipe_exits_quietly(elsewhere: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "hub", "config", "check", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={"PYTHONPATH": str(Path(__file__).parents[2])})
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `| head` that has read all it wants, before we write
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(30) == 141
    assert err == ""

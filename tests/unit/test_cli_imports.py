"""`smshub` commands import only what they use: `--help` and `config check` neither the
spool nor an adapter, a spool command the spool but no adapter (hub.app wires the servers,
clients and SMPP library only for the commands that run them: 0.6 s of imports), nor
Alembic when the spool is at the newest schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.cli import main

# Runs the command in a fresh interpreter and prints its exit code and the top-level
# packages it imported.
PROBE = """\
import contextlib, io, json, sys
from hub.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps([code, sorted({name.partition(".")[0] for name in sys.modules})]))
"""
# What only `smshub serve` (and the commands that reach a carrier or a mail route) need.
SERVING = {"adapters", "aiohttp", "uvicorn", "starlette", "httpx", "pyftpdlib", "aiosmtpd",
           "aiosmtplib", "lxml", "smpp34", "psycopg"}
SPOOL = {"spool", "sqlalchemy", "alembic"}


def imported(cwd: Path, *argv: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSHUB_")}
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    code, packages = json.loads(done.stdout.splitlines()[-1])
    assert code == 0, done.stderr
    return set(packages)


@pytest.fixture
def hub_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A hub directory (no hub.toml: the defaults) whose spool holds one account."""
    for var in ("SMSHUB_CONFIG", "SMSHUB_HUB__DATA_DIR", "SMSHUB_SPOOL__URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["account", "create", "acme"]) == 0
    return tmp_path


@pytest.mark.parametrize("argv", [["--help"], ["config", "check"]], ids=" ".join)
def test_help_and_config_check_import_neither_the_spool_nor_an_adapter(
        argv: list[str], tmp_path: Path) -> None:
    loaded = imported(tmp_path, *argv)
    assert "hub" in loaded
    assert loaded & (SERVING | SPOOL) == set()


@pytest.mark.parametrize("argv", [["account", "list"], ["batch", "list"]], ids=" ".join)
def test_a_spool_command_imports_the_spool_and_no_adapter(argv: list[str],
                                                          hub_dir: Path) -> None:
    loaded = imported(hub_dir, *argv)
    assert SPOOL - {"alembic"} <= loaded  # it did open the spool
    assert "alembic" not in loaded  # at the newest schema: placed without it
    assert loaded & SERVING == set()

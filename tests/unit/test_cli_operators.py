"""Operator basics from the command line (issue #17): API keys listed and revoked,
accounts disabled and enabled, messages listed and cancelled with credit refunded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hub.cli import main
from tests.factories import sa_minute_ahead


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Any:
    """cli(*argv) -> (exit code, parsed --json output or text) in a hub directory."""
    for var in ("SMSHUB_CONFIG", "SMSHUB_HUB__DATA_DIR", "SMSHUB_SPOOL__URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> tuple[int, Any]:
        code = main(list(argv))
        out = capsys.readouterr().out
        return code, json.loads(out) if "--json" in argv and out else out

    assert run("account", "create", "acme", "--credits", "10", "--price-per-segment", "1",
               "--sender-id", "ACME")[0] == 0
    return run


def test_api_keys_are_listed_by_id_and_revoked_by_id_or_whole_key(cli: Any) -> None:
    key = cli("account", "api-key", "acme")[1].strip()
    second = cli("account", "api-key", "acme")[1].strip()
    code, keys = cli("account", "api-keys", "acme", "--json")
    assert code == 0 and [k["revoked_at"] for k in keys] == [None, None]
    assert key not in json.dumps(keys) and keys[0]["key_id"] in key
    assert cli("account", "revoke-key", "acme", key)[0] == 0
    assert cli("account", "revoke-key", "acme", second.split("_")[1])[0] == 0
    assert all(k["revoked_at"] for k in cli("account", "api-keys", "acme", "--json")[1])
    assert cli("account", "revoke-key", "acme", "nosuchkey")[0] == 1


def test_disabled_account_is_refused_and_its_scheduled_message_stays(cli: Any) -> None:
    at = sa_minute_ahead(1).isoformat()
    code, sent = cli("send", "--account", "acme", "--to", "0821234567", "--text", "later",
                     "--at", at, "--json")
    assert code == 0 and sent["status"] == "scheduled"
    assert cli("account", "disable", "acme")[0] == 0
    assert "DISABLED" in cli("account", "show", "acme")[1]
    code, refused = cli("send", "--account", "acme", "--to", "0821234567", "--text", "x",
                        "--json")
    assert code == 1 and refused["code"] == "account_disabled"
    assert cli("status", sent["id"], "--json")[1]["status"] == "scheduled"
    assert cli("account", "enable", "acme")[0] == 0
    assert cli("send", "--account", "acme", "--to", "0821234567", "--text", "x")[0] == 0


def test_messages_are_listed_by_filter_and_cancelled_with_credit_refunded(cli: Any) -> None:
    at = sa_minute_ahead(1).isoformat()
    ids = [cli("send", "--account", "acme", "--to", "0821234567", "--text", t, "--at", at,
               "--json")[1]["id"] for t in ("one", "two")]
    code, listed = cli("message", "list", "--account", "acme", "--status", "scheduled",
                       "--since", "1h", "--json")
    assert code == 0 and {m["id"] for m in listed} == set(ids)
    assert cli("account", "show", "acme", "--json")[1]["balance"] == "8"
    code, result = cli("message", "cancel", ids[0], "--json")
    assert code == 0 and result == {"cancelled": 1, "not_cancelled": []}
    assert cli("status", ids[0], "--json")[1]["status"] == "cancelled"
    code, result = cli("message", "cancel", ids[0], "nosuchid", "--json")
    assert code == 1 and result == {"cancelled": 0, "not_cancelled": ["nosuchid"]}
    assert cli("message", "cancel", "--account", "acme")[0] == 0
    assert cli("account", "show", "acme", "--json")[1]["balance"] == "10"
    assert cli("message", "list", "--status", "scheduled")[1].strip() == "no messages"

"""Operator basics from the command line (issue #17): API keys listed, revoked and
expiring, accounts disabled, enabled and deleted, messages listed and cancelled with
credit refunded."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.clock import utcnow
from tests.clirun import hub_cli
from tests.factories import sa_minute_ahead


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Any:
    """cli(*argv) -> (exit code, parsed --json output or text) in a hub directory."""
    with_err = hub_cli(tmp_path, monkeypatch, capsys)

    def run(*argv: str) -> tuple[int, Any]:
        return with_err(*argv)[:2]

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


def test_api_key_expiry_is_set_at_creation_listed_changed_and_cleared(
        cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    code, made = cli("account", "api-key", "acme", "--expires", "1d", "--json")
    assert code == 0 and made["expires_at"]
    key_id = made["api_key"].split("_")[1]
    dated = cli("account", "api-key", "acme", "--expires", "2099-03-01", "--json")[1]
    # A date alone is the start of that day in the hub's timezone (UTC+2).
    assert dated["expires_at"] == "2099-02-28T22:00:00+00:00"
    assert cli("account", "api-key", "acme", "--expires", "2020-01-01")[0] == 1
    assert cli("account", "api-key", "acme", "--expires", "soon")[0] == 1
    keys = cli("account", "api-keys", "acme", "--json")[1]
    assert [k["state"] for k in keys] == ["active", "active"]
    later = utcnow() + timedelta(days=2)
    monkeypatch.setattr("hub.cli_keys.utcnow", lambda: later)
    keys = cli("account", "api-keys", "acme", "--json")[1]
    assert [k["state"] for k in keys] == ["expired", "active"]
    assert "EXPIRED" in cli("account", "api-keys", "acme")[1]
    code, never = cli("account", "expire-key", "acme", made["api_key"], "--never", "--json")
    assert code == 0 and never["expires_at"] is None and never["state"] == "active"
    code, again = cli("account", "expire-key", "acme", key_id, "--at", "2099-01-01T08:00",
                      "--json")
    assert code == 0 and again["expires_at"] == "2099-01-01T06:00:00+00:00"
    with pytest.raises(SystemExit):  # argparse: --at or --never
        cli("account", "expire-key", "acme", key_id)


def test_account_delete_asks_refuses_unsent_and_then_tombstones_the_account(
        cli: Any) -> None:
    at = sa_minute_ahead(1).isoformat()
    sent = cli("send", "--account", "acme", "--to", "0821234567", "--text", "later",
               "--at", at, "--json")[1]
    cli("account", "api-key", "acme")
    assert cli("account", "delete", "acme")[0] == 2  # no --yes, and no terminal to ask
    code, refused = cli("account", "delete", "acme", "--yes", "--json")
    assert code == 1 and not refused["deleted"] and refused["unsent"] == 1
    assert cli("status", sent["id"], "--json")[1]["status"] == "scheduled"
    code, done = cli("account", "delete", "acme", "--yes", "--cancel-queued", "--json")
    assert code == 0 and done["deleted"] and (done["cancelled"], done["keys_revoked"]) == (1, 1)
    assert done["refunded"] == "1" and done["account"]["balance"] == "10"
    assert cli("status", sent["id"], "--json")[1]["status"] == "cancelled"  # kept
    shown = cli("account", "show", "acme", "--json")[1]
    assert shown["deleted_at"] and not shown["enabled"]
    assert "DELETED" in cli("account", "list")[1]
    assert all(k["state"] == "revoked" for k in cli("account", "api-keys", "acme", "--json")[1])
    for revive in (("account", "enable", "acme"), ("account", "api-key", "acme"),
                   ("account", "mail", "acme", "--allow-sender", "ops@acme.example"),
                   ("account", "create", "acme"), ("account", "delete", "acme", "--yes")):
        assert cli(*revive)[0] == 1, revive
    code, refused = cli("send", "--account", "acme", "--to", "0821234567", "--text", "x",
                        "--json")
    assert code == 1 and refused["code"] == "account_disabled"

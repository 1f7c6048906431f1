"""`smshub webhook ...` through hub.cli.main: endpoints added (secret shown once),
listed, shown with their deliveries, rotated, disabled, enabled, replayed and removed;
and the same URL rules as the REST API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.clirun import Run, hub_cli

ALLOW_LOOPBACK = '[webhooks]\nallow_networks = ["127.0.0.1/32"]\n'


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Run:
    """cli(*argv) -> (exit code, parsed --json output or text, stderr)."""
    run = hub_cli(tmp_path, monkeypatch, capsys, ALLOW_LOOPBACK)
    assert run("account", "create", "acme", "--credits", "10")[0] == 0
    return run


def test_an_endpoint_is_managed_from_the_command_line(cli: Any) -> None:
    code, made, _ = cli("webhook", "add", "acme", "http://127.0.0.1:9/hook", "--events",
                        "message.delivered,message.failed", "--json")
    assert code == 0 and made["secret"].startswith("whsec_")
    assert made["events"] == ["message.delivered", "message.failed"]
    code, listed, _ = cli("webhook", "list", "--account", "acme", "--json")
    assert [e["id"] for e in listed] == [made["id"]] and "secret" not in listed[0]
    code, rotated, _ = cli("webhook", "rotate", made["id"], "--json")
    assert rotated["secret"] != made["secret"] and rotated["previous_secret_valid_until"]
    assert cli("webhook", "disable", made["id"])[0] == 0
    code, shown, _ = cli("webhook", "show", made["id"], "--json")
    assert shown["enabled"] is False and shown["deliveries"] == []
    assert cli("webhook", "enable", made["id"])[0] == 0
    code, replayed, _ = cli("webhook", "replay", made["id"], "--since", "1d", "--json")
    assert code == 0 and replayed == {"id": made["id"], "queued": 0}
    assert cli("webhook", "remove", made["id"])[0] == 0
    assert cli("webhook", "list", "--json")[1] == []
    code, _, err = cli("webhook", "show", made["id"])
    assert code == 1 and "no webhook endpoint" in err


@pytest.mark.parametrize(("url", "words"), [
    ("http://10.1.2.3/hook", "private address"),
    ("http://127.0.0.2/hook", "loopback"),
    ("http://169.254.169.254/", "link-local"),
    ("gopher://127.0.0.1/", "http:// or https://"),
    ("http://a:b@127.0.0.1/", "credentials"),
])
def test_the_cli_refuses_what_the_api_refuses(cli: Any, url: str, words: str) -> None:
    code, _, err = cli("webhook", "add", "acme", url)
    assert code == 2 and words in err
    assert cli("webhook", "list", "--json")[1] == []


def test_unknown_events_are_named(cli: Any) -> None:
    code, _, err = cli("webhook", "add", "acme", "http://127.0.0.1:9/", "--events", "sms")
    assert code == 2 and "unknown event sms" in err

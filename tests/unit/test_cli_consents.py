"""Consents and the audit export from the command line (issue #15): `smshub consent`
records, lists and withdraws an account's consents; `smshub audit export` writes each
message's times from the event table as CSV, a marketing message's hold included."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub import cpa
from tests.clirun import hub_cli


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Any:
    with_err = hub_cli(tmp_path, monkeypatch, capsys)

    def run(*argv: str) -> tuple[int, Any]:
        return with_err(*argv)[:2]

    assert run("account", "create", "acme", "--credits", "10", "--price-per-segment", "1",
               "--sender-id", "31337")[0] == 0
    return run


def next_sunday_morning() -> datetime:
    """10:00 on the next Sunday but one in the hub's zone: always ahead, always held."""
    today = datetime.now(cpa.ZONE).replace(hour=10, minute=0, second=0, microsecond=0)
    return today + timedelta(days=(6 - today.weekday()) % 7 + 7)


def test_consents_are_recorded_listed_and_withdrawn(cli: Any) -> None:
    code, added = cli("consent", "add", "082 123 4567", "--account", "acme",
                      "--note", "signed form 12", "--json")
    assert code == 0 and added["created"] and added["number"] == "+27821234567"
    assert not cli("consent", "add", "0821234567", "--account", "acme", "--json")[1]["created"]
    code, listed = cli("consent", "list", "--account", "acme", "--json")
    assert code == 0 and [(c["number"], c["note"]) for c in listed] == [
        ("+27821234567", "signed form 12")]
    assert cli("consent", "remove", "0821234567", "--account", "acme")[0] == 0
    assert cli("consent", "remove", "0821234567", "--account", "acme")[0] == 1
    assert cli("consent", "list", "--account", "acme", "--json")[1] == []


def test_a_consent_added_from_the_cli_releases_held_messages(cli: Any) -> None:
    code, sent = cli("send", "--account", "acme", "--to", "0821234567", "--text", "Sale!",
                     "--class", "marketing", "--at", next_sunday_morning().isoformat(),
                     "--json")
    assert code == 0, sent
    code, before = cli("status", sent["id"], "--json")
    assert before["held"] is not None
    code, added = cli("consent", "add", "0821234567", "--account", "acme", "--json")
    assert code == 0 and added["created"] and added["released"] == 1
    code, after = cli("status", sent["id"], "--json")
    assert after["held"] is None and "released" in after["events"][-1]["detail"]


def test_audit_export_shows_the_hold_and_neutralises_cells(cli: Any, tmp_path: Path) -> None:
    sunday = next_sunday_morning()
    code, sent = cli("send", "--account", "acme", "--to", "0821234567", "--text", "Sale!",
                     "--class", "marketing", "--at", sunday.isoformat(), "--json")
    assert code == 0, sent
    code, _ = cli("send", "--account", "acme", "--to", "0831234567", "--text", "OTP",
                  "--json")
    assert code == 0
    today = datetime.now(cpa.ZONE).date()
    out = tmp_path / "audit.csv"
    assert cli("audit", "export", "--account", "acme", "--from", str(today - timedelta(1)),
               "--to", str(today + timedelta(1)), "--output", str(out))[0] == 0
    rows = list(csv.DictReader(out.read_text(encoding="utf-8").splitlines()))
    assert len(rows) == 2
    held = next(r for r in rows if r["class"] == "marketing")
    assert held["recipient"] == "'+27821234567"  # "+" starts a formula in a spreadsheet
    assert held["accepted_status"] == "scheduled" and held["held_at"] == held["accepted_at"]
    assert held["held_reason"].startswith("held: no direct marketing on a Sunday")
    assert held["submitted_at"] == "" and held["status_now"] == "scheduled"
    other = next(r for r in rows if r["class"] == "transactional")
    assert other["held_at"] == "" and other["accepted_status"] == "accepted"
    # Another period holds none of them.
    assert cli("audit", "export", "--account", "acme", "--from", str(today + timedelta(2)),
               "--to", str(today + timedelta(3)), "--output", str(out))[0] == 0
    assert out.read_text(encoding="utf-8").count("\n") == 1  # the header alone


def test_privacy_export_lists_the_numbers_consents(cli: Any) -> None:
    assert cli("consent", "add", "0821234567", "--account", "acme", "--note", "form 4")[0] == 0
    code, held = cli("privacy", "export", "0821234567", "--json")
    assert code == 0
    assert [(c["number"], c["note"]) for c in held["consents"]] == [("+27821234567", "form 4")]

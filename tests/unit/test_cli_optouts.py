"""Opt-outs and inbound messages from the command line (issue #12): a STOP lists the
number, `smshub send --class marketing` is refused for it, lists are kept by hand, by
file and globally, `account set` changes what an opt-out stops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.clirun import hub_cli


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Any:
    """cli(*argv) -> (exit code, parsed --json output or text) in a hub directory."""
    with_err = hub_cli(tmp_path, monkeypatch, capsys)

    def run(*argv: str) -> tuple[int, Any]:
        return with_err(*argv)[:2]

    assert run("account", "create", "acme", "--credits", "10", "--price-per-segment", "1",
               "--sender-id", "31337")[0] == 0
    return run


def send(cli: Any, to: str, message_class: str = "transactional") -> tuple[int, Any]:
    return cli("send", "--account", "acme", "--to", to, "--text", "Hi", "--class",
               message_class, "--json")


def test_a_stop_lists_the_number_and_marketing_to_it_is_refused(cli: Any) -> None:
    assert send(cli, "0821234567")[0] == 0
    code, stop = cli("simulate", "inbound", "--from", "0821234567", "--to", "31337",
                     "--text", "STOP", "--json")
    assert code == 0 and stop["kind"] == "opt_out"
    code, listed = cli("optout", "list", "--account", "acme", "--json")
    assert code == 0 and [(o["number"], o["method"], o["inbound_id"]) for o in listed] == [
        ("+27821234567", "reply", stop["id"])]
    code, refused = send(cli, "0821234567", "marketing")
    assert code == 1 and refused["code"] == "opted_out"
    assert send(cli, "0821234567")[0] == 0
    assert cli("account", "set", "acme", "--optout-scope", "all")[0] == 0
    assert send(cli, "0821234567")[1]["code"] == "opted_out"
    code, inbound = cli("inbound", "list", "--account", "acme", "--json")
    assert code == 0 and [(m["text"], m["kind"]) for m in inbound] == [("STOP", "opt_out")]
    assert cli("optout", "remove", "0821234567", "--account", "acme")[0] == 0
    assert cli("optout", "remove", "0821234567", "--account", "acme")[0] == 1
    assert send(cli, "0821234567", "marketing")[0] == 0


def test_the_global_block_list_stops_every_account(cli: Any) -> None:
    code, added = cli("optout", "add", "0831234567", "--global", "--reason", "fraud",
                      "--json")
    assert code == 0 and added["created"] and added["method"] == "cli"
    assert send(cli, "0831234567")[1]["code"] == "blocked"
    assert cli("optout", "list", "--account", "acme", "--json")[1] == []
    assert [o["reason"] for o in cli("optout", "list", "--global", "--json")[1]] == ["fraud"]


def test_an_import_adds_each_number_once_and_names_the_bad_lines(
    cli: Any, tmp_path: Path,
) -> None:
    listing = tmp_path / "optouts.csv"
    listing.write_text("number,name\n0821234567,Thandi\n+27821234567,again\n\n"
                       "not-a-number,x\n0831234567\n", "utf-8")
    code, done = cli("optout", "import", str(listing), "--account", "acme", "--json")
    assert code == 1  # a bad line is reported; the good ones are in
    assert (done["added"], done["already"]) == (2, 0)
    assert [bad["line"] for bad in done["invalid"]] == [5]
    methods = {o["method"] for o in cli("optout", "list", "--account", "acme", "--json")[1]}
    assert methods == {"import"}


def test_account_set_shows_and_changes_the_opt_out_settings(cli: Any) -> None:
    code, shown = cli("account", "set", "acme", "--json")
    assert code == 0 and shown == {"account": "acme", "optout_scope": "marketing",
                                   "optout_confirm": False, "marketing_optout": "append"}
    code, changed = cli("account", "set", "acme", "--optout-confirm", "on", "--json")
    assert changed["optout_confirm"] is True and changed["optout_scope"] == "marketing"
    code, changed = cli("account", "set", "acme", "--marketing-optout", "refuse", "--json")
    assert changed["marketing_optout"] == "refuse" and changed["optout_confirm"] is True


def test_a_confirmation_is_sent_when_the_account_asks(cli: Any) -> None:
    assert cli("account", "set", "acme", "--optout-confirm", "on")[0] == 0
    assert send(cli, "0821234567")[0] == 0
    cli("simulate", "inbound", "--from", "0821234567", "--to", "31337", "--text", "STOP")
    found = cli("message", "list", "--account", "acme", "--json")[1]
    [confirmation] = [m for m in found if m["source"] == "hub"]
    assert confirmation["to"] == "+27821234567" and confirmation["from"] == "31337"

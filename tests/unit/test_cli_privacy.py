"""`smshub privacy export|erase|log` (issue #15, POPIA): everything held about a number,
its texts erased with a record of who did it, its opt-out kept; and `smshub send
--class marketing` getting WASPA's opt-out instruction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.clirun import hub_cli

NUMBER = "+27821234567"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Any:
    run = hub_cli(tmp_path, monkeypatch, capsys)
    assert run("account", "create", "acme", "--credits", "10", "--price-per-segment", "1",
               "--sender-id", "31337")[0] == 0
    return run


def test_export_erase_and_log_of_a_number(cli: Any) -> None:
    assert cli("send", "--account", "acme", "--to", "0821234567", "--text", "Big sale",
               "--class", "marketing")[0] == 0
    cli("simulate", "inbound", "--from", "0821234567", "--to", "31337", "--text", "STOP")
    code, held, _ = cli("privacy", "export", "0821234567", "--json")
    assert code == 0 and held["number"] == NUMBER
    assert [m["text"] for m in held["messages"]] == ["Big sale Reply STOP to opt out"]
    assert [r["text"] for r in held["replies"]] == ["STOP"]
    assert [o["number"] for o in held["optouts"]] == [NUMBER]
    code, _, err = cli("privacy", "erase", "0821234567")  # no terminal, no --yes
    assert code == 1 and "--yes" in err
    assert held["message_callbacks"] == []  # no push URL names it (spool tests: some do)
    code, done, _ = cli("privacy", "erase", "0821234567", "--yes", "--json")
    assert code == 0 and (done["messages"], done["replies"], done["callbacks"]) == (1, 1, 0)
    assert "821234567" not in done["subject"]
    code, held, _ = cli("privacy", "export", "0821234567", "--json")
    assert [m["text"] for m in held["messages"]] == ["[purged]"]
    assert [r["text"] for r in held["replies"]] == ["[purged]"]
    assert len(held["optouts"]) == 1  # an opt-out keeps being honoured
    code, log, _ = cli("privacy", "log", "--json")
    assert code == 0 and [(e["action"], e["subject"]) for e in log] == [
        ("erase", done["subject"])]
    assert log[0]["actor"].startswith("cli:")
    code, text, _ = cli("privacy", "export", "0821234567")
    assert code == 0 and text.startswith(f"{NUMBER}: 1 message(s)")

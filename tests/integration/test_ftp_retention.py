"""POPIA retention of the FTP drop's filed originals on a real hub with ftplib (issue
#15): an upload's original in processed/ holds every row's number and text, so it is
deleted once older than `[privacy] retention_days` and the purge is in the privacy log;
the result file, which holds no text, stays, and upkeep purges the delivered message's
text while its status and cost stay. `smshub privacy export` lists the FTP files naming
a number and `erase` deletes the originals among them."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from hub.accounts import hash_password
from hub.model import Status
from hub.privacy import PURGED
from tests.clirun import hub_cli
from tests.ftpdrop import FTP_DEFAULTS, PASSWORD, Drop, no_leaked_threads
from tests.hubthread import HubThread
from tests.polling import eventually

pytestmark = pytest.mark.usefixtures("no_leaked_threads")
_ = no_leaked_threads  # a fixture used through pytestmark
SECONDS = 1 / 86_400  # retention_days is in days


def test_a_filed_original_past_the_retention_is_deleted_and_its_result_kept(
        make_hub: Callable[..., HubThread]) -> None:
    hub = make_hub(ftp=FTP_DEFAULTS, maintenance={"interval": 0.2},
                   privacy={"retention_days": SECONDS, "purge_interval": 0.2})
    hub.account("acme", credits="100")
    hub.spool.set_password_hash("acme", hash_password(PASSWORD))
    drop = Drop(hub)
    drop.upload("promo.csv", "to,text\n0821234567,Canary text Zebra-Quokka\n")
    row = drop.result("promo.csv")[1]
    assert row[3] == "accepted"
    entries = eventually(lambda: [e for e in hub.spool.privacy_log(10)
                                  if "ftp_originals" in e.detail], what="the purge's record")
    assert (entries[0].action, entries[0].actor) == ("purge", "maintenance")
    assert entries[0].detail["ftp_originals"] == 1
    assert list((drop.home / "processed").iterdir()) == []
    assert (drop.home / "results" / "promo.result.csv").exists()
    # The running hub's upkeep purges the message's own text once it is delivered.
    message_id = row[4]
    sent = eventually(lambda: (m := hub.spool.get_message(message_id)) is not None
                      and m.text == PURGED and m, what="the message's text purged")
    assert sent.status is Status.DELIVERED and sent.cost == Decimal(row[6])  # as charged


def test_privacy_export_lists_the_ftp_files_naming_a_number_and_erase_deletes_originals(
        make_hub: Callable[..., HubThread], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    hub = make_hub(ftp=FTP_DEFAULTS)
    hub.account("acme", credits="100")
    hub.spool.set_password_hash("acme", hash_password(PASSWORD))
    drop = Drop(hub)
    drop.upload("promo.csv", "to,text\n082 123 4590,Canary text\n0831234567,Other\n")
    assert [row[3] for row in drop.result("promo.csv")[1:-1]] == ["accepted", "accepted"]
    eventually(lambda: drop.report("promo.csv").exists(), what="the report file")
    (tmp_path / "cli").mkdir()
    run = hub_cli(tmp_path / "cli", monkeypatch, capsys,
                  f'[hub]\ndata_dir = "{hub.config.data_dir}"\n')
    code, held, _ = run("privacy", "export", "0821234590", "--json")
    assert code == 0
    folders = sorted(f.split("/")[1] for f in held["ftp_files"])
    assert folders == ["processed", "reports", "results"]
    assert all(f.startswith("acme/") for f in held["ftp_files"])
    code, done, _ = run("privacy", "erase", "0821234590", "--yes", "--json")
    assert code == 0 and done["ftp_originals"] == 1
    assert list((drop.home / "processed").iterdir()) == []  # it held the texts
    assert (drop.home / "results" / "promo.result.csv").exists()  # numbers and statuses
    [entry] = hub.spool.privacy_log(10)
    assert (entry.action, entry.detail["ftp_originals"]) == ("erase", 1)
    code, held, _ = run("privacy", "export", "0821234590", "--json")
    assert sorted(f.split("/")[1] for f in held["ftp_files"]) == ["reports", "results"]

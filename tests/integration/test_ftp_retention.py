"""POPIA retention of the FTP drop's filed originals on a real hub with ftplib (issue
#15): an upload's original in processed/ holds every row's number and text, so it is
deleted once older than `[privacy] retention_days` and the purge is in the privacy log;
the result file, which holds no text, stays."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hub.accounts import hash_password
from tests.ftpdrop import FTP_DEFAULTS, PASSWORD, Drop, no_leaked_threads
from tests.hubthread import HubThread
from tests.polling import eventually

pytestmark = pytest.mark.usefixtures("no_leaked_threads")
_ = no_leaked_threads  # a fixture used through pytestmark
SECONDS = 1 / 86_400  # retention_days is in days


def test_a_filed_original_past_the_retention_is_deleted_and_its_result_kept(
        make_hub: Callable[..., HubThread]) -> None:
    hub = make_hub(ftp=FTP_DEFAULTS,
                   privacy={"retention_days": SECONDS, "purge_interval": 0.2})
    hub.account("acme", credits="100")
    hub.spool.set_password_hash("acme", hash_password(PASSWORD))
    drop = Drop(hub)
    drop.upload("promo.csv", "to,text\n0821234567,Canary text Zebra-Quokka\n")
    assert drop.result("promo.csv")[1][3] == "accepted"
    entries = eventually(lambda: [e for e in hub.spool.privacy_log(10)
                                  if "ftp_originals" in e.detail], what="the purge's record")
    assert (entries[0].action, entries[0].actor) == ("purge", "maintenance")
    assert entries[0].detail["ftp_originals"] == 1
    assert list((drop.home / "processed").iterdir()) == []
    assert (drop.home / "results" / "promo.result.csv").exists()

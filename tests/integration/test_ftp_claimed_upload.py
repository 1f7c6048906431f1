"""Every upload answered 226 gets its result file, whenever the hub dies (both found by
the kill -9 chaos run): the 226 is sent only once the hub has taken the file out of the
home and the spool has recorded it; a file taken but never recorded (its node died in
between, before any 226) is processed once it is older than a batch lease."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.ftp.homes import Homes
from tests.ftpdrop import FTP_DEFAULTS, csv_of, make_drop, read_csv, wait_for
from tests.hubthread import HubThread
from tests.integration import conftest


def test_an_upload_is_answered_226_only_once_the_hub_has_taken_it(
    make_hub: Callable[..., HubThread], monkeypatch: pytest.MonkeyPatch
) -> None:
    drop = make_drop(make_hub)
    claim = Homes.claim

    def slow_claim(self: Homes, account: str, path: Path) -> Path:
        time.sleep(0.3)  # a busy FTP thread: the answer must still wait for the claim
        return claim(self, account, path)

    monkeypatch.setattr(Homes, "claim", slow_claim)
    ftp = drop.client()
    try:
        drop.upload("taken.csv", csv_of(2), ftp)  # returns on the 226
        assert not (drop.home / "taken.csv").exists()  # a kill now cannot strand it
    finally:
        ftp.quit()
    assert [r[3] for r in drop.result("taken.csv")[1:-1]] == ["accepted"] * 2


def test_an_upload_claimed_but_never_registered_is_processed_once_older_than_a_lease(
    hubs: list[HubThread], tmp_path: Path
) -> None:
    # A lease is three heartbeats: 0.6 s here.
    config = conftest.test_config(tmp_path / "hub", ftp=FTP_DEFAULTS,
                                  hub={"heartbeat_interval": 0.2})
    first = HubThread(config).start()
    hubs.append(first)
    drop = make_drop(lambda **_: first)
    hubs.remove(first)
    first.stop()
    # What the hub leaves when it dies right after claiming an upload (on_file_received),
    # before its batch row (so before the 226): the file in the work area under a batch
    # id nobody recorded.
    homes = Homes(first.config.data_dir)
    upload = homes.ensure("acme") / "late.csv"
    upload.write_text(csv_of(3), encoding="utf-8")
    work = homes.claim("acme", upload)
    second = HubThread(first.config).start()
    hubs.append(second)
    rows = read_csv(wait_for(drop.home / "results" / "late.result.csv"))
    assert [r[3] for r in rows[1:-1]] == ["accepted"] * 3
    [batch] = second.spool.list_batches(None, 10)
    assert (batch.id, batch.file_name, batch.accepted) == (work.name[:26], "late.csv", 3)
    wait_for(drop.home / "processed" / work.name)
    assert not work.exists()

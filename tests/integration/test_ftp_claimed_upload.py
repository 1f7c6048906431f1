"""An upload the client was answered 226 for, moved to the work area by the hub, which
then died before the batch row was committed (found by the kill -9 chaos run): the next
start processes it as new, so every acknowledged upload gets its result file."""

from __future__ import annotations

from pathlib import Path

from adapters.ftp.homes import Homes
from tests.ftpdrop import FTP_DEFAULTS, csv_of, make_drop, read_csv, wait_for
from tests.hubthread import HubThread
from tests.integration import conftest


def test_an_upload_claimed_but_never_registered_is_processed_at_the_next_start(
    hubs: list[HubThread], tmp_path: Path
) -> None:
    first = HubThread(conftest.test_config(tmp_path / "hub", ftp=FTP_DEFAULTS)).start()
    hubs.append(first)
    drop = make_drop(lambda **_: first)
    hubs.remove(first)
    first.stop()
    # What the hub leaves when it dies right after claiming an upload (on_file_received),
    # before its batch row: the file in the work area under a batch id nobody recorded.
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

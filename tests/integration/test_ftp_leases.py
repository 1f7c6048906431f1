"""Which node works each open FTP batch (spool/batch_leases.py), on SQLite and
PostgreSQL: an upload recorded with its lease, renewed by its node, taken by another once
lapsed or let go, never by two; the duplicate check made once for every node; a node
that lost a batch's lease stopping before its next group; and an upload recorded by a
node that died before reading it processed by another."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.ftp.homes import Homes
from hub.batches import Batch, BatchState
from hub.config import Config
from hub.model import Account
from spool import SqlSpool
from tests.ftpdrop import FTP_DEFAULTS, Drop, csv_of, make_drop, read_csv, wait_for
from tests.hubthread import HubThread
from tests.integration import conftest
from tests.integration.test_ftp_progress import GROUP, pause_after

NOW = datetime.now(UTC).replace(microsecond=0)
LATER = NOW + timedelta(seconds=15)


def _upload(account: Account, n: int, sha: str = "") -> Batch:
    return Batch(
        id=f"01J00000000000000000000{n:03d}",
        account_id=account.id,
        file_name=f"f{n}.csv",
        sha256=sha,
        format="",
        received_at=NOW,
        state=BatchState.PROCESSING,
    )


def test_a_recorded_upload_is_held_by_its_node_until_its_lease_lapses(
    spool: SqlSpool, make_account: Callable[..., Account]
) -> None:
    batch = _upload(make_account("acme"), 1)
    assert spool.receive_batch(batch, "a", LATER)
    assert not spool.receive_batch(batch, "b", LATER)  # the same file, found by another
    assert spool.batch_holder(batch.id) == "a"
    assert spool.take_batches("b", NOW, LATER) == []  # a's lease holds
    assert spool.renew_batch_leases("a", LATER + timedelta(seconds=15)) == [batch.id]
    assert spool.take_batches("b", LATER + timedelta(seconds=1), LATER) == []  # renewed
    after = LATER + timedelta(seconds=16)  # a stopped renewing: died
    assert [b.id for b in spool.take_batches("b", after, after + timedelta(15))] == [batch.id]
    assert spool.take_batches("c", after, after) == []  # taken once
    assert spool.batch_holder(batch.id) == "b"
    assert not spool.keep_batch_lease(batch.id, "a", after)  # a learns it lost the batch
    assert spool.keep_batch_lease(batch.id, "b", after + timedelta(15))


def test_a_clean_stop_lets_batches_go_and_a_restart_takes_its_own_back_at_once(
    spool: SqlSpool, make_account: Callable[..., Account]
) -> None:
    account = make_account("acme")
    first, second = _upload(account, 1), _upload(account, 2)
    assert spool.receive_batch(first, "a", LATER)
    assert spool.receive_batch(second, "a", LATER)
    assert [b.id for b in spool.take_batches("a", NOW, LATER, own=True)] == [
        first.id,
        second.id,
    ]  # restarted under its name
    assert spool.take_batches("b", NOW, LATER) == []
    assert spool.release_batch_leases("a") == 2
    assert [b.id for b in spool.take_batches("b", NOW, LATER)] == [first.id, second.id]


def test_a_batch_needs_a_node_until_its_report_file_is_final(
    spool: SqlSpool, make_account: Callable[..., Account]
) -> None:
    batch = _upload(make_account("acme"), 1, "ab" * 32)
    assert spool.receive_batch(batch, "a", LATER)
    spool.update_batch(replace(batch, state=BatchState.ACCEPTED, rows=1, accepted=1))
    assert spool.renew_batch_leases("a", LATER) == [batch.id]  # its report is followed
    spool.update_batch(replace(batch, state=BatchState.FINAL, report_final=True))
    assert spool.renew_batch_leases("a", LATER) == []  # nothing left to do: let go
    assert spool.batch_holder(batch.id) is None
    assert spool.take_batches("b", LATER, LATER) == []


def test_the_same_content_recorded_by_two_nodes_is_sent_once(
    spool: SqlSpool, make_account: Callable[..., Account]
) -> None:
    account = make_account("acme")
    first, second = _upload(account, 1, "ab" * 32), _upload(account, 2, "ab" * 32)
    assert spool.receive_batch(replace(first, sha256=""), "a", LATER)
    assert spool.receive_batch(replace(second, sha256=""), "b", LATER)
    since = NOW - timedelta(days=1)
    assert spool.settle_batch_content(first, since) is None
    earlier = spool.settle_batch_content(second, since)
    assert earlier is not None and earlier.id == first.id
    stored = spool.get_batch(second.id)
    assert stored is not None
    assert (stored.state, stored.duplicate_of, stored.sha256) == (
        BatchState.DUPLICATE,
        first.id,
        "ab" * 32,
    )
    # Without a window (duplicate_window = 0) the hash is stored and nothing compared.
    third = _upload(account, 3, "ab" * 32)
    assert spool.receive_batch(replace(third, sha256=""), "a", LATER)
    assert spool.settle_batch_content(third, None) is None
    assert spool.get_batch(third.id) == third


def test_a_node_whose_batch_was_taken_over_stops_before_its_next_group(
    make_hub: Callable[..., HubThread], caplog: pytest.LogCaptureFixture
) -> None:
    """Its lease lapsed while it ran (the spool out of reach, say) and another node took
    the batch: the first one submits nothing more and leaves the files to the taker."""
    caplog.set_level(logging.INFO, logger="adapters.ftp.jobs")
    drop = make_drop(make_hub, rows_per_group=GROUP)
    pause = pause_after(drop, GROUP)
    drop.upload("taken.csv", csv_of(3 * GROUP))
    assert pause.reached.wait(20)
    [batch] = drop.hub.spool.list_batches(None, 1)
    assert drop.hub.spool.release_batch_leases("test-node") == 1  # as if it lapsed
    assert [b.id for b in drop.hub.spool.take_batches("other", NOW, LATER)] == [batch.id]
    pause.release.set()
    wait_for(drop.home, check=lambda _: "another node took it over" in caplog.text)
    assert sum(drop.hub.spool.batch_status_counts(batch.id).values()) == GROUP
    assert not (drop.home / "results" / "taken.result.csv").exists()
    assert list((drop.hub.config.data_dir / "ftp-work" / "acme").glob(f"{batch.id}-*"))


def _a_node_that_stopped(hubs: list[HubThread], tmp_path: Path
                         ) -> tuple[Config, HubThread, Drop]:
    """A node with an FTP drop (the account `acme` made), stopped: its config (for the
    node that comes after it), the stopped node (its spool still readable) and the drop."""
    config = conftest.test_config(
        tmp_path / "hub", ftp=FTP_DEFAULTS, hub={"heartbeat_interval": 0.2}
    )
    first = HubThread(config).start()
    hubs.append(first)
    drop = make_drop(lambda **_: first)
    hubs.remove(first)
    first.stop()
    return config, first, drop


def test_an_upload_answered_by_a_node_that_died_before_reading_it_is_processed_by_another(
    hubs: list[HubThread], tmp_path: Path
) -> None:
    """What a node leaves when it dies right after the 226: the batch recorded in its
    name, not yet hashed or read, the file in the shared work area. Once the lease has
    lapsed another node processes it from the start."""
    config, first, drop = _a_node_that_stopped(hubs, tmp_path)
    homes = Homes(config.data_dir)
    upload = homes.ensure("acme") / "orphan.csv"
    upload.write_text(csv_of(3), encoding="utf-8")
    work = homes.claim("acme", upload)
    account = first.spool.get_account("acme")
    now = datetime.now(UTC)
    recorded = Batch(
        id=work.name[:26],
        account_id=account.id,
        file_name="orphan.csv",
        sha256="",
        format="",
        received_at=now,
        state=BatchState.PROCESSING,
    )
    assert first.spool.receive_batch(recorded, "gone", now + timedelta(seconds=0.5))
    second = HubThread(config).start()
    hubs.append(second)
    rows = read_csv(wait_for(drop.home / "results" / "orphan.result.csv"))
    assert [r[3] for r in rows[1:-1]] == ["accepted"] * 3
    batch = second.spool.get_batch(recorded.id)
    assert batch is not None and batch.accepted == 3 and len(batch.sha256) == 64
    assert second.spool.batch_holder(recorded.id) in ("test-node", None)


def test_a_batch_taken_over_whose_file_is_on_no_shared_disk_is_failed_as_gone(
    hubs: list[HubThread], tmp_path: Path
) -> None:
    """The FTP area was not shared: the dead node's file is nowhere this node can see.
    The batch is not left `processing` for ever; its result file says what happened."""
    config, first, drop = _a_node_that_stopped(hubs, tmp_path)
    account = first.spool.get_account("acme")
    now = datetime.now(UTC)
    lost = replace(_upload(account, 7, "cd" * 32), file_name="elsewhere.csv", received_at=now)
    assert first.spool.receive_batch(lost, "gone", now + timedelta(seconds=0.5))
    second = HubThread(config).start()
    hubs.append(second)
    rows = read_csv(wait_for(drop.home / "results" / "elsewhere.result.csv"))
    assert rows[-2][3] == "not_processed" and "the file is gone" in rows[-2][7]
    wait_for(
        drop.home,
        check=lambda _: (
            second.spool.get_batch(lost.id).state  # type: ignore[union-attr]
            is BatchState.FAILED
        ),
    )

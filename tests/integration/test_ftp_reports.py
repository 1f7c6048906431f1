"""Delivery-report files of the FTP drop: a batch that failed part-way is reported on
until its accepted messages are final (and stays failed); a big batch's report is read
no more often than its throttle allows, a small one's promptly; a report the spool could
not give when a batch ended is written by the next sweep."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ulid import ULID

from adapters.ftp.homes import Homes
from adapters.ftp.reports import ReportJob
from hub.batches import Batch, BatchState
from hub.errors import TemporaryFailure
from hub.model import Account, DeliveryReport, Message, Status, Transition
from hub.spoolcall import SpoolThreads
from spool import SqlSpool
from tests.factories import NOW, new_message
from tests.ftpdrop import (
    FTP_DEFAULTS,
    FailingSpool,
    cli_batch,
    csv_of,
    install,
    make_drop,
    no_leaked_threads,
    read_csv,
    refused_for_good,
    wait_for,
)
from tests.hubthread import HubThread
from tests.integration import conftest

pytestmark = pytest.mark.usefixtures("no_leaked_threads")
_ = no_leaked_threads  # a fixture used through pytestmark

GROUP = 100


def is_final(path: Path) -> bool:
    return read_csv(path)[-1][2] == "final"


# --- a batch that failed part-way -------------------------------------------------------


def test_ftp_batch_failed_part_way_reports_its_accepted_messages_until_final(
    hubs: list[HubThread], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The first hub sends nothing, so its report must stay pending; the second sends.
    ftp = {**FTP_DEFAULTS, "rows_per_group": GROUP, "group_retry_delay": 0.01}
    config = conftest.test_config(tmp_path / "hub", ftp=ftp, dispatcher={"enabled": False})
    first = HubThread(config).start()
    hubs.append(first)
    drop = make_drop(lambda **_: first)
    install(drop, FailingSpool(first.spool, fail_from=3, error=refused_for_good))
    drop.upload("pay.csv", csv_of(3 * GROUP + 50))
    rows = drop.result("pay.csv")
    assert rows[-2][3] == "not_processed" and rows[-1][3] == "accepted 200, rejected 0"
    accepted = {r[4] for r in rows[1:-2]}
    report = read_csv(wait_for(drop.report("pay.csv")))
    assert {r[0] for r in report[1:-1]} == accepted
    assert {(r[2], r[3]) for r in report[1:-1]} == {("pending", "accepted")}
    assert report[-1][2:4] == ["pending", "delivered 0, failed 0, pending 200"]
    batch = first.spool.list_batches(None, 1)[0]
    assert (batch.state, batch.report_final) == (BatchState.FAILED, False)

    hubs.remove(first)
    first.stop()
    second = HubThread(conftest.test_config(tmp_path / "hub", ftp=ftp)).start()
    hubs.append(second)
    report = read_csv(wait_for(drop.report("pay.csv"), check=is_final))
    assert {r[0] for r in report[1:-1]} == accepted
    assert {r[2] for r in report[1:-1]} == {"delivered"}
    assert report[-1][1:4] == [f"batch {batch.id}", "final",
                               "delivered 200, failed 0, pending 0"]
    # The file is written first, then the batch row is marked; the batch stays failed.
    wait_for(drop.home, check=lambda _: second.spool.list_batches(None, 1)[0].report_final)
    done = second.spool.list_batches(None, 1)[0]
    assert (done.state, done.finished_at) == (BatchState.FAILED, batch.finished_at)
    assert f"{batch.id}  failed     pay.csv: 200 rows read" in cli_batch(drop, capsys, "list")
    shown = cli_batch(drop, capsys, "show", batch.id, "--json")
    assert '"state": "failed"' in shown and '"report_final": true' in shown
    assert drop.result("pay.csv") == rows  # the result file keeps its not_processed row


def test_ftp_batch_failed_before_accepting_anything_gets_no_report_file(
    make_hub: Callable[..., HubThread]
) -> None:
    drop = make_drop(make_hub, rows_per_group=GROUP, group_retry_delay=0.01)
    install(drop, FailingSpool(drop.hub.spool, fail_from=1, error=refused_for_good))
    drop.upload("none.csv", csv_of(50))
    rows = drop.result("none.csv")
    assert rows[-2][3] == "not_processed" and "rows after the header" in rows[-2][7]
    # The batch's report is settled (nothing to report) without a file.
    wait_for(drop.home, check=lambda _: drop.hub.spool.list_batches(None, 1)[0].report_final)
    batch = drop.hub.spool.list_batches(None, 1)[0]
    assert (batch.state, batch.accepted) == (BatchState.FAILED, 0)
    assert not drop.report("none.csv").exists()


# --- the throttle, on a clock the test moves ---------------------------------------------

INTERVAL = 1.0
RATE = 10.0  # messages read a second: a batch of 40 is read at most every 4 s


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ReadCountingSpool:
    """The real spool, noting the clock each time a batch's messages are read whole
    (the first page of a report rewrite)."""

    def __init__(self, spool: SqlSpool, clock: Clock) -> None:
        self._spool = spool
        self._clock = clock
        self.reads: dict[str, list[float]] = defaultdict(list)

    def batch_messages(self, batch_id: str, after_id: str, limit: int) -> list[Message]:
        if not after_id:
            self.reads[batch_id].append(self._clock())
        return self._spool.batch_messages(batch_id, after_id, limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spool, name)


def accepted_batch(spool: SqlSpool, account: Account, name: str, size: int
                   ) -> tuple[Batch, list[str]]:
    batch = Batch(id=str(ULID()), account_id=account.id, file_name=f"{name}.csv",
                  sha256=hashlib.sha256(name.encode()).hexdigest(), format="csv",
                  received_at=NOW, state=BatchState.ACCEPTED, rows=size, accepted=size)
    spool.create_batch(batch)
    group = [new_message(account, batch_id=batch.id) for _ in range(size)]
    spool.accept(group)
    return batch, [m.id for m in group]


def submit_all(spool: SqlSpool) -> None:
    claim = spool.claim("node", 1000, 600, NOW)
    spool.record(claim.token, [Transition(m.id, Status.SUBMITTED, carrier="sim",
                                          carrier_message_id=f"c-{m.id}")
                               for m in claim.messages], NOW)


def deliver(spool: SqlSpool, message_id: str) -> None:
    spool.apply_reports([DeliveryReport("sim", f"c-{message_id}", Status.DELIVERED, NOW)],
                        NOW)


async def test_ftp_report_of_big_batch_is_read_only_at_its_throttle_small_one_promptly(
    spool: SqlSpool, make_account: Callable[..., Account], tmp_path: Path
) -> None:
    account = make_account("acme")
    big, big_ids = accepted_batch(spool, account, "big", 40)
    small, small_ids = accepted_batch(spool, account, "small", 2)
    submit_all(spool)
    clock = Clock()
    counting = ReadCountingSpool(spool, clock)
    runner = SpoolThreads(counting)  # type: ignore[arg-type]
    homes = Homes(tmp_path)
    job = ReportJob(runner, homes, INTERVAL, read_rate=RATE, clock=clock)
    try:
        await job.finished(big)
        await job.finished(small)
        # A report arrives for each batch before every sweep: each sweep could rewrite.
        for second in range(1, 13):
            deliver(spool, big_ids[second - 1])
            if second <= len(small_ids):
                deliver(spool, small_ids[second - 1])
            clock.now += INTERVAL
            await job.sweep()
    finally:
        runner.shutdown()
    # The big batch: first read after its throttle (40 / 10 = 4 s), then every 4 s.
    assert counting.reads[big.id] == [4.0, 8.0, 12.0]
    # The small one: at once, then at each sweep after a change, until final.
    assert counting.reads[small.id] == [0.0, 1.0, 2.0]
    small_report = read_csv(homes.report_path("acme", "small.csv"))
    assert small_report[-1][2:4] == ["final", "delivered 2, failed 0, pending 0"]
    big_report = read_csv(homes.report_path("acme", "big.csv"))
    assert big_report[-1][2:4] == ["pending", "delivered 12, failed 0, pending 28"]
    assert spool.get_batch(small.id).state is BatchState.FINAL  # type: ignore[union-attr]


class CountsFailOnce:
    """The real spool, but the first look at a batch's status counts fails."""

    def __init__(self, spool: SqlSpool) -> None:
        self._spool = spool
        self.failed = False

    def batch_status_counts(self, batch_id: str) -> dict[Status, int]:
        if not self.failed:
            self.failed = True
            raise TemporaryFailure("spool unavailable (injected)")
        return self._spool.batch_status_counts(batch_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spool, name)


class PagesFailOnce:
    """The real spool, but the first page of a batch's messages fails: the spool went
    away while a report file was being written."""

    def __init__(self, spool: SqlSpool) -> None:
        self._spool = spool
        self.failed = False

    def batch_messages(self, batch_id: str, after: str, limit: int) -> list[Any]:
        if not self.failed:
            self.failed = True
            raise TemporaryFailure("spool unavailable (injected)")
        return self._spool.batch_messages(batch_id, after, limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spool, name)


async def test_ftp_report_cut_off_by_the_spool_leaves_no_work_file_open_and_is_written_again(
    spool: SqlSpool, make_account: Callable[..., Account], tmp_path: Path
) -> None:
    batch, _ = accepted_batch(spool, make_account("acme"), "one", 2)
    runner = SpoolThreads(PagesFailOnce(spool))  # type: ignore[arg-type]
    homes = Homes(tmp_path)
    job = ReportJob(runner, homes, INTERVAL, clock=Clock())
    try:
        with pytest.raises(TemporaryFailure):
            await job.refresh(batch)
        assert list(homes.work.rglob("*.report.tmp")) == []  # closed and removed
        await job.refresh(batch)  # the next sweep's
    finally:
        runner.shutdown()
    report = read_csv(homes.report_path("acme", "one.csv"))
    assert report[-1][2:4] == ["pending", "delivered 0, failed 0, pending 2"]


async def test_ftp_report_not_written_when_a_batch_ends_is_written_by_the_next_sweep(
    spool: SqlSpool, make_account: Callable[..., Account], tmp_path: Path,
    caplog: pytest.LogCaptureFixture
) -> None:
    batch, _ = accepted_batch(spool, make_account("acme"), "one", 2)
    runner = SpoolThreads(CountsFailOnce(spool))  # type: ignore[arg-type]
    homes = Homes(tmp_path)
    job = ReportJob(runner, homes, INTERVAL, clock=Clock())
    try:
        await job.finished(batch)  # the batch is settled already: this must not raise
        assert not homes.report_path("acme", "one.csv").exists()
        assert "the sweep retries" in caplog.text
        await job.sweep()
    finally:
        runner.shutdown()
    report = read_csv(homes.report_path("acme", "one.csv"))
    assert report[-1][2:4] == ["pending", "delivered 0, failed 0, pending 2"]

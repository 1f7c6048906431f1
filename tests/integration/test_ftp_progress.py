"""A large FTP batch while it is processed (progress file, batch row, log), and when it
cannot finish: a spool that fails part-way, a hub that died mid-file (resumed, or failed
when its file is gone); the passive range."""

from __future__ import annotations

import asyncio
import ftplib
import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.csv.results import ResultWriter
from hub.batches import Batch, BatchState
from spool import open_spool
from tests.ftpdrop import (
    Drop,
    FailingSpool,
    cli_batch,
    csv_of,
    install,
    make_drop,
    no_leaked_threads,
    read_csv,
    wait_for,
)
from tests.hubthread import HubThread
from tests.integration import conftest

pytestmark = pytest.mark.usefixtures("no_leaked_threads")
_ = no_leaked_threads

GROUP = 100


class Pause:
    """A group hook that holds the batch after `rows` rows until `release` is set."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.reached = threading.Event()
        self.release = threading.Event()

    async def __call__(self, batch: Batch) -> None:
        if batch.rows == self.rows:
            self.reached.set()
            await asyncio.to_thread(self.release.wait, 20)


def pause_after(drop: Drop, rows: int) -> Pause:
    pause = Pause(rows)
    assert drop.hub.hub.ftp_drop is not None
    drop.hub.hub.ftp_drop.processor.group_hook = pause
    return pause


@pytest.fixture
def drop(make_hub: Callable[..., HubThread]) -> Drop:
    return make_drop(make_hub, rows_per_group=GROUP, group_retry_delay=0.01,
                     progress_interval=0)


def test_ftp_progress_is_visible_while_a_large_file_is_processed(
    drop: Drop, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.ftp.pipeline")
    pause = pause_after(drop, 2 * GROUP)
    drop.upload("big.csv", csv_of(5 * GROUP))
    assert pause.reached.wait(20)
    progress = drop.home / "results" / "big.progress"
    line = progress.read_text("utf-8")
    assert ",processing,rows read 200,accepted 200,rejected 0," in line
    assert "200 rows read, 200 accepted, 0 rejected" in cli_batch(drop, capsys, "list")
    assert "100 rows read" in caplog.text  # the first group is always logged
    assert not (drop.home / "results" / "big.result.csv").exists()
    pause.release.set()
    rows = drop.result("big.csv")
    assert len(rows) == 1 + 5 * GROUP + 1 and rows[-1][3] == "accepted 500, rejected 0"
    assert not progress.exists()
    # The batch row follows the published result file a moment later (docs/ftp.md).
    # (and may already be final: the simulator delivers quickly).
    done = (BatchState.ACCEPTED, BatchState.FINAL)
    wait_for(drop.home, check=lambda _: drop.hub.spool.list_batches(None, 1)[0].state in done)
    batch_id = drop.hub.spool.list_batches(None, 1)[0].id
    shown = cli_batch(drop, capsys, "show", batch_id, "--json")
    assert '"state": "accepted"' in shown or '"state": "final"' in shown


def test_ftp_batch_the_spool_refuses_for_a_while_waits_and_completes_once_it_is_back(
    drop: Drop
) -> None:
    # The third group's first try and three retries fail; so does the next try, a report
    # interval later, and the first of the one after: the spool was away for a while
    # (a database restart or failover, its disk full until freed).
    spool = FailingSpool(drop.hub.spool, failing=range(3, 12))
    install(drop, spool)
    drop.upload("pay.csv", csv_of(3 * GROUP + 50))
    rows = drop.result("pay.csv")
    wait_for(drop.home, check=lambda _: drop.hub.spool.open_batches() == [])
    assert [r[3] for r in rows[1:-1]] == ["accepted"] * (3 * GROUP + 50)  # none not_processed
    assert [int(r[0]) for r in rows[1:-1]] == list(range(2, 3 * GROUP + 52))
    assert rows[-1][3] == "accepted 350, rejected 0"
    assert spool.calls == 2 + 4 + 4 + 2 + 1  # the third group tried in three runs
    batch = drop.hub.spool.list_batches(None, 1)[0]
    assert batch.state in (BatchState.ACCEPTED, BatchState.FINAL)
    assert (batch.rows, batch.accepted) == (350, 350)
    assert sum(drop.hub.spool.batch_status_counts(batch.id).values()) == 350  # each once
    assert (drop.home / "processed" / f"{batch.id}-pay.csv").exists()
    assert not (drop.home / "results" / "pay.progress").exists()


def test_ftp_group_the_spool_refuses_once_is_retried_and_the_batch_completes(
    drop: Drop
) -> None:
    spool = FailingSpool(drop.hub.spool, failing=[2])
    install(drop, spool)
    drop.upload("retry.csv", csv_of(3 * GROUP))
    rows = drop.result("retry.csv")
    wait_for(drop.home, check=lambda _: drop.hub.spool.open_batches() == [])
    assert rows[-1][3] == "accepted 300, rejected 0" and spool.calls == 4
    assert [int(r[0]) for r in rows[1:-1]] == list(range(2, 3 * GROUP + 2))
    batch = drop.hub.spool.list_batches(None, 1)[0]
    assert batch.state in (BatchState.ACCEPTED, BatchState.FINAL) and batch.accepted == 300


class Crash(BaseException):
    """Stands for the process dying: nothing in the hub catches it."""


def _crash_after_two_groups(hubs: list[HubThread], tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[Drop, Path]:
    """A hub that dies once two groups of `cut.csv` (400 rows) are committed: by default
    in the group hook, after both groups are listed or about to be; with `monkeypatch`,
    in the result writer, so groups two and three are committed but never listed."""
    first = HubThread(conftest.test_config(tmp_path / "hub", ftp=_ftp_settings())).start()
    hubs.append(first)
    drop = make_drop(lambda **_: first)
    assert first.hub.ftp_drop is not None
    if monkeypatch is None:
        async def crash(batch: Batch) -> None:
            if batch.rows == 2 * GROUP:
                raise Crash

        first.hub.ftp_drop.processor.group_hook = crash
    else:
        write = ResultWriter.write

        def crashing_write(self: ResultWriter, rows: Any, outcomes: Any) -> None:
            if rows[0].line > GROUP + 1:
                raise Crash
            write(self, rows, outcomes)

        monkeypatch.setattr(ResultWriter, "write", crashing_write)
    drop.upload("cut.csv", csv_of(4 * GROUP))
    committed = 3 * GROUP if monkeypatch is not None else 2 * GROUP
    wait_for(drop.home, check=lambda _: first.spool.list_batches(None, 1) != []
             and sum(first.spool.batch_status_counts(
                 first.spool.list_batches(None, 1)[0].id).values()) == committed)
    hubs.remove(first)
    first.stop()
    if monkeypatch is not None:
        monkeypatch.undo()
    return drop, tmp_path / "hub"


def _assert_every_row_sent_once(drop: Drop, hub: HubThread) -> str:
    rows = read_csv(wait_for(drop.home / "results" / "cut.result.csv"))
    listed = rows[1:-1]
    assert [int(r[0]) for r in listed] == list(range(2, 4 * GROUP + 2))
    assert {r[3] for r in listed} == {"accepted"} and rows[-1][3] == "accepted 400, rejected 0"
    batch = hub.spool.list_batches(None, 1)[0]
    assert sum(hub.spool.batch_status_counts(batch.id).values()) == 4 * GROUP
    stored = {m.id for m in hub.spool.batch_messages(batch.id, "", 10 * GROUP)}
    assert {r[4] for r in listed} == stored  # each row's message, none made twice
    wait_for(drop.home / "processed" / f"{batch.id}-cut.csv")  # filed just after
    return batch.id


def test_ftp_batch_cut_off_by_a_dead_hub_resumes_at_start_up_and_sends_no_row_twice(
    hubs: list[HubThread], tmp_path: Path
) -> None:
    drop, data = _crash_after_two_groups(hubs, tmp_path)
    second = HubThread(drop.hub.config).start()
    hubs.append(second)
    batch_id = _assert_every_row_sent_once(drop, second)
    done = (BatchState.ACCEPTED, BatchState.FINAL)
    wait_for(drop.home, check=lambda _: second.spool.get_batch(batch_id).state in done)  # type: ignore[union-attr]
    # The report job writes its own work files there at any time: those are not left over.
    left = (data / "ftp-work" / "acme").iterdir()
    assert [p.name for p in left if not p.name.endswith(".report.tmp")] == []
    report = read_csv(wait_for(drop.report("cut.csv")))
    assert len(report) == 1 + 4 * GROUP + 1 and report[-1][1] == f"batch {batch_id}"


def test_ftp_rows_committed_but_not_listed_when_the_hub_died_keep_their_messages(
    hubs: list[HubThread], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.ftp.jobs")
    drop, _ = _crash_after_two_groups(hubs, tmp_path, monkeypatch)
    second = HubThread(drop.hub.config).start()
    hubs.append(second)
    _assert_every_row_sent_once(drop, second)
    assert f"resumed after line {GROUP + 1}; {2 * GROUP} later rows were already" in caplog.text


def test_ftp_stop_pauses_a_batch_after_its_group_in_flight_and_the_next_start_resumes_it(
    hubs: list[HubThread], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.ftp.jobs")
    first = HubThread(conftest.test_config(tmp_path / "hub", ftp=_ftp_settings())).start()
    hubs.append(first)
    drop = make_drop(lambda **_: first)
    pause = pause_after(drop, 2 * GROUP)
    drop.upload("cut.csv", csv_of(4 * GROUP))
    assert pause.reached.wait(20)
    hubs.remove(first)
    stopping = threading.Thread(target=first.stop)
    stopping.start()
    assert first.hub.ftp_drop is not None
    wait_for(tmp_path, check=lambda _: first.hub.ftp_drop.processor.stopping.is_set())  # type: ignore[union-attr]
    pause.release.set()  # the group in flight completes; no further group is taken
    stopping.join(20)
    assert not stopping.is_alive()
    assert "paused after line 201: the hub is stopping" in caplog.text
    assert not (drop.home / "results" / "cut.result.csv").exists()
    batch = first.spool.list_batches(None, 1)[0]
    assert (batch.state, batch.rows) == (BatchState.PROCESSING, 2 * GROUP)
    assert sum(first.spool.batch_status_counts(batch.id).values()) == 2 * GROUP
    second = HubThread(first.config).start()
    hubs.append(second)
    _assert_every_row_sent_once(drop, second)
    assert "resumed after line 201; 0 later rows were already committed" in caplog.text


def test_a_batch_job_that_dies_during_the_stop_does_not_end_the_stop(
    hubs: list[HubThread], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The stop waits for the batch jobs to end, whatever they end with: one that dies
    (of what nothing in the hub catches) is logged, and the stop still lets the leases
    go, so that another node takes the batch at once."""
    first = HubThread(conftest.test_config(tmp_path / "hub", ftp=_ftp_settings())).start()
    hubs.append(first)
    drop = make_drop(lambda **_: first)
    assert first.hub.ftp_drop is not None
    processor = first.hub.ftp_drop.processor
    entered = threading.Event()

    async def die_at_the_stop(batch: Batch) -> None:
        entered.set()
        await processor.stopping.wait()
        raise Crash

    processor.group_hook = die_at_the_stop
    drop.upload("cut.csv", csv_of(4 * GROUP))
    assert entered.wait(20)
    hubs.remove(first)
    first.stop()  # raised Crash, and left the leases held
    assert "an FTP batch job ended with Crash()" in caplog.text
    spool = open_spool(first.config.spool_url)  # the stopped hub's own is closed
    try:
        batch = spool.list_batches(None, 1)[0]
        assert batch.state is BatchState.PROCESSING and spool.batch_holder(batch.id) is None
    finally:
        spool.close()


def test_ftp_batch_cut_off_whose_file_is_gone_is_failed_with_what_it_listed(
    hubs: list[HubThread], tmp_path: Path
) -> None:
    drop, data = _crash_after_two_groups(hubs, tmp_path)
    [original] = (data / "ftp-work" / "acme").glob("*-cut.csv")
    original.unlink()  # an operator cleaned the work area while the hub was down
    second = HubThread(drop.hub.config).start()
    hubs.append(second)
    rows = read_csv(wait_for(drop.home / "results" / "cut.result.csv"))
    listed = [r for r in rows[1:] if r[0].isdigit()]
    # The first group's rows, then as many of the second's as its write thread had on
    # the disk when the "process died" (a group is written row by row, not at once; a
    # row cut off mid-write is dropped on resuming): each line once, in order.
    assert GROUP <= len(listed) <= 2 * GROUP, len(listed)
    assert [int(r[0]) for r in listed] == list(range(2, len(listed) + 2))
    assert rows[-2][3] == "not_processed" and "the file is gone" in rows[-2][7]
    assert f"after line {listed[-1][0]} " in rows[-2][7]
    assert "the spool holds 200 messages" in rows[-2][7]
    found = second.spool.list_batches(None, 1)[0]
    assert found.state is BatchState.FAILED and found.rows == len(listed)
    # Every message the spool holds, the unlisted group's too, is in the report file of
    # the failed batch, written at start-up.
    report = read_csv(wait_for(drop.report("cut.csv")))
    assert len(report) == 1 + 2 * GROUP + 1 and report[-1][1] == f"batch {found.id}"
    assert {r[4] for r in listed} <= {r[0] for r in report[1:-1]}


def test_ftp_batch_cut_off_whose_file_no_longer_reads_is_failed_not_guessed(
    hubs: list[HubThread], tmp_path: Path
) -> None:
    drop, data = _crash_after_two_groups(hubs, tmp_path)
    [original] = (data / "ftp-work" / "acme").glob("*-cut.csv")
    original.write_bytes(b"")  # the disk lost it while the hub was down
    second = HubThread(drop.hub.config).start()
    hubs.append(second)
    rows = read_csv(wait_for(drop.home / "results" / "cut.result.csv"))
    assert rows[-2][3] == "not_processed" and "could not be read again" in rows[-2][7]
    # The batch row follows the published result file a moment later (docs/ftp.md).
    wait_for(drop.home, check=lambda _: second.spool.list_batches(None, 1)[0].state
             is BatchState.FAILED)
    found = second.spool.list_batches(None, 1)[0]
    assert (drop.home / "rejected" / f"{found.id}-cut.csv").exists()


def _ftp_settings() -> dict[str, Any]:
    from tests.ftpdrop import FTP_DEFAULTS  # noqa: PLC0415

    return {**FTP_DEFAULTS, "rows_per_group": GROUP}


def test_ftp_passive_connections_use_the_configured_port_range(
    make_hub: Callable[..., HubThread]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    drop = make_drop(make_hub, passive_port_min=port, passive_port_max=port)
    ftp = drop.client()
    assert ftp.makepasv() == ("127.0.0.1", port)
    drop.upload("pasv.csv", "to,text\n0821234567,hi\n", ftp)  # a data connection on it
    assert "results" in ftp.nlst()
    ftp.quit()
    assert drop.result("pasv.csv")[1][3] == "accepted"
    other = drop.client()
    with pytest.raises(ftplib.error_perm):
        other.sendcmd("PORT 10,0,0,1,4,1")  # nor to a foreign address
    other.quit()

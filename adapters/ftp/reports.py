"""The delivery-report files of the FTP drop: `reports/<name>.report.csv` of each batch
whose messages are being delivered (accepted, or failed part-way after accepting some),
rewritten when their statuses change (throttled by batch size), final once all are final;
with several nodes, by the node that holds the batch's lease."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from adapters.csv.results import ReportWriter
from adapters.ftp.homes import Homes
from adapters.ftp.store import FtpStore
from hub.batches import Batch, BatchProgress, needs_report, reported
from hub.errors import TemporaryFailure
from hub.faultlog import FaultLog
from hub.spoolcall import SpoolThreads

log = logging.getLogger(__name__)
REPORT_PAGE = 5000
# A rewrite reads every message of the batch: at most one per this many messages a second.
MESSAGES_PER_SECOND = 20_000


class ReportJob:
    """Rewrites the report file of each batch being delivered when its status counts
    changed. A batch of N messages is read no more often than every
    max(interval, N / read_rate) seconds, so at the default rate a million-message batch
    costs one full read every 50 s, not every 5 s. `clock` gives monotonic seconds."""

    def __init__(self, runner: SpoolThreads[FtpStore], homes: Homes, interval: float, *,
                 read_rate: float = MESSAGES_PER_SECOND,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._runner = runner
        self._homes = homes
        self._interval = interval
        self._read_rate = read_rate
        self._clock = clock
        self._seen: dict[str, dict[str, int]] = {}
        self._next: dict[str, float] = {}
        self._names: dict[int, str] = {}
        self._lock = asyncio.Lock()
        # The batches this node holds a lease on (None: every batch, one node alone); only
        # their holder rewrites a report file, so two nodes never race on one.
        self.held: set[str] | None = None
        # A spool down or a disk full fails every sweep alike: said once, not each time.
        self._faults = FaultLog(log, "FTP report sweep failing", "ftp-reports")

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sweep()
            except (TemporaryFailure, OSError) as exc:
                self._faults.failed(str(exc))
                continue
            except Exception:
                log.exception("report sweep failed", extra={"action": "ftp-reports"})
                continue
            self._faults.cleared()

    def hold(self, batch_id: str) -> None:
        """This node now holds the batch (recorded or taken over): its report is ours."""
        if self.held is not None:
            self.held.add(batch_id)

    async def sweep(self) -> None:
        for batch in await self._runner.call(self._runner.spool.reporting_batches):
            if self.held is not None and batch.id not in self.held:
                continue
            if self._clock() >= self._next.get(batch.id, 0.0):
                await self.refresh(batch)

    async def finished(self, batch: Batch) -> None:
        """A batch just read to the end or stopped part-way: its first report file now if
        it is small, else at the sweep after its throttle, not while its messages are first
        dispatched. Never raises: the batch is settled already (also at start-up
        recovery), and the sweep writes a report this could not."""
        delay = batch.accepted / self._read_rate
        if delay > self._interval:
            self._next[batch.id] = self._clock() + delay
            return
        try:
            await self.refresh(batch)
        except Exception:
            log.exception("report file of batch %s not written; the sweep retries",
                          batch.id, extra={"action": "ftp-reports"})

    async def refresh(self, batch: Batch) -> None:
        async with self._lock:  # the sweep and a just-finished batch may meet here
            spool = self._runner.spool
            counts = await self._runner.call(spool.batch_status_counts, batch.id)
            key = {status.value: n for status, n in counts.items()}
            if self._seen.get(batch.id) == key:
                return  # nothing changed: no need to read the messages
            progress = BatchProgress(batch, counts)
            if needs_report(progress):
                account = await self._account_name(batch.account_id)
                await self._runner.call(self._write, account, progress, progress.all_final)
            if progress.all_final:  # the file is written first, then the batch row says so
                await self._runner.call(spool.update_batch,
                                        reported(progress, datetime.now(UTC)))
                self._seen.pop(batch.id, None)
                self._next.pop(batch.id, None)
                return
            self._seen[batch.id] = key
            self._next[batch.id] = self._clock() + max(
                self._interval, progress.messages / self._read_rate)

    async def _account_name(self, account_id: int) -> str:
        if account_id not in self._names:
            account = await self._runner.call(self._runner.spool.get_account_by_id, account_id)
            self._names[account_id] = account.name
        return self._names[account_id]

    def _write(self, account: str, progress: BatchProgress, final: bool) -> None:
        """Runs in a spool thread: pages through the batch's messages into the file."""
        batch = progress.batch
        writer = ReportWriter(self._homes.work_file(account, f"{batch.id}.report.tmp"))
        try:
            after = ""
            while page := self._runner.spool.batch_messages(batch.id, after, REPORT_PAGE):
                writer.write(page)
                after = page[-1].id
            counts = (f"delivered {progress.delivered}, failed {progress.failed}, "
                      f"pending {progress.pending}")
            writer.publish(self._homes.report_path(account, batch.file_name), batch, final,
                           counts)
        except BaseException:
            # The spool went away between pages, or the disk filled: the next sweep
            # writes the file afresh; this one's handle must not stay open meanwhile.
            writer.discard()
            raise

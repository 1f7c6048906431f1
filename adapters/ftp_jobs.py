"""What happens to a dropped file, on the hub's event loop: hash it, refuse duplicates,
stream its rows through intake in groups, write the result file, file the original away;
and the periodic job that rewrites the delivery-report files of unfinished batches."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters import csv_batch
from adapters.csv_batch import FileRules, Row, UnreadableFile
from adapters.csv_decode import sha256_file
from adapters.csv_results import ReportWriter, ResultWriter
from adapters.ftp_homes import Homes
from hub.batches import Batch, BatchProgress, BatchState, next_state
from hub.intake import Intake
from hub.model import Account, Outcome, Source
from hub.spoolcall import SpoolRunner

log = logging.getLogger(__name__)
REPORT_PAGE = 5000


@dataclass(frozen=True, slots=True)
class JobSettings:
    rules: FileRules
    rows_per_group: int = 2000
    duplicate_window: float = 86_400.0
    report_interval: float = 5.0


def _now() -> datetime:
    return datetime.now(UTC)


class BatchProcessor:
    """Turns one claimed upload into a batch: result file, messages, the original filed."""

    def __init__(self, intake: Intake, runner: SpoolRunner, homes: Homes,
                 settings: JobSettings, reports: ReportJob) -> None:
        self._intake = intake
        self._runner = runner
        self._homes = homes
        self._settings = settings
        self._reports = reports
        self._claim_lock = asyncio.Lock()  # duplicate check and batch insert, in order

    async def process(self, account_name: str, work: Path, file_name: str) -> None:
        try:
            await self._process(account_name, work, file_name)
        except Exception:
            log.exception("batch file %s of %s failed", file_name, account_name,
                          extra={"action": "ftp-batch-failed"})
            if work.exists():
                self._homes.file_away(account_name, work, file_name, "rejected")

    async def _process(self, account_name: str, work: Path, file_name: str) -> None:
        spool = self._runner.spool
        account = await self._runner.call(spool.get_account, account_name)
        sha = await asyncio.to_thread(sha256_file, work)
        batch_id = work.name.split("-", 1)[0]
        batch, earlier = await self._register(account, batch_id, file_name, sha)
        if earlier is not None:
            await asyncio.to_thread(self._answer_duplicate, account_name, work, batch, earlier)
            return
        try:
            source = await asyncio.to_thread(csv_batch.open_batch, work, self._settings.rules)
        except UnreadableFile as exc:
            await self._answer_unreadable(account_name, work, batch, str(exc))
            return
        batch = replace(batch, format=source.format)
        await self._run_rows(account, batch, source, work)

    async def _register(
        self, account: Account, batch_id: str, file_name: str, sha: str
    ) -> tuple[Batch, Batch | None]:
        spool, now = self._runner.spool, _now()
        batch = Batch(id=batch_id, account_id=account.id, file_name=file_name, sha256=sha,
                      format="", received_at=now, state=BatchState.PROCESSING)
        async with self._claim_lock:
            earlier = None
            if self._settings.duplicate_window > 0:
                since = now - timedelta(seconds=self._settings.duplicate_window)
                earlier = await self._runner.call(spool.find_batch_by_content,
                                                  account.id, sha, since)
            if earlier is not None:
                batch = replace(batch, state=BatchState.DUPLICATE, duplicate_of=earlier.id,
                                finished_at=now)
            await self._runner.call(spool.create_batch, batch)
        return batch, earlier

    def _answer_duplicate(self, account: str, work: Path, batch: Batch, earlier: Batch) -> None:
        writer = self._writer(account, batch)
        writer.note("duplicate", f"same content as batch {earlier.id} ('{earlier.file_name}', "
                    f"received {earlier.received_at.isoformat(timespec='seconds')}): "
                    "nothing was sent")
        writer.publish(self._homes.result_path(account, batch.file_name))
        self._homes.file_away(account, work, batch.file_name, "processed")
        log.info("batch %s is a duplicate of %s", batch.id, earlier.id,
                 extra={"action": "ftp-duplicate"})

    async def _answer_unreadable(self, account: str, work: Path, batch: Batch,
                                 reason: str) -> None:
        def write() -> None:
            writer = self._writer(account, batch)
            writer.note("unreadable", reason)
            writer.publish(self._homes.result_path(account, batch.file_name))
            kept = self._homes.file_away(account, work, batch.file_name, "rejected")
            kept.with_name(kept.name + ".reason.txt").write_text(reason + "\n", "utf-8")

        await asyncio.to_thread(write)
        done = replace(batch, state=BatchState.UNREADABLE, finished_at=_now())
        await self._runner.call(self._runner.spool.update_batch, done)

    def _writer(self, account: str, batch: Batch) -> ResultWriter:
        tmp = self._homes.work_file(account, f"{batch.id}.result.tmp")
        return ResultWriter(tmp, self._settings.rules.region)

    async def _run_rows(self, account: Account, batch: Batch,
                        source: csv_batch.BatchSource, work: Path) -> None:
        writer = await asyncio.to_thread(self._writer, account.name, batch)
        rows = source.rows()
        try:
            while chunk := await asyncio.to_thread(csv_batch.take, rows,
                                                   self._settings.rows_per_group):
                outcomes = await self._submit(account, batch.id, chunk)
                await asyncio.to_thread(writer.write, chunk, outcomes)
                t = writer.totals
                batch = replace(batch, rows=t.rows, accepted=t.accepted, rejected=t.rejected)
                await self._runner.call(self._runner.spool.update_batch, batch)
        except BaseException:
            await asyncio.to_thread(writer.discard)
            raise
        await self._finish(account.name, batch, writer, work)

    async def _submit(self, account: Account, batch_id: str,
                      chunk: list[Row]) -> list[Outcome | None]:
        ready = [row.submission for row in chunk if row.submission is not None]
        outcomes = iter(await self._intake.submit(account, Source.FTP, ready,
                                                  batch_id=batch_id))
        return [next(outcomes) if row.submission is not None else None for row in chunk]

    async def _finish(self, account: str, batch: Batch, writer: ResultWriter,
                      work: Path) -> None:
        def publish() -> None:
            writer.publish(self._homes.result_path(account, batch.file_name))
            self._homes.file_away(account, work, batch.file_name, "processed")

        await asyncio.to_thread(publish)
        batch = replace(batch, state=BatchState.ACCEPTED)
        await self._runner.call(self._runner.spool.update_batch, batch)
        log.info("batch %s (%s): %d rows, %d accepted, %d rejected", batch.id,
                 batch.file_name, batch.rows, batch.accepted, batch.rejected,
                 extra={"action": "ftp-batch"})
        await self._reports.refresh(batch)


class ReportJob:
    """Rewrites `reports/<name>.report.csv` of each unfinished batch when its messages'
    statuses have changed, and marks the batch final once every message is final."""

    def __init__(self, runner: SpoolRunner, homes: Homes, interval: float) -> None:
        self._runner = runner
        self._homes = homes
        self._interval = interval
        self._seen: dict[str, dict[str, int]] = {}
        self._names: dict[int, str] = {}
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("report sweep failed", extra={"action": "ftp-reports"})

    async def sweep(self) -> None:
        for batch in await self._runner.call(self._runner.spool.open_batches):
            if batch.state is BatchState.ACCEPTED:
                await self.refresh(batch)

    async def refresh(self, batch: Batch) -> None:
        async with self._lock:  # the sweep and a just-finished batch may meet here
            spool = self._runner.spool
            counts = await self._runner.call(spool.batch_status_counts, batch.id)
            key = {status.value: n for status, n in counts.items()}
            if self._seen.get(batch.id) == key:
                return
            progress = BatchProgress(batch, counts)
            state = next_state(progress)
            account = await self._account_name(batch.account_id)
            await self._runner.call(self._write, account, progress, state is BatchState.FINAL)
            self._seen[batch.id] = key
            if state is not batch.state:
                await self._runner.call(spool.update_batch,
                                        replace(batch, state=state, finished_at=_now()))
                self._seen.pop(batch.id, None)

    async def _account_name(self, account_id: int) -> str:
        if account_id not in self._names:
            account = await self._runner.call(self._runner.spool.get_account_by_id, account_id)
            self._names[account_id] = account.name
        return self._names[account_id]

    def _write(self, account: str, progress: BatchProgress, final: bool) -> None:
        """Runs in a spool thread: pages through the batch's messages into the file."""
        batch = progress.batch
        writer = ReportWriter(self._homes.work_file(account, f"{batch.id}.report.tmp"))
        after = ""
        while page := self._runner.spool.batch_messages(batch.id, after, REPORT_PAGE):
            writer.write(page)
            after = page[-1].id
        counts = (f"delivered {progress.delivered}, failed {progress.failed}, "
                  f"pending {progress.pending}")
        writer.publish(self._homes.report_path(account, batch.file_name), batch, final, counts)

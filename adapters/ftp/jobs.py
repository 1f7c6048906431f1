"""What happens to a dropped file, on the hub's event loop: hash it, refuse duplicates,
run its rows through intake (`ftp_pipeline`), write the result file and file the original
away. A batch the spool stops part-way is marked failed; one a stop or crash cut off is
resumed at start-up after the rows the spool already holds, and one the FTP area has no
room for waits and is resumed the same way once there is room."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
from collections.abc import Awaitable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.csv import detect
from adapters.csv.decode import UnreadableFile, sha256_file
from adapters.csv.results import ResultWriter
from adapters.csv.rows import Row
from adapters.ftp.homes import Homes, without_paths
from adapters.ftp.pipeline import (
    BatchPaused,
    BatchStopped,
    GroupHook,
    JobSettings,
    ProgressFile,
    RowPipeline,
)
from adapters.ftp.reports import ReportJob
from adapters.ftp.store import FtpStore
from hub.batches import Batch, BatchState
from hub.faultlog import FaultLog
from hub.intake import Intake
from hub.model import Accepted, Account
from hub.spoolcall import SpoolThreads

__all__ = ["BatchProcessor", "JobSettings", "ReportJob"]

log = logging.getLogger(__name__)
BATCH_ID_LENGTH = 26  # a ULID: the prefix `Homes.claim` gives a claimed upload
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Resumed:
    """A batch carried on after a stop: its result file so far and the outcomes the spool
    holds for rows the file does not list yet."""

    writer: ResultWriter
    known: Mapping[int, Accepted]


class BatchProcessor:
    """Turns one claimed upload into a batch: result file, messages, the original filed.
    `group_hook`, when set, is awaited after each group (tests pause a batch with it)."""

    def __init__(self, intake: Intake, runner: SpoolThreads[FtpStore], homes: Homes,
                 settings: JobSettings, reports: ReportJob) -> None:
        self._intake = intake
        self._runner = runner
        self._homes = homes
        self._settings = settings
        self._reports = reports
        self._claim_lock = asyncio.Lock()  # duplicate check and batch insert, in order
        self.group_hook: GroupHook | None = None
        # Set when the hub stops: batches pause after their group in flight.
        self.stopping = asyncio.Event()
        self._no_room = FaultLog(log, "FTP area full: batches wait for room", "ftp-space")
        self._waiting: set[asyncio.Task[None]] = set()

    async def process(self, account_name: str, work: Path, file_name: str) -> None:
        await self._guarded(self._process(account_name, work, file_name), account_name,
                            work, file_name)

    async def _guarded(self, job: Awaitable[None], account_name: str, work: Path,
                       file_name: str) -> None:
        try:
            await job
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
            source = await asyncio.to_thread(detect.open_batch, work, self._settings.rules)
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
            writer.note("unreadable", without_paths(reason))
            writer.publish(self._homes.result_path(account, batch.file_name))
            self._reject(account, work, batch.file_name, reason)

        await asyncio.to_thread(write)
        done = replace(batch, state=BatchState.UNREADABLE, finished_at=_now())
        await self._runner.call(self._runner.spool.update_batch, done)

    def _reject(self, account: str, work: Path, file_name: str, reason: str) -> None:
        kept = self._homes.file_away(account, work, file_name, "rejected")
        kept.with_name(kept.name + ".reason.txt").write_text(without_paths(reason) + "\n",
                                                             "utf-8")

    def _result_tmp(self, account: str, batch_id: str) -> Path:
        return self._homes.work_file(account, f"{batch_id}.result.tmp")

    def _writer(self, account: str, batch: Batch) -> ResultWriter:
        return ResultWriter(self._result_tmp(account, batch.id), self._settings.rules.region)

    async def _run_rows(self, account: Account, batch: Batch, source: detect.BatchSource,
                        work: Path, resumed: _Resumed | None = None) -> None:
        if resumed is None:
            writer = await asyncio.to_thread(self._writer, account.name, batch)
        else:
            writer = resumed.writer
        progress = ProgressFile(self._homes.progress_path(account.name, batch.file_name),
                                self._settings.progress_interval)
        pipeline = RowPipeline(self._intake, self._runner, self._settings, progress,
                               self.group_hook, self.stopping)
        rows = source.rows()
        feed: Iterator[Row] = rows
        if resumed is not None:  # the result file lists these rows already
            after = resumed.writer.last_line
            feed = itertools.dropwhile(lambda row: row.line <= after, rows)
        try:
            batch = await pipeline.run(account, batch, feed, writer,
                                       None if resumed is None else resumed.known)
        except BatchStopped as stop:
            if _out_of_space(stop):
                await self._wait_for_room(stop, writer)
                return
            await self._stopped(account.name, stop, writer, work, progress)
            return
        except BatchPaused as paused:  # left `processing`, its files kept: resumed later
            await asyncio.to_thread(writer.close)
            log.info("batch %s (%s) paused after line %d: the hub is stopping; it resumes "
                     "at the next start", batch.id, batch.file_name, paused.after_line,
                     extra={"action": "ftp-batch-paused"})
            return
        except BaseException:  # cancelled: the next start-up recovers the batch
            await asyncio.to_thread(writer.close)
            raise
        finally:
            await asyncio.to_thread(rows.close)  # closes the file, off the event loop
        await self._finish(account.name, batch, writer, work, progress)

    async def _wait_for_room(self, stop: BatchStopped, writer: ResultWriter) -> None:
        """The FTP area is full: nothing is lost, so nothing is failed. The batch stays
        `processing` with its upload and result file so far, and every `report_interval`
        seconds it is tried again as a restart would resume it (after the rows its result
        file lists, the rows the spool holds since then kept), until there is room."""
        with contextlib.suppress(OSError):  # its last buffered rows may not fit: resume drops
            await asyncio.to_thread(writer.close)  # a row cut off mid-write
        self._no_room.failed(f"batch {stop.batch.id} ({stop.batch.file_name}) waits after "
                             f"line {stop.after_line}: {stop.__cause__}")
        task = asyncio.create_task(self._resume_when_room(stop.batch))
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    async def waits_ended(self) -> None:
        """At stop (after `stopping` is set): batches waiting for room stop waiting; the
        next start resumes them."""
        await asyncio.gather(*self._waiting, return_exceptions=True)

    async def _resume_when_room(self, batch: Batch) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self._settings.report_interval)
                return  # the hub stops: the next start resumes it
            try:
                job = await self._recover_one(batch)
            except OSError as exc:  # no room yet to carry its result file on
                self._no_room.failed(f"batch {batch.id} ({batch.file_name}) waits: {exc}")
                continue
            self._no_room.cleared()
            if job is not None:
                await job  # if the area fills again, it waits again
            return

    async def _finish(self, account: str, batch: Batch, writer: ResultWriter,
                      work: Path, progress: ProgressFile) -> None:
        def publish() -> None:
            writer.publish(self._homes.result_path(account, batch.file_name))
            progress.remove()
            self._homes.file_away(account, work, batch.file_name, "processed")

        await asyncio.to_thread(publish)
        batch = replace(batch, state=BatchState.ACCEPTED)
        await self._runner.call(self._runner.spool.update_batch, batch)
        log.info("batch %s (%s): %d rows, %d accepted, %d rejected", batch.id,
                 batch.file_name, batch.rows, batch.accepted, batch.rejected,
                 extra={"action": "ftp-batch"})
        await self._reports.finished(batch)

    async def _stopped(self, account: str, stop: BatchStopped, writer: ResultWriter,
                       work: Path | None, progress: ProgressFile) -> None:
        """Publish what was processed, say why the rest was not, file the original in
        rejected/ and mark the batch failed: it never stays `processing`. Its accepted
        messages still get their report file."""
        batch = stop.batch
        where = f"line {stop.after_line}" if stop.after_line else "the header"
        reason = without_paths(f"rows after {where} were not processed: {stop.reason}. The "
                               "rows above were processed as shown; send the rest in a new "
                               "file")

        def write() -> None:
            writer.note("not_processed", reason)
            writer.publish(self._homes.result_path(account, batch.file_name))
            progress.remove()
            if work is not None and work.exists():
                self._reject(account, work, batch.file_name, reason)

        await asyncio.to_thread(write)
        failed = replace(batch, state=BatchState.FAILED, finished_at=_now())
        await self._runner.call(self._runner.spool.update_batch, failed)
        log.error("batch %s (%s) failed after %d rows: %s", batch.id, batch.file_name,
                  batch.rows, stop.reason, extra={"action": "ftp-batch-failed"})
        # The messages it did accept are sent: their report file follows as for any batch.
        await self._reports.finished(failed)

    async def recover(self) -> list[Awaitable[None]]:
        """At start-up: a batch still `processing` was cut off by a stop or crash. Where
        its upload is still in the work area, the batch is resumed: returned as a job for
        the caller to run beside new uploads. Otherwise what its files show is settled.
        Uploads claimed but never registered as a batch are processed as new."""
        jobs: list[Awaitable[None]] = []
        for batch in await self._runner.call(self._runner.spool.open_batches):
            if batch.state is BatchState.PROCESSING:
                job = await self._recover_one(batch)
                if job is not None:
                    jobs.append(job)
        return jobs + await self._unregistered_uploads()

    async def _unregistered_uploads(self) -> list[Awaitable[None]]:
        """The client was answered 226 and the hub moved the file to the work area, but
        died before the batch row was committed: without this the upload would lie there
        unanswered for ever. Each such file is processed now, as if just uploaded."""
        jobs: list[Awaitable[None]] = []
        for account, work in await asyncio.to_thread(self._claimed_originals):
            batch_id, file_name = work.name.split("-", 1)
            if await self._runner.call(self._runner.spool.get_batch, batch_id) is None:
                log.warning("upload %s of %s was received but not registered before the hub "
                            "stopped; processing it now", file_name, account,
                            extra={"action": "ftp-batch-recover"})
                jobs.append(self.process(account, work, file_name))
        return jobs

    def _claimed_originals(self) -> list[tuple[str, Path]]:
        """(account, file) of each claimed original in the work area: `<batch id>-<name>`
        (the hub's own work files are `<batch id>.<kind>.tmp`)."""
        if not self._homes.work.is_dir():
            return []
        return [(folder.name, path) for folder in sorted(self._homes.work.iterdir())
                if folder.is_dir() for path in sorted(folder.iterdir())
                if path.is_file() and path.name[BATCH_ID_LENGTH:BATCH_ID_LENGTH + 1] == "-"]

    async def _recover_one(self, batch: Batch) -> Awaitable[None] | None:
        account = await self._runner.call(self._runner.spool.get_account_by_id,
                                          batch.account_id)
        tmp = self._homes.work / account.name / f"{batch.id}.result.tmp"
        originals = list((self._homes.work / account.name).glob(f"{batch.id}-*"))
        if not tmp.exists() and not originals:
            await self._settle_filed(account.name, batch)
            return None
        writer = await asyncio.to_thread(self._resumed_writer, account.name, batch, tmp)
        t = writer.totals
        counted = replace(batch, rows=t.rows, accepted=t.accepted, rejected=t.rejected)
        if originals:
            return self._guarded(self._resume(account, counted, writer, originals[0]),
                                 account.name, originals[0], batch.file_name)
        stored = await self._runner.call(self._runner.spool.batch_status_counts, batch.id)
        stop = BatchStopped(counted, writer.last_line, "the hub stopped while processing "
                            f"the file and the file is gone (the spool holds "
                            f"{sum(stored.values())} messages of this batch)")
        progress = ProgressFile(self._homes.progress_path(account.name, batch.file_name), 0)
        await self._stopped(account.name, stop, writer, None, progress)
        return None

    async def _resume(self, account: Account, batch: Batch, writer: ResultWriter,
                      work: Path) -> None:
        """Carry on after the last row the result file lists. The rows after it that the
        spool holds (committed just before the stop, not yet listed) keep their stored
        outcome; only the others go through intake, so no row is sent twice."""
        try:
            source = await asyncio.to_thread(detect.open_batch, work, self._settings.rules)
        except UnreadableFile as exc:  # read before the stop; not now
            stop = BatchStopped(batch, writer.last_line, f"the file could not be read again "
                                f"when the hub restarted ({exc})")
            progress = ProgressFile(self._homes.progress_path(account.name, batch.file_name),
                                    0)
            await self._stopped(account.name, stop, writer, work, progress)
            return
        known = await self._runner.call(self._runner.spool.batch_outcomes, batch.id,
                                        writer.last_line)
        log.info("batch %s (%s) resumed after line %d; %d later rows were already committed",
                 batch.id, batch.file_name, writer.last_line, len(known),
                 extra={"action": "ftp-batch-resume"})
        await self._run_rows(account, replace(batch, format=source.format), source, work,
                             _Resumed(writer, known))

    async def _settle_filed(self, account: str, batch: Batch) -> None:
        """No work files: the hub stopped after filing the original away but before the
        batch row said so; where the original went tells how the batch ended."""
        name = f"{batch.id}-{batch.file_name}"
        home = self._homes.home(account)
        if (home / "processed" / name).exists():
            state = BatchState.ACCEPTED
        elif (home / "rejected" / name).exists():
            state = BatchState.FAILED
        else:
            log.warning("batch %s (%s) was left processing but has no files on this node",
                        batch.id, batch.file_name, extra={"action": "ftp-batch-recover"})
            return
        finished = None if state is BatchState.ACCEPTED else _now()
        await self._runner.call(self._runner.spool.update_batch,
                                replace(batch, state=state, finished_at=finished))

    def _resumed_writer(self, account: str, batch: Batch, tmp: Path) -> ResultWriter:
        region = self._settings.rules.region
        fresh = self._homes.work_file(account, f"{batch.id}.recovered.tmp")
        if tmp.exists():
            return ResultWriter.resume(tmp, fresh, region)
        return ResultWriter(fresh, region)


def _out_of_space(stop: BatchStopped) -> bool:
    cause = stop.__cause__
    return isinstance(cause, OSError) and cause.errno in _NO_SPACE

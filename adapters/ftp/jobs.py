"""What happens to a dropped file, on the hub's event loop: record it (leased to this
node) before its 226, hash it, refuse duplicates, run its rows through intake
(`ftp_pipeline`), write the result file and file the original away. A batch a stop or
crash cut off is resumed after the rows the spool already holds, by this node at its next
start or by any node once its lease lapses; one the FTP area has no room for, or that the
spool cannot take for a while (a database restart or failover), waits and is resumed the
same way once it can go on."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
from collections.abc import Awaitable, Iterator, Mapping
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ulid import ULID

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
    LeaseCheck,
    ProgressFile,
    RowPipeline,
)
from adapters.ftp.reports import ReportJob
from adapters.ftp.store import FtpStore
from hub.batches import Batch, BatchState
from hub.errors import TemporaryFailure
from hub.faultlog import FaultLog
from hub.intake import Intake
from hub.model import Accepted, Account
from hub.spoolcall import SpoolThreads

__all__ = ["BatchProcessor", "JobSettings", "Lease", "ReportJob"]

log = logging.getLogger(__name__)
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Resumed:
    """A batch carried on after a stop: its result file so far and the outcomes the spool
    holds for rows the file does not list yet."""

    writer: ResultWriter
    known: Mapping[int, Accepted]


@dataclass(frozen=True, slots=True)
class Lease:
    """This node's name on the batches it works, and how long a lease lasts unrenewed:
    another node takes a batch over once its lease has lapsed."""

    node: str
    seconds: float

    def until(self) -> datetime:
        return _now() + timedelta(seconds=self.seconds)


class BatchProcessor:
    """Turns one claimed upload into a batch: result file, messages, the original filed.
    `group_hook`, when set, is awaited after each group (tests pause a batch with it)."""

    def __init__(self, intake: Intake, runner: SpoolThreads[FtpStore], homes: Homes,
                 settings: JobSettings, reports: ReportJob, lease: Lease) -> None:
        self._intake = intake
        self._runner = runner
        self._homes = homes
        self._settings = settings
        self._reports = reports
        self.lease = lease
        self.group_hook: GroupHook | None = None
        # Set when the hub stops: batches pause after their group in flight.
        self.stopping = asyncio.Event()
        self._no_room = FaultLog(log, "FTP area full: batches wait for room", "ftp-space")
        self._no_spool = FaultLog(log, "spool away: FTP batches wait for it", "ftp-spool")
        # Batches waiting for room or for the spool, by id: still this node's meanwhile.
        self._waiting: dict[str, asyncio.Task[None]] = {}
        # Batches this process is working (or waiting): never taken over twice.
        self._active: set[str] = set()

    async def process(self, account_name: str, work: Path, file_name: str,
                      registered: Future[None] | None = None) -> None:
        """A claimed upload: recorded in the spool, leased to this node, before
        `registered` is resolved (the drop's cue to answer 226), then processed. If it
        cannot be recorded, `registered` fails and the file is removed: the client,
        answered 451, sends it again."""
        try:
            batch = await self._receive(account_name, work, file_name)
        except Exception as exc:
            if registered is None:  # an orphan found in the work area: tried again later
                log.warning("upload %s of %s not recorded: %s", file_name, account_name, exc,
                            extra={"action": "ftp-upload"})
                return
            await asyncio.to_thread(work.unlink, missing_ok=True)
            _resolve(registered, exc)
            return
        if registered is not None:
            _resolve(registered, None)
        if batch is not None:  # else another node recorded it first, and processes it
            await self._guarded(batch.id, self._run_new(batch, work), account_name, work,
                                file_name)

    async def _receive(self, account_name: str, work: Path, file_name: str) -> Batch | None:
        spool = self._runner.spool
        account = await self._runner.call(spool.get_account, account_name)
        batch = Batch(id=work.name.split("-", 1)[0], account_id=account.id,
                      file_name=file_name, sha256="", format="", received_at=_now(),
                      state=BatchState.PROCESSING)
        taken = await self._runner.call(spool.receive_batch, batch, self.lease.node,
                                        self.lease.until())
        if not taken:
            return None
        self._reports.hold(batch.id)
        return batch

    async def _guarded(self, batch_id: str, job: Awaitable[None], account_name: str,
                       work: Path, file_name: str) -> None:
        try:
            await job
        except TemporaryFailure as exc:
            # The spool went away outside a group of rows (before the file was read, or
            # as the batch's end was recorded): the upload was acknowledged, so its files
            # stay where they are and it carries on, as after a restart, once it is back.
            self._wait(batch_id, self._no_spool, f"batch {batch_id} ({file_name}) waits: {exc}")
        except Exception:
            log.exception("batch file %s of %s failed", file_name, account_name,
                          extra={"action": "ftp-batch-failed"})
            if work.exists():
                self._homes.file_away(account_name, work, file_name, "rejected")

    async def _run_new(self, batch: Batch, work: Path) -> None:
        """A recorded upload not yet read: hashed, checked against earlier uploads (once,
        cluster-wide), then its rows."""
        spool = self._runner.spool
        self._active.add(batch.id)
        try:
            account = await self._runner.call(spool.get_account_by_id, batch.account_id)
            batch = replace(batch, sha256=await asyncio.to_thread(sha256_file, work))
            window = self._settings.duplicate_window
            since = batch.received_at - timedelta(seconds=window) if window > 0 else None
            earlier = await self._runner.call(spool.settle_batch_content, batch, since)
            if earlier is not None:
                await asyncio.to_thread(self._answer_duplicate, account.name, work, batch,
                                        earlier)
                return
            try:
                source = await asyncio.to_thread(detect.open_batch, work, self._settings.rules)
            except UnreadableFile as exc:
                await self._answer_unreadable(account.name, work, batch, str(exc))
                return
            await self._run_rows(account, replace(batch, format=source.format), source, work)
        finally:
            self._active.discard(batch.id)

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
                               self.group_hook, self.stopping, self._keeper(batch.id))
        rows = source.rows()
        self._active.add(batch.id)
        feed: Iterator[Row] = rows
        if resumed is not None:  # the result file lists these rows already
            after = resumed.writer.last_line
            feed = itertools.dropwhile(lambda row: row.line <= after, rows)
        try:
            batch = await pipeline.run(account, batch, feed, writer,
                                       None if resumed is None else resumed.known)
        except BatchStopped as stop:
            if _out_of_space(stop) or isinstance(stop.__cause__, TemporaryFailure):
                await self._wait_to_go_on(stop, writer)
                return
            await self._stopped(account.name, stop, writer, work, progress)
            return
        except BatchPaused as paused:  # left `processing`, its files kept: resumed later
            await asyncio.to_thread(writer.close)
            if paused.taken:
                log.warning("batch %s (%s) stopped after line %d: another node took it over "
                            "(this node's lease lapsed)", batch.id, batch.file_name,
                            paused.after_line, extra={"action": "ftp-batch-lost"})
                return
            log.info("batch %s (%s) paused after line %d: the hub is stopping; it resumes "
                     "at the next start or on another node", batch.id, batch.file_name,
                     paused.after_line, extra={"action": "ftp-batch-paused"})
            return
        except BaseException:  # cancelled: the next start-up recovers the batch
            await asyncio.to_thread(writer.close)
            raise
        finally:
            self._active.discard(batch.id)
            await asyncio.to_thread(rows.close)  # closes the file, off the event loop
        await self._finish(account.name, batch, writer, work, progress)

    def _keeper(self, batch_id: str) -> LeaseCheck:
        async def keep() -> bool:
            try:
                return await self._runner.call(self._runner.spool.keep_batch_lease, batch_id,
                                               self.lease.node, self.lease.until())
            except TemporaryFailure:  # the group's own commit retries, then stops the batch
                return True
        return keep

    async def _wait_to_go_on(self, stop: BatchStopped, writer: ResultWriter) -> None:
        """The FTP area is full, or the spool still refused a group after its retries
        (unreachable, its disk full): nothing is lost, so nothing is failed. The batch
        stays `processing` with its upload and result file so far and waits (`_wait`)."""
        with contextlib.suppress(OSError):  # its last buffered rows may not fit: resume drops
            await asyncio.to_thread(writer.close)  # a row cut off mid-write
        faults = self._no_room if _out_of_space(stop) else self._no_spool
        self._wait(stop.batch.id, faults, f"batch {stop.batch.id} ({stop.batch.file_name}) "
                   f"waits after line {stop.after_line}: {stop.__cause__}")

    def _wait(self, batch_id: str, faults: FaultLog, why: str) -> None:
        """Every `report_interval` seconds the batch is tried again as a restart would
        resume it (after the rows its result file lists, the rows the spool holds since
        then kept), until it goes on or the hub stops."""
        faults.failed(why)
        task = asyncio.create_task(self._go_on_later(batch_id, faults))
        self._waiting[batch_id] = task

        def done(_: asyncio.Task[None]) -> None:
            if self._waiting.get(batch_id) is task:  # not a later wait of the same batch
                del self._waiting[batch_id]

        task.add_done_callback(done)

    async def waits_ended(self) -> None:
        """At stop (after `stopping` is set): waiting batches stop waiting; the next start,
        or another node, resumes them."""
        while waiting := [t for t in self._waiting.values() if not t.done()]:
            await asyncio.gather(*waiting, return_exceptions=True)

    async def _go_on_later(self, batch_id: str, faults: FaultLog) -> None:
        spool, lease = self._runner.spool, self.lease
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.report_interval):
                    await self.stopping.wait()
                return  # the hub stops: the next start resumes it
            try:
                # Still this node's? A spool away for longer than a lease let another
                # node take the batch over when it came back.
                if not await self._runner.call(spool.keep_batch_lease, batch_id, lease.node,
                                               lease.until()):
                    log.warning("batch %s was taken over by another node while it waited",
                                batch_id, extra={"action": "ftp-batch-lost"})
                    return
                batch = await self._runner.call(spool.get_batch, batch_id)
                job = (None if batch is None or batch.state is not BatchState.PROCESSING
                       else await self._recover_one(batch))
            except (OSError, TemporaryFailure) as exc:  # no room, or no spool, yet
                faults.failed(f"batch {batch_id} waits: {exc}")
                continue
            faults.cleared()
            if job is not None:
                await job  # if it cannot go on again, it waits again
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
        """At start-up: take back the batches leased in this node's name (it restarted)
        with those no live node holds, as `take_over` does."""
        return await self.take_over(own=True)

    async def take_over(self, own: bool = False) -> list[Awaitable[None]]:
        """Lease to this node the open batches no live node holds (a clean stop let them
        go, or their node's lease lapsed: it died). A batch still `processing` was cut
        off: where its upload is in the work area it is resumed, returned as a job for
        the caller to run beside new uploads; otherwise what its files show is settled.
        A batch being delivered needs only its report file, which this node now writes.
        Uploads claimed but never recorded are processed as new."""
        spool, lease = self._runner.spool, self.lease
        taken = await self._runner.call(spool.take_batches, lease.node, _now(), lease.until(),
                                        own)
        jobs: list[Awaitable[None]] = []
        for batch in taken:
            self._reports.hold(batch.id)
            if (batch.state is not BatchState.PROCESSING or batch.id in self._active
                    or batch.id in self._waiting):
                continue
            log.info("batch %s (%s) taken by node %s", batch.id, batch.file_name, lease.node,
                     extra={"action": "ftp-batch-takeover"})
            job = await self._recover_one(batch)
            if job is not None:
                jobs.append(job)
        return jobs + await self._unregistered_uploads()

    async def _unregistered_uploads(self) -> list[Awaitable[None]]:
        """A node claimed the file (moved it to the work area) and died before recording
        it, so before its 226: each such file, older than a lease (its node would have
        recorded it by then), is processed as if just uploaded. Recording it decides
        which node does, if several find it."""
        jobs: list[Awaitable[None]] = []
        horizon = _now() - timedelta(seconds=self.lease.seconds)
        for account, work in await asyncio.to_thread(self._homes.claimed_originals):
            batch_id, file_name = work.name.split("-", 1)
            if (_received_at(batch_id) > horizon or batch_id in self._active
                    or batch_id in self._waiting):
                continue  # too young to tell, or this node's own: no need to ask the spool
            if await self._runner.call(self._runner.spool.get_batch, batch_id) is None:
                log.warning("upload %s of %s was claimed but not recorded before its node "
                            "stopped; processing it now", file_name, account,
                            extra={"action": "ftp-batch-recover"})
                jobs.append(self.process(account, work, file_name))
        return jobs

    async def _recover_one(self, batch: Batch) -> Awaitable[None] | None:
        account = await self._runner.call(self._runner.spool.get_account_by_id,
                                          batch.account_id)
        tmp = self._homes.work / account.name / f"{batch.id}.result.tmp"
        originals = list((self._homes.work / account.name).glob(f"{batch.id}-*"))
        if not batch.sha256 and originals:  # recorded and answered 226, never read
            return self._guarded(batch.id, self._run_new(batch, originals[0]), account.name,
                                 originals[0], batch.file_name)
        if not tmp.exists() and not originals and await self._settle_filed(account.name,
                                                                            batch):
            return None
        writer = await asyncio.to_thread(self._resumed_writer, account.name, batch, tmp)
        t = writer.totals
        counted = replace(batch, rows=t.rows, accepted=t.accepted, rejected=t.rejected)
        if originals:
            resumed = self._resume(account, counted, writer, originals[0])
            return self._guarded(batch.id, resumed, account.name, originals[0],
                                 batch.file_name)
        try:
            stored = await self._runner.call(self._runner.spool.batch_status_counts, batch.id)
        except TemporaryFailure:
            await asyncio.to_thread(writer.close)  # kept for the next try
            raise
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
        try:
            known = await self._runner.call(self._runner.spool.batch_outcomes, batch.id,
                                            writer.last_line)
        except TemporaryFailure:
            await asyncio.to_thread(writer.close)  # kept for the next try (`_guarded` waits)
            raise
        log.info("batch %s (%s) resumed after line %d; %d later rows were already committed",
                 batch.id, batch.file_name, writer.last_line, len(known),
                 extra={"action": "ftp-batch-resume"})
        await self._run_rows(account, replace(batch, format=source.format), source, work,
                             _Resumed(writer, known))

    async def _settle_filed(self, account: str, batch: Batch) -> bool:
        """No work files: the hub stopped after filing the original away but before the
        batch row said so; where the original went tells how the batch ended. False if
        it is nowhere (removed, or on a node's own disk: docs/nodes.md)."""
        name = f"{batch.id}-{batch.file_name}"
        home = self._homes.home(account)
        if (home / "processed" / name).exists():
            state = BatchState.ACCEPTED
        elif (home / "rejected" / name).exists():
            state = BatchState.FAILED
        else:
            log.warning("batch %s (%s) was left processing and its files are not in the "
                        "FTP area", batch.id, batch.file_name,
                        extra={"action": "ftp-batch-recover"})
            return False
        finished = None if state is BatchState.ACCEPTED else _now()
        await self._runner.call(self._runner.spool.update_batch,
                                replace(batch, state=state, finished_at=finished))
        return True

    def _resumed_writer(self, account: str, batch: Batch, tmp: Path) -> ResultWriter:
        region = self._settings.rules.region
        fresh = self._homes.work_file(account, f"{batch.id}.recovered.tmp")
        if tmp.exists():
            return ResultWriter.resume(tmp, fresh, region)
        return ResultWriter(fresh, region)


def _resolve(registered: Future[None], exc: Exception | None) -> None:
    try:
        if exc is None:
            registered.set_result(None)
        else:
            registered.set_exception(exc)
    except InvalidStateError:  # the drop gave up waiting (the hub is stopping)
        pass


def _received_at(batch_id: str) -> datetime:
    """When an upload was claimed: its batch id is a ULID made then."""
    try:
        return ULID.from_str(batch_id).datetime
    except ValueError:
        return _now()  # not one of ours: never taken for an orphan


def _out_of_space(stop: BatchStopped) -> bool:
    cause = stop.__cause__
    return isinstance(cause, OSError) and cause.errno in _NO_SPACE

"""A batch file's rows through intake as a bounded pipeline: while one group commits, the
next is parsed and the previous one's result rows are written. After each group the batch
row's counters, the progress file and the log follow; a group the spool refuses is
retried with backoff, then the batch stops with what was committed so far. When the hub
stops, the batch pauses after the group in flight, to be resumed at the next start (or by
another node); before each group the node checks it still holds the batch's lease."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.csv.decode import UnreadableFile
from adapters.csv.detect import RowFeed
from adapters.csv.results import ResultWriter
from adapters.csv.rows import FileRules, Row
from adapters.ftp.homes import without_paths
from hub.batches import Batch
from hub.errors import TemporaryFailure
from hub.intake import Intake
from hub.model import Accepted, Account, Outcome, Source
from hub.ports import BatchStore
from hub.spoolcall import SpoolThreads

log = logging.getLogger(__name__)

GroupHook = Callable[[Batch], Awaitable[None]]
# Renews the batch's lease before a group is submitted; False once another node has it.
LeaseCheck = Callable[[], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class JobSettings:
    rules: FileRules
    rows_per_group: int = 5000
    duplicate_window: float = 86_400.0
    report_interval: float = 5.0
    progress_interval: float = 2.0
    # Seconds to wait before each retry of a group the spool refused (TemporaryFailure).
    retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0)


class BatchStopped(Exception):
    """The rows could not all be processed. `batch` counts the rows processed (and
    written to the result file); every row after line `after_line` was not."""

    def __init__(self, batch: Batch, after_line: int, reason: str) -> None:
        super().__init__(reason)
        self.batch = batch
        self.after_line = after_line
        self.reason = reason


class BatchPaused(Exception):
    """The hub is stopping: every group taken so far is committed and listed, and the
    batch stays `processing` so the next start-up resumes it after `after_line`. With
    `taken`, another node took the batch over (this node's lease lapsed): it goes on
    from what the spool holds, and this node leaves the batch alone."""

    def __init__(self, after_line: int, taken: bool = False) -> None:
        super().__init__(f"paused after line {after_line}")
        self.after_line = after_line
        self.taken = taken


class ProgressFile:
    """`results/<name>.progress`: one line about a batch being processed, rewritten at
    most every `interval` seconds (and after the first group); removed at the end."""

    def __init__(self, path: Path, interval: float) -> None:
        self.path = path
        self._interval = interval
        self._due = 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now < self._due:
            return False
        self._due = now + self._interval
        return True

    def write(self, batch: Batch) -> None:
        at = datetime.now(UTC).isoformat(timespec="seconds")
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(f"batch {batch.id},{batch.file_name},processing,rows read {batch.rows},"
                       f"accepted {batch.accepted},rejected {batch.rejected},at {at}\n",
                       "utf-8")
        os.replace(tmp, self.path)  # a client never reads half a line

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class RowPipeline:
    """Runs one batch's rows: at most one group parsing, one committing and one being
    written at a time, so memory stays at about three groups whatever the file size."""

    def __init__(self, intake: Intake, runner: SpoolThreads[BatchStore], settings: JobSettings,
                 progress: ProgressFile, hook: GroupHook | None = None,
                 stopping: asyncio.Event | None = None, keep: LeaseCheck | None = None
                 ) -> None:
        self._intake = intake
        self._runner = runner
        self._settings = settings
        self._progress = progress
        self._hook = hook
        self._stopping = stopping or asyncio.Event()
        self._keep = keep

    async def run(self, account: Account, batch: Batch, rows: Iterator[Row],
                  writer: ResultWriter, known: Mapping[int, Accepted] | None = None) -> Batch:
        """The batch with its final counters; raises BatchStopped part-way, BatchPaused
        when the hub stops first. Rows whose line is in `known` (a resumed batch's,
        already in the spool) take that outcome and are not submitted again."""
        size = self._settings.rows_per_group
        feed = RowFeed(rows)
        ahead: asyncio.Future[list[Row]] = _thread(feed.take, size)
        writing: asyncio.Future[None] | None = None
        last_line = 0
        try:
            while chunk := await ahead:
                ahead = _thread(feed.take, size)  # parsed while this commits
                if self._keep is not None and not await self._keep():
                    raise BatchPaused(last_line, taken=True)
                outcomes = await self._submit(account, batch.id, chunk, known or {})
                if writing is not None:
                    await writing
                writing = _thread(writer.write, chunk, outcomes)
                batch, last_line = _counted(batch, chunk, outcomes), chunk[-1].line
                await self._after_group(batch)
                if self._stopping.is_set():
                    break
            if writing is not None:
                await writing
        except BatchPaused:
            await _settle(ahead, writing)
            raise
        except Exception as exc:
            await _settle(ahead, writing)
            raise BatchStopped(batch, last_line, _reason(exc)) from exc
        if self._stopping.is_set():
            [left] = await _settle(ahead)
            if left:  # rows not taken (or the error reading them): the next start's job
                raise BatchPaused(last_line)
        return batch

    async def _submit(self, account: Account, batch_id: str, chunk: list[Row],
                      known: Mapping[int, Accepted]) -> list[Outcome | None]:
        fresh = [row for row in chunk if row.line not in known] if known else chunk
        ready = [row.submission for row in fresh if row.submission is not None]
        if not ready:
            return [known.get(row.line) for row in chunk]
        # Retrying is safe: a group the spool refuses was one transaction, rolled back.
        for delay in (*self._settings.retry_delays, None):
            try:
                answers = await self._intake.submit(account, Source.FTP, ready,
                                                    batch_id=batch_id)
                break
            except TemporaryFailure as exc:
                if delay is None:
                    raise
                log.warning("batch %s: group from line %d not committed (%s); retrying in "
                            "%.1f s", batch_id, chunk[0].line, exc, delay,
                            extra={"action": "ftp-batch-retry"})
                await asyncio.sleep(delay)
        outcomes = iter(answers)
        if known:
            return [known[row.line] if row.line in known
                    else next(outcomes) if row.submission is not None else None
                    for row in chunk]
        return [next(outcomes) if row.submission is not None else None for row in chunk]

    async def _after_group(self, batch: Batch) -> None:
        await self._runner.call(self._runner.spool.update_batch, batch)
        if self._progress.due():
            await asyncio.to_thread(self._progress.write, batch)
            log.info("batch %s (%s): %d rows read, %d accepted, %d rejected so far",
                     batch.id, batch.file_name, batch.rows, batch.accepted, batch.rejected,
                     extra={"action": "ftp-batch-progress"})
        if self._hook is not None:
            await self._hook(batch)


def _thread(fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
    return asyncio.ensure_future(asyncio.to_thread(fn, *args))


async def _settle(*futures: asyncio.Future[Any] | None) -> list[Any]:
    """Let the parse and write threads finish before the file and writer are closed;
    what each gave (or raised)."""
    return await asyncio.gather(*(f for f in futures if f is not None),
                                return_exceptions=True)


def _counted(batch: Batch, chunk: Sequence[Row], outcomes: Sequence[Outcome | None]) -> Batch:
    accepted = sum(1 for o in outcomes if isinstance(o, Accepted))
    return replace(batch, rows=batch.rows + len(chunk), accepted=batch.accepted + accepted,
                   rejected=batch.rejected + len(chunk) - accepted)


def _reason(exc: Exception) -> str:
    """Why the batch stopped, for the client's result file: never a server path."""
    if isinstance(exc, TemporaryFailure):
        # Its public reason: the driver's own words may name hosts and ports.
        return f"the spool could not commit them ({exc.reason})"
    if isinstance(exc, UnreadableFile):
        return without_paths(str(exc))
    if isinstance(exc, OSError):
        log.error("batch stopped by a file-system error: %s", exc,
                  extra={"action": "ftp-batch-failed"})
        return f"the hub could not read or write its files ({exc.strerror or type(exc).__name__})"
    return without_paths(f"the file could not be read further ({type(exc).__name__}: {exc})")

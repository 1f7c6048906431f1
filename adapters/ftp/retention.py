"""POPIA retention for the FTP area: the originals filed in `processed/` and `rejected/`
hold every row's number and text, so they go once older than `[privacy] retention_days`,
as the spool's texts do (hub/retention.py). Result and report files hold no text: kept."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ulid import ULID

from adapters.ftp.holdings import ORIGINALS
from adapters.ftp.homes import Homes
from adapters.ftp.store import FtpStore
from hub.clock import Clock, utcnow
from hub.errors import TemporaryFailure
from hub.faultlog import FaultLog
from hub.spoolcall import SpoolThreads

log = logging.getLogger(__name__)
ACTOR = "maintenance"
_ULID_CHARS = 26


def filed_at(path: Path) -> datetime:
    """When a file was taken in: the ULID its name starts with (`Homes.file_away` names
    it after the claim that moved it out of the client's reach), else its mtime."""
    try:
        return ULID.from_str(path.name[:_ULID_CHARS]).datetime
    except ValueError:
        return datetime.fromtimestamp(path.lstat().st_mtime, UTC)


def purge_filed(homes: Homes, before: datetime) -> int:
    """Delete every file in a home's processed/ and rejected/ (a rejected file's
    `.reason.txt` with it) taken in before `before`; how many. Blocking: run in a thread."""
    removed = 0
    for path in homes.files_in(ORIGINALS):
        try:
            if filed_at(path) < before:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # the client, or another node, deleted it first
            continue
    return removed


class FiledRetention:
    """Every `interval` seconds (the first run at once), delete the filed originals older
    than the retention, and count them in the log and the privacy log."""

    def __init__(self, runner: SpoolThreads[FtpStore], homes: Homes, retention_days: float,
                 interval: float, clock: Clock = utcnow) -> None:
        self._runner = runner
        self._homes = homes
        self._keep = timedelta(days=retention_days)
        self._interval = interval
        self._clock = clock
        self._faults = FaultLog(log, "FTP originals past the retention not purged",
                                "retention")

    async def run(self) -> None:
        while True:
            try:
                await self.purge()
            except (OSError, TemporaryFailure) as exc:
                self._faults.failed(str(exc))
            else:
                self._faults.cleared()
            await asyncio.sleep(self._interval)

    async def purge(self) -> int:
        now = self._clock()
        before = now - self._keep
        removed = await asyncio.to_thread(purge_filed, self._homes, before)
        if removed:
            detail = {"ftp_originals": removed}
            await self._runner.call(self._runner.spool.record_privacy, now, "purge", None,
                                    ACTOR, detail)
            log.info("retention: removed %d FTP originals filed before %s", removed,
                     before.isoformat(timespec="seconds"),
                     extra={"action": "retention", **detail})
        return removed

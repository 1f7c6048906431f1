"""The receipts job: queues the final receipt of each mail whose SMS are all final, and
the first receipt of any mail a restart left without one, for the "email" channel to send."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from ulid import ULID

from adapters.smtp.channel import EMAIL_CHANNEL
from hub.clock import Clock, utcnow
from hub.errors import TemporaryFailure
from hub.faultlog import FaultLog
from hub.ids import new_id
from hub.model import NewOutboxItem
from hub.ports import MailStore
from hub.spoolcall import SpoolThreads
from hub.tasks import cancel_all

log = logging.getLogger(__name__)

# A mail younger than this may still be between intake and queueing its receipt.
RECEIPT_GRACE = timedelta(minutes=5)
RECEIPT_HORIZON = timedelta(days=7)  # how far back missing receipts are looked for


class FinalReceipts:
    """Every `interval` seconds: queue the final receipt of mails whose SMS all have a
    final status (like the FTP report files), and the first receipt of mails whose SMS
    were committed but whose receipt never was (the listener stopped in between); the
    outbox sends them."""

    def __init__(self, runner: SpoolThreads[MailStore], interval: float,
                 wake: Callable[[], None] | None = None,
                 clock: Clock = utcnow, receipt_grace: timedelta = RECEIPT_GRACE) -> None:
        self._runner = runner
        self._grace = receipt_grace
        self._interval = interval
        self._clock = clock
        self._wake = wake
        self._task: asyncio.Task[None] | None = None
        self._faults = FaultLog(log, "final receipts", "mail-final")

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        await cancel_all([self._task])

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except TemporaryFailure as exc:
                self._faults.failed(str(exc))
            else:
                self._faults.cleared()
            await asyncio.sleep(self._interval)

    async def run_once(self) -> int:
        queued = await self.recover_receipts() + await self._final_receipts()
        if queued and self._wake is not None:
            self._wake()
        return queued

    async def _final_receipts(self) -> int:
        spool = self._runner.spool
        settled = _ulid_floor(self._clock() - self._grace)
        due = await self._runner.call(spool.final_receipts_due, 100, settled)
        for mail in due:
            item = NewOutboxItem(new_id(), EMAIL_CHANNEL, mail.account_id, mail.reply_to)
            await self._runner.call(spool.queue_final_receipt, mail.id, item, self._clock())
        return len(due)

    async def recover_receipts(self) -> int:
        """Queue the receipts a crash between intake and the mail's last step lost.
        Those refused at the time are not known any more: the receipt lists the SMS."""
        spool, now = self._runner.spool, self._clock()
        missing = await self._runner.call(
            spool.mail_receipts_missing, _ulid_floor(now - RECEIPT_HORIZON),
            _ulid_floor(now - self._grace), 100)
        queued = 0
        for mail in missing:
            item = NewOutboxItem(new_id(), EMAIL_CHANNEL, mail.account_id, mail.reply_to)
            queued += await self._runner.call(spool.queue_mail_receipt, mail.id, item, now)
            log.warning("mail %s: receipt queued after a restart", mail.id,
                        extra={"action": "mail-receipt"})
        return queued


def _ulid_floor(when: datetime) -> str:
    """The smallest ULID of that millisecond: mail ids compare as their times."""
    return str(ULID.from_datetime(when))[:10] + "0" * 16

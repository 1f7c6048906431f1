"""The reply route: a handset's answer to an SMS sent by mail becomes an outbox item
that mails it back to whoever sent that mail."""

from __future__ import annotations

from adapters.smtp.channel import EMAIL_CHANNEL
from hub.ids import new_id
from hub.model import Inbound, NewOutboxItem
from hub.ports import MailStore
from hub.spoolcall import SpoolThreads


class MailReplyRoute:
    """An InboundRoute: a handset's answer to an SMS sent by mail is mailed back to
    whoever sent that mail (opt-outs never get here: the core filters them)."""

    def __init__(self, runner: SpoolThreads[MailStore]) -> None:
        self._runner = runner

    async def route(self, message: Inbound) -> list[NewOutboxItem]:
        if message.in_reply_to is None:
            return []
        mail = await self._runner.call(self._runner.spool.mail_for_message,
                                       message.in_reply_to)
        if mail is None or not mail.replies:
            return []
        return [NewOutboxItem(new_id(), EMAIL_CHANNEL, mail.account_id, mail.reply_to,
                              inbound_id=message.id, message_id=message.in_reply_to)]

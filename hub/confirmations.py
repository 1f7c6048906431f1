"""The opt-out confirmation SMS (WASPA): when an account asks for it, a handset whose
opt-out word put it on the account's list is told so, by a transactional message that
goes through intake like any other (priced, committed, dispatched)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from hub import logs
from hub.errors import HubError
from hub.intake import Intake
from hub.model import Account, Inbound, InboundKind, Refused, Source, Submission
from hub.optouts import OptOut
from hub.ports import AccountStore, OptOutStore
from hub.spoolcall import SpoolThreads

log = logging.getLogger(__name__)


class ConfirmationStore(AccountStore, OptOutStore, Protocol):
    """The spool roles a confirmation reads: the opt-outs due one, and their account."""


class OptOutConfirmations:
    """Sends the confirmation of each new opt-out whose account wants one. Each carries
    the client reference `optout-<inbound id>`, so a STOP delivered twice by its carrier
    is confirmed once (intake answers the second as a duplicate)."""

    def __init__(self, runner: SpoolThreads[ConfirmationStore], intake: Intake,
                 text: str) -> None:
        self._runner = runner
        self._intake = intake
        self._text = text

    async def send(self, stored: Sequence[Inbound]) -> None:
        """Confirm the opt-outs these (committed) inbound messages created. Never raises:
        the opt-outs stand whatever happens to their confirmations; failures are logged."""
        ids = [m.id for m in stored if m.kind is InboundKind.OPT_OUT and m.account_id]
        if not ids:
            return
        spool = self._runner.spool
        by_id = {m.id: m for m in stored}
        try:
            for optout in await self._runner.call(spool.optout_confirmations_due, ids):
                if optout.account_id is not None and optout.inbound_id in by_id:
                    await self._confirm(optout, optout.account_id, by_id[optout.inbound_id])
        except HubError as exc:
            log.warning("opt-out confirmation not sent: %s", exc,
                        extra={"action": "optout-confirm"})

    async def _confirm(self, optout: OptOut, account_id: int, mo: Inbound) -> None:
        account = await self._runner.call(self._runner.spool.get_account_by_id, account_id)
        submission = Submission(to=optout.number, text=self._text,
                                sender=_sender(account, mo.recipient),
                                client_ref=f"optout-{mo.id}")
        outcome = (await self._intake.submit(account, Source.HUB, [submission]))[0]
        if isinstance(outcome, Refused):
            log.warning("opt-out confirmation to %s refused: %s (%s)", logs.number(optout.number),
                        outcome.code, outcome.reason, extra={"action": "optout-confirm"})
        else:
            log.info("opt-out confirmation %s to %s", outcome.message_id,
                     logs.number(optout.number), extra={"action": "optout-confirm"})


def _sender(account: Account, number: str) -> str | None:
    """Answer from the number the STOP was sent to when the account may send from it;
    otherwise from no sender id (the carrier's own number)."""
    for candidate in (number, number.lstrip("+")):
        if candidate in account.sender_ids:
            return candidate
    return None

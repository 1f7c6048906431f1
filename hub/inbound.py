"""Inbound messages: the core path every carrier's replies take. Each is committed
(before the carrier is acknowledged), marked if it is an opt-out keyword, linked to the
message it answers, and routed: routes turn it into outbox items (an email, a webhook)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from hub import logs
from hub.clock import Clock, utcnow
from hub.groupcommit import GroupCommitter
from hub.ids import new_id
from hub.model import Inbound, InboundKind, InboundMessage, NewInbound, NewOutboxItem
from hub.ports import InboundRoute, InboundStore
from hub.spoolcall import SpoolThreads

log = logging.getLogger(__name__)

# WASPA's opt-out words (and common variants), matched on the whole message.
OPT_OUT_KEYWORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "OPT OUT", "OPTOUT", "END", "CANCEL",
                    "QUIT")


def is_opt_out(text: str, keywords: Sequence[str] = OPT_OUT_KEYWORDS) -> bool:
    """'Stop', ' STOP. ', 'opt  out!' are opt-outs; 'please stop by at 5' is chat."""
    words = " ".join(text.upper().replace("-", " ").split()).strip(".!?,;: ")
    return words in keywords


class InboundDesk:
    """Where inbound messages arrive: `receive` commits them (opt-outs marked, each
    linked to the message it answers), then the InboundRoutes turn them into outbox
    items; `route_pending` retries routing for any a crash left unrouted.

    A reply answers the latest message sent to its sender, from the number it was sent
    to (or from no sender id), in the last 7 days, and only if all such messages are one
    account's; otherwise it is stored unlinked (spool.inbound._answered has the rule)."""

    def __init__(
        self,
        runner: SpoolThreads[InboundStore],
        routes: Sequence[InboundRoute] = (),
        *,
        keywords: Sequence[str] = OPT_OUT_KEYWORDS,
        clock: Clock = utcnow,
        on_routed: Callable[[], None] | None = None,
    ) -> None:
        self._runner = runner
        self._routes = list(routes)
        self._keywords = tuple(k.upper() for k in keywords)
        self._clock = clock
        self._on_routed = on_routed
        self._committer: GroupCommitter[NewInbound, Inbound] = GroupCommitter(
            self._store, 1000, runner.start)
        self._routing = asyncio.Lock()
        # Called with what `receive` stored when it holds an opt-out: the confirmation
        # SMS. Set by the composition root once intake exists (intake wakes the
        # dispatcher, which is built with this desk).
        self.on_opt_outs: Callable[[Sequence[Inbound]], Awaitable[None]] | None = None

    async def receive(self, messages: Sequence[InboundMessage]) -> list[Inbound]:
        """Commit inbound messages; returns once they are durable, then routes them."""
        new = [NewInbound(new_id(), m, is_opt_out(m.text, self._keywords))
               for m in messages]
        stored = await self._committer.submit(new)
        for item in stored:
            log.info("inbound %s from %s (%s)", item.id, logs.number(item.sender), item.kind.value,
                     extra={"action": "inbound", "kind": item.kind.value})
            if item.kind is InboundKind.REPLY and item.account_id is None:
                log.warning("inbound %s from %s to %s answers messages of several accounts "
                            "sent from that number; stored unlinked, no account sees it",
                            item.id, logs.number(item.sender), logs.number(item.recipient),
                            extra={"action": "inbound-unlinked"})
        if self.on_opt_outs is not None and any(
                i.kind is InboundKind.OPT_OUT for i in stored):
            await self.on_opt_outs(stored)
        await self.route_pending()
        return stored

    def _store(self, items: list[NewInbound]) -> list[Inbound]:
        return self._runner.spool.store_inbound(items)  # on the committer's spool thread

    async def route_pending(self, limit: int = 200) -> int:
        """Route what is not routed yet (also after a restart: maintenance calls this)."""
        async with self._routing:
            pending = await self._runner.call(self._runner.spool.unrouted_inbound, limit)
            if not pending:
                return 0
            items: list[NewOutboxItem] = []
            for message in pending:
                items.extend(await self._routes_for(message))
            await self._runner.call(self._runner.spool.route_inbound,
                                    [m.id for m in pending], items, self._clock())
        if items and self._on_routed is not None:
            self._on_routed()
        return len(pending)

    async def _routes_for(self, message: Inbound) -> list[NewOutboxItem]:
        if message.kind is InboundKind.OPT_OUT:
            return []  # an opt-out is never forwarded as chat
        found: list[NewOutboxItem] = []
        for route in self._routes:
            found.extend(await route.route(message))
        return found

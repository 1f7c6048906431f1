"""An SMSC account's budget shared by the nodes on one PostgreSQL spool: each bind slot
is held under a cluster-wide lock, a node holds at most its share of the slots, and its
rate is the carrier's in proportion to the slots it holds, so binds and messages/s add
up to the configured figures however many nodes send."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid

from hub.ports import Coordination

log = logging.getLogger(__name__)

REBALANCE = 1.0  # seconds between looks at the number of nodes sharing the account
RETRY = 1.0  # seconds between tries for a slot another node holds


class RateLimit:
    """At most `rate` submissions a second over the whole carrier on this node (0: no
    limit); `set` changes it at once (a node's share of a shared carrier)."""

    def __init__(self, rate: float) -> None:
        self._gap = 0.0
        self._next = 0.0
        self.set(rate)

    def set(self, rate: float) -> None:
        self._gap = 1.0 / rate if rate > 0 else 0.0
        # A slower share booked ahead must not hold back a faster one.
        self._next = min(self._next, time.monotonic() + self._gap)

    @property
    def limited(self) -> bool:
        """Whether there is a rate to keep (else `wait` never waits)."""
        return bool(self._gap)

    async def wait(self) -> None:
        if not self._gap:
            return
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self._gap
        if slot > now:
            await asyncio.sleep(slot - now)


class SlotBudget:
    """Which bind slots of carrier `name` this node binds. Alone (no Coordination) it
    binds every slot at the full rate. Shared, the budget is the SMSC account's
    (`account`: host, port and system_id; the SMSC counts binds per account, and nodes
    that bind as different system_ids have a budget each): the node binds a slot only
    while it holds the slot's lock (`smpp@ACCOUNT:SLOT`); holds at most binds / the live
    nodes using the account (each holds `smpp-node@ACCOUNT:ID` while its carrier runs),
    rounded up, and gives back the highest above that when nodes join; and takes the
    carrier's rate times the share of slots it holds."""

    def __init__(
        self,
        name: str,
        binds: int,
        rate: float,
        coordination: Coordination | None,
        account: str = "",
    ) -> None:
        self._name = name
        # Lock names split at their first ':' (the kind): none in the account's part.
        self._account = (account or name).replace(":", "/")
        self._member = f"smpp-node@{self._account}:{uuid.uuid4().hex}"
        self._binds = binds
        self._rate = rate
        self._coordination = coordination
        self.limit = RateLimit(rate if coordination is None else 0.0)
        self._held: set[int] = set()
        self._sharers = 1  # live nodes using the account, this one included
        # Set to make a slot's bind end so that another node can take the slot.
        self._yield: dict[int, asyncio.Event] = {}
        self._relays: dict[int, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        if coordination is not None:
            self.limit.set(self._share())

    @property
    def shared(self) -> bool:
        return self._coordination is not None

    @property
    def held(self) -> frozenset[int]:
        return frozenset(self._held)

    def start(self) -> None:
        if self._coordination is not None:
            self._task = asyncio.create_task(self._rebalance())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for slot in sorted(self._held):
            await self.give_back(slot)
        if self._coordination is not None:
            await self._coordination.unlock(self._member)

    async def leads(self, job: str) -> bool:
        """Whether this node runs periodic `job` (one node at a time when shared)."""
        if self._coordination is None:
            return True
        return await self._coordination.try_lock(f"job:{job}") is not None

    def quota(self) -> int:
        return math.ceil(self._binds / max(self._sharers, 1))

    async def take(self, slot: int) -> asyncio.Event | None:
        """Wait until this node may bind `slot`; an event set when it must unbind it
        (the slot's lock was lost, or it is given to another node). None: alone."""
        coordination = self._coordination
        if coordination is None:
            return None
        await self.give_back(slot)  # asked again: its last bind has ended
        while True:
            if len(self._held) < self.quota():
                lost = await coordination.try_lock(self._key(slot))
                if lost is not None:
                    self._held.add(slot)
                    end = self._yield[slot] = asyncio.Event()
                    self.limit.set(self._share())
                    log.info(
                        "%s: this node holds bind slot %d of %d",
                        self._name,
                        slot,
                        self._binds,
                        extra={"action": "smpp-slot"},
                    )
                    self._relays[slot] = asyncio.create_task(self._keep(slot, lost, end))
                    return end
            # Jitter: nodes that lost their slots together must not all ask together.
            await asyncio.sleep(RETRY * (0.5 + random.random()))  # noqa: S311

    async def give_back(self, slot: int) -> None:
        """The slot's bind has ended: let another node take it."""
        if slot not in self._held:
            return
        self._held.discard(slot)
        self._yield.pop(slot, None)
        relay = self._relays.pop(slot, None)
        if relay is not None:
            relay.cancel()
            await asyncio.gather(relay, return_exceptions=True)
        self.limit.set(self._share())
        if self._coordination is not None:
            await self._coordination.unlock(self._key(slot))

    def _share(self) -> float:
        """The rate this node may use: the carrier's, by the share of slots it holds
        (no limit stays no limit; without a slot nothing is sent, whatever the rate)."""
        if self._rate <= 0:
            return 0.0
        return self._rate * max(len(self._held), 1) / self._binds

    async def _keep(self, slot: int, lost: asyncio.Event, end: asyncio.Event) -> None:
        """Keep the slot across a broken connection (a PostgreSQL restart or failover):
        nobody can take its lock while the database is away, so the bind stays up and
        the lock is taken again once connected; the bind ends only if another node took
        the slot first."""
        coordination = self._coordination
        assert coordination is not None
        key = self._key(slot)
        while True:
            await lost.wait()
            while True:
                while not coordination.listening:
                    await asyncio.sleep(0.1)
                again = await coordination.try_lock(key)
                if again is not None:
                    lost = again
                    break
                if coordination.listening:  # refused: another node holds it now
                    log.warning(
                        "%s: bind slot %d was taken by another node while the database was away",
                        self._name,
                        slot,
                        extra={"action": "smpp-slot"},
                    )
                    end.set()
                    return

    def _key(self, slot: int) -> str:
        return f"smpp@{self._account}:{slot}"

    async def _rebalance(self) -> None:
        coordination = self._coordination
        assert coordination is not None
        while True:
            # Taken again after a reconnect (a broken connection loses every lock).
            await coordination.try_lock(self._member)
            counted = await coordination.count(self._member.partition(":")[0])
            if counted:  # 0: the database is away; keep the last figure
                self._sharers = counted
            surplus = sorted(self._held, reverse=True)[: max(len(self._held) - self.quota(), 0)]
            for slot in surplus:
                log.info(
                    "%s: giving bind slot %d back: %d nodes share %d binds",
                    self._name,
                    slot,
                    self._sharers,
                    self._binds,
                    extra={"action": "smpp-slot"},
                )
                end = self._yield.get(slot)
                if end is not None:
                    end.set()
            await asyncio.sleep(REBALANCE)

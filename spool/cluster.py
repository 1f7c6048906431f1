"""How the nodes on one PostgreSQL spool coordinate (hub.ports.Coordination): LISTEN for
the work other nodes commit, and cluster-wide locks (session-level advisory locks) that
PostgreSQL lets go of when the holding process's connection ends, however it ends. One
dedicated connection per process carries both, and is made again after it breaks."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from spool.engine import channel_of, normalise_url

log = logging.getLogger(__name__)

# One wait for notifications lasts this long; a lock asked for meanwhile waits for its end.
# The wait sends nothing to the server (it watches the socket): short costs next to nothing.
TICK = 0.1
RECONNECT_MIN, RECONNECT_MAX = 0.5, 10.0
# A vanished host (no FIN, no RST) must not hold its locks for the kernel's two hours:
# the server drops its session after 10 + 3 x 5 s without an answer, and so do we.
_KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}
_SERVER_KEEPALIVE = (
    "SET tcp_keepalives_idle = 10",
    "SET tcp_keepalives_interval = 5",
    "SET tcp_keepalives_count = 3",
)
_COUNT = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND objsubid = 2 AND classid::bigint = %s"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
_FAILURES = (psycopg.Error, OSError)


def lock_key(schema: str, name: str) -> tuple[int, int]:
    """The two 31-bit keys of lock `name` (KIND:REST): its kind's, so that one kind can
    be counted in pg_locks, and its own. Stable across processes, versions and hosts
    (Python's hash() is salted per process); the schema keeps the spools that share one
    database apart."""
    kind = name.partition(":")[0]
    return _hash31(f"{schema}/{kind}"), _hash31(f"{schema}/{name}")


def _hash31(text: str) -> int:
    digest = hashlib.blake2b(text.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF


class PgCoordination:
    """hub.ports.Coordination on one psycopg connection of its own, in autocommit: the
    LISTENs, and the advisory locks this process holds. When the connection breaks every
    lock is lost at once (each holder's event is set) and the wake-ups are given to every
    subscriber after the reconnect, since notifications sent meanwhile are gone."""

    def __init__(self, url: str, member: str = "") -> None:
        # Held whenever connected (`dispatcher:NODE`): count(KIND) then counts the live
        # processes of that kind, as soon as one ends, where heartbeats wait 3 beats.
        self._member = member
        parsed = normalise_url(url).set(drivername="postgresql")
        self._conninfo = parsed.render_as_string(hide_password=False)
        self._wakes: dict[str, list[Callable[[], None]]] = {}
        self._held: dict[str, asyncio.Event] = {}
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._schema = "public"
        self._listening: dict[str, str] = {}  # channel as notified -> as subscribed
        self._task: asyncio.Task[None] | None = None
        self._failing = False  # said once while the database stays away
        # Statements waiting for the connection: the listener lets them all run first.
        self._asking = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def subscribe(self, channel: str, wake: Callable[[], None]) -> None:
        self._wakes.setdefault(channel, []).append(wake)

    async def start(self) -> None:
        """Connect now if the database answers; if not, keep trying in the background
        (the node starts anyway, as it does with a spool that is away)."""
        with contextlib.suppress(*_FAILURES):
            await self._connect()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()  # every lock this process held goes with it
        self._lose_all(quietly=True)

    # --- locks -----------------------------------------------------------------------

    def holds(self, name: str) -> bool:
        return name in self._held

    async def try_lock(self, name: str) -> asyncio.Event | None:
        if name in self._held:
            return self._held[name]
        conn = self._conn
        if conn is None:
            return None
        try:
            row = await self._ask(
                conn, "SELECT pg_try_advisory_lock(%s, %s)", lock_key(self._schema, name)
            )
        except _FAILURES:
            return None  # the loop notices the broken connection and makes a new one
        if conn is not self._conn or row is None or not row[0]:
            return None  # refused, or it broke meanwhile and took the lock with it
        lost = self._held[name] = asyncio.Event()
        return lost

    async def unlock(self, name: str) -> None:
        if self._held.pop(name, None) is None:
            return
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(*_FAILURES):
                await self._ask(
                    conn, "SELECT pg_advisory_unlock(%s, %s)", lock_key(self._schema, name)
                )

    async def count(self, kind: str) -> int:
        conn = self._conn
        if conn is None:
            return 0
        try:
            row = await self._ask(conn, _COUNT, (_hash31(f"{self._schema}/{kind}"),))
        except _FAILURES:
            return 0
        return int(row[0]) if row else 0

    async def _ask(
        self, conn: psycopg.AsyncConnection[Any], query: str, params: tuple[int, ...]
    ) -> tuple[Any, ...] | None:
        self._asking += 1
        self._quiet.clear()
        try:
            cursor = await conn.execute(query, params)
            row: tuple[Any, ...] | None = await cursor.fetchone()
            return row
        finally:
            self._asking -= 1
            if not self._asking:
                self._quiet.set()

    # --- the connection ----------------------------------------------------------------

    async def _connect(self) -> None:
        conninfo = make_conninfo(self._conninfo, connect_timeout=5, **_KEEPALIVE)
        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        try:
            for statement in _SERVER_KEEPALIVE:
                await conn.execute(statement)
            row = await (await conn.execute("SELECT current_schema()")).fetchone()
            schema = str(row[0]) if row and row[0] else "public"
            # The names this spool's commits notify under (spool.engine.channel_of).
            listening = {channel_of(schema, channel): channel for channel in self._wakes}
            for name in listening:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(name)))
        except BaseException:
            await conn.close()
            raise
        self._schema = schema
        self._listening = listening
        self._conn = conn
        if self._member:
            await self.try_lock(self._member)

    async def _run(self) -> None:
        delay = RECONNECT_MIN
        while True:
            if self._conn is None:
                try:
                    await self._connect()
                except _FAILURES as exc:
                    self._failed(exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RECONNECT_MAX)
                    continue
                delay = RECONNECT_MIN
                self._recovered()
            await self._listen()

    async def _listen(self) -> None:
        await self._quiet.wait()
        conn = self._conn
        if conn is None:
            return
        try:
            async for note in conn.notifies(timeout=TICK):
                self._wake(self._listening.get(note.channel, ""))
        except _FAILURES as exc:
            self._conn = None
            with contextlib.suppress(*_FAILURES):
                await conn.close()
            self._lose_all()
            self._failed(exc)

    def _wake(self, channel: str) -> None:
        for wake in self._wakes.get(channel, ()):
            wake()

    def _lose_all(self, *, quietly: bool = False) -> None:
        held, self._held = self._held, {}
        for lost in held.values():
            lost.set()
        if held and not quietly:
            log.warning(
                "coordination: lost %d cluster locks (%s) with the connection",
                len(held),
                ", ".join(sorted(held)),
                extra={"action": "coordination"},
            )

    def _failed(self, exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            log.warning(
                "coordination: no connection to the spool's database (%s); retrying",
                type(exc).__name__,
                extra={"action": "coordination"},
            )

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.info("coordination: connected again", extra={"action": "coordination"})
        for channel in self._wakes:  # what was notified while away is lost: look now
            self._wake(channel)

"""Engine creation for SQLite and PostgreSQL, and the write/read transaction scopes that
start SQLite writes with BEGIN IMMEDIATE, turn driver failures into TemporaryFailure and,
on PostgreSQL, NOTIFY the other nodes of the work a transaction made."""

from __future__ import annotations

import fcntl
import hashlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Insert, create_engine, event, text
from sqlalchemy.engine import URL, make_url

from hub.errors import TemporaryFailure
from hub.model import WriterFigures
from hub.ports import OUTBOX_CHANNEL
from spool.bulk import driver
from spool.faults import FULL, READ_ONLY, temporary

_READ_OPTION = "smshub_read"
_NOTIFY = "smshub_notify"  # in Connection.info: channels to notify at this commit
# Channels are the whole database's, not a schema's: each is qualified by the spool's
# schema (a hash of it: channel names stop at 63 bytes), so that spools sharing one
# database never wake each other. spool.cluster listens on the same names (channel_of).
_NOTIFY_SQL = text("SELECT pg_notify(:channel || '_' || left(md5(current_schema()), 8), '')")


def channel_of(schema: str, channel: str) -> str:
    """The name `channel` is notified under on the spool in `schema` (_NOTIFY_SQL)."""
    digest = hashlib.md5(schema.encode(), usedforsecurity=False).hexdigest()
    return f"{channel}_{digest[:8]}"


def notify(conn: Connection, channel: str) -> None:
    """Wake `channel`'s listeners on every node when this write transaction commits
    (NOTIFY is transactional: a rollback sends nothing). Nothing on SQLite: one node."""
    if conn.dialect.name == "postgresql":
        conn.info.setdefault(_NOTIFY, set()).add(channel)


def normalise_url(url: str) -> URL:
    """Plain postgresql:// means psycopg 3 here, not SQLAlchemy's psycopg2 default."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


class Database:
    """One engine, plus the transaction scopes every spool operation runs in."""

    def __init__(self, url: str, busy_timeout: float) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            self.engine = _sqlite_engine(self.url, busy_timeout)
        else:
            self.engine = _postgresql_engine(self.url)
        # Same pool; the option only tells the SQLite begin hook to use a deferred BEGIN.
        self._reader = self.engine.execution_options(**{_READ_OPTION: True})
        self._writers = _Writers(self.url.database if self.is_sqlite else None, busy_timeout)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed on normal exit. The connection is taken from
        the pool before the writer's turn and given back after it: the pool's checkout,
        reset and checkin (a fifth of intake's spool time) hold no other writer up."""
        with (translate_errors(), self.engine.connect() as conn, self._writers.turn(),
              conn.begin()):
            # info outlives the checkout: what a failed transaction left is not ours.
            conn.info.pop(_NOTIFY, None)
            yield conn
            for channel in sorted(conn.info.pop(_NOTIFY, ())):
                conn.execute(_NOTIFY_SQL, {"channel": channel})

    def turn(self) -> AbstractContextManager[None]:
        """This process's turn to write (and, on SQLite, the other processes' too),
        for a caller that prepares its write knowing no one else writes meanwhile;
        its writes inside take it again at no cost."""
        return self._writers.turn()

    def writer_figures(self) -> WriterFigures:
        return self._writers.figures()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with translate_errors(), self._reader.begin() as conn:
            yield conn

    def probe_write(self) -> None:
        """Raise TemporaryFailure unless the database takes a write (readiness). The
        write is rolled back before it reaches the disk: one lock taken and let go."""
        with translate_errors(), self.engine.connect() as conn, conn.begin() as tx:
            if self.is_sqlite:  # read-only: "attempt to write a readonly database"
                _check_room(self.url.database)
                version = int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0)
                conn.exec_driver_sql(f"PRAGMA user_version = {version}")
            elif conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "on":
                raise TemporaryFailure("spool unavailable: the database is read-only",
                                       READ_ONLY, 30)
            tx.rollback()

    def dispose(self) -> None:
        self.engine.dispose()
        self._writers.close()


class _Urgent:
    """While a thread of this process holds a writer's turn, a thread waiting for the
    interpreter lock asks for it after HOLDING_SWITCH_INTERVAL rather than Python's 5
    ms. Each SQLite call lets the lock go; back from one, the holder used to wait for
    the event loop's whole burst (requests, SMPP PDUs) before it could go on, while
    every other writer of the spool, in this process or another, waited for its turn:
    the dispatch process held its turns 0.7 ms longer on average that way. With this,
    alternated with the tree before it: SMPP end to end 2-3 % more messages a second
    (bench/smpp_e2e.py, 13 runs), 10 x 1,000 batches 6-10 % (bench/goals.py
    --intake-only), single requests unchanged. Counted, so that turns held at once on
    two spools restore it once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._saved = 0.0

    def __enter__(self) -> None:
        with self._lock:
            if not self._holders:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(HOLDING_SWITCH_INTERVAL)
            self._holders += 1

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._holders -= 1
            if not self._holders:
                sys.setswitchinterval(self._saved)


HOLDING_SWITCH_INTERVAL = 0.0002
_URGENT = _Urgent()


class _Writers:
    """SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
    SQLite's busy handler, in steps of 1 to 100 ms, before it looks again: the spool's
    threads and a split node's two processes (`smshub serve`, hub.supervisor) met there
    at every other commit. Writers queue here instead, on a lock in this process and on
    flock(2) of `<db>.write` across processes, which hands over as soon as the holder
    commits (the kernel lets it go too if the holder dies). Within `timeout` (the busy
    timeout) a writer that cannot get its turn in this process goes on to SQLite's own
    wait; the flock has no timeout, so a peer process stopped (not killed) inside a
    write holds the others until it resumes, as it holds SQLite's lock anyway.

    Turns go round between processes: flock(2) hands the lock to no one in particular,
    and a process that lets go and asks again at once (intake's committer, going from
    one group to the next) would win it again before a waiting peer woke up. A writer
    therefore queues on `<db>.queue` first and holds it while it waits for the turn: a
    peer that lets go of the turn cannot ask again until the waiting writer has it.

    Each turn's wait and hold are added up (`figures`, /metrics): on SQLite the turns of
    all of a node's processes share one writer, and their holds summed over a second
    say how busy it is."""

    def __init__(self, database: str | None, timeout: float) -> None:
        self._lock = threading.RLock()  # a nested write meets SQLite, not a deadlock here
        self._timeout = timeout
        self._depth = 0
        self._turns, self._waiting, self._holding = 0, 0.0, 0.0
        self._fd: int | None = None
        self._queue: int | None = None
        if database and database != ":memory:":
            with suppress(OSError):  # a read-only directory: SQLite's wait alone
                self._fd = os.open(f"{database}.write", os.O_RDWR | os.O_CREAT, 0o600)
                self._queue = os.open(f"{database}.queue", os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def turn(self) -> Iterator[None]:
        asked = time.perf_counter()
        if not self._lock.acquire(timeout=self._timeout):
            yield
            return
        try:
            self._depth += 1
            outer = self._depth == 1
            flocked = outer and self._fd is not None
            if flocked:
                assert self._fd is not None
                self._take(self._fd)
            taken = time.perf_counter()
            try:
                with _URGENT if outer else nullcontext():
                    yield
            finally:
                if flocked:
                    assert self._fd is not None
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                if outer:  # still under self._lock: no other thread adds meanwhile
                    self._turns += 1
                    self._waiting += taken - asked
                    self._holding += time.perf_counter() - taken
        finally:
            self._depth -= 1
            self._lock.release()

    def figures(self) -> WriterFigures:
        return WriterFigures(self._turns, self._waiting, self._holding)

    def _take(self, fd: int) -> None:
        if self._queue is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return
        fcntl.flock(self._queue, fcntl.LOCK_EX)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        finally:
            fcntl.flock(self._queue, fcntl.LOCK_UN)

    def close(self) -> None:
        # Not under a writer's feet: wait (bounded) for the one in its turn, if any.
        locked = self._lock.acquire(timeout=self._timeout)
        try:
            for fd in (self._fd, self._queue):
                if fd is not None:
                    os.close(fd)
            self._fd = self._queue = None
        finally:
            if locked:
                self._lock.release()


# Below this much free space the next commit (its WAL frames, a checkpoint) may not fit:
# the rolled-back probe write never reaches the disk, so it cannot tell by itself.
_MIN_FREE_BYTES = 1 << 20


def _check_room(database: str | None) -> None:
    if not database or database == ":memory:":
        return
    found = os.statvfs(Path(database).parent)
    if found.f_bavail * found.f_frsize < _MIN_FREE_BYTES:
        raise TemporaryFailure("spool unavailable: less than 1 MiB free on the spool's "
                               "file system", FULL, 30)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Locked, busy, full, read-only or unreachable databases are retryable; say so in
    our own terms (spool.faults)."""
    try:
        yield
    except Exception as exc:  # SQLAlchemy's wrapped errors, or a driver's own (COPY)
        failure = temporary(exc)
        if failure is None:
            raise
        raise failure from exc


def _postgresql_engine(url: URL) -> Engine:
    # hide_parameters: a statement's error names no text or number (POPIA: logs).
    engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # psycopg prepares repeated statements; a generic plan made while `messages` was
        # small (a seq scan) then sticks until the next ANALYZE and claims slow to a crawl.
        # Planning each execution with its real parameters costs little next to that.
        dbapi_conn.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_conn.commit()

    @event.listens_for(engine, "before_execute")
    def _on_execute(conn: Connection, clause: Any, *_args: Any) -> None:
        # Every way an outbox item is made (webhook fan-out, mail receipts, pushes,
        # inbound routes) inserts it with a statement: its commit wakes the outbox runners.
        if isinstance(clause, Insert) and clause.table.name == "outbox":
            notify(conn, OUTBOX_CHANNEL)

    return engine


def _create_private(path: Path) -> None:
    """Create the database 0600 (in a new directory 0700) before SQLite would, with the
    umask's usual 0644: it holds every message. SQLite gives -wal and -shm its mode.
    Explicit modes rather than a umask, which is the whole process's, threads and all."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(FileExistsError):  # an empty file is an empty database
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_engine(url: URL, busy_timeout: float) -> Engine:
    if url.database and url.database != ":memory:":
        _create_private(Path(url.database))
    engine = create_engine(url, connect_args={"timeout": busy_timeout},
                           hide_parameters=True)
    pragmas = (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        f"PRAGMA busy_timeout={int(busy_timeout * 1000)}",
        "PRAGMA foreign_keys=ON",
        # 64 MB of page cache per connection (SQLite's default is 2 MB): the indexes
        # a big batch inserts into at scattered places (recipients, client references)
        # outgrow 2 MB after a few hundred thousand rows, and every miss is a read.
        # Intake's spool time per message fell by an eighth on a 600,000-row load.
        "PRAGMA cache_size=-65536",
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take BEGIN away from pysqlite so that we can say IMMEDIATE ourselves.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front: a deferred BEGIN that later upgrades can
        # fail with SQLITE_BUSY immediately, ignoring busy_timeout.
        read = conn.get_execution_options().get(_READ_OPTION, False)
        # To the driver itself: through SQLAlchemy's execution, a BEGIN cost a fifth of
        # a small transaction's CPU (a claim, a record of a few outcomes). Its errors
        # are the driver's own, which translate_errors reads as well.
        driver(conn).execute("BEGIN" if read else "BEGIN IMMEDIATE")

    return engine

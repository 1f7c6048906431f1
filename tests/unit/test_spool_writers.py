"""SQLite writers take turns before SQLite's lock (spool.engine._Writers): a writer of
another process holding `<db>.write` makes this one wait for it, not fail or sleep in
SQLite's busy handler, and the turn is handed over as soon as that writer lets go; a
process cannot take the turn back from another that waits for it."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from spool.engine import HOLDING_SWITCH_INTERVAL, Database


def test_a_write_waits_for_the_other_process_turn_then_commits(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'spool.db'}", busy_timeout=10)
    try:
        with db.write() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        # Another process's writer in its turn: the lock file held by another descriptor.
        other = os.open(tmp_path / "spool.db.write", os.O_RDWR)
        fcntl.flock(other, fcntl.LOCK_EX)
        done = threading.Event()

        def write() -> None:
            with db.write() as conn:
                conn.execute(text("INSERT INTO t VALUES (1)"))
            done.set()

        writer = threading.Thread(target=write)
        writer.start()
        assert not done.wait(0.3)  # waiting for its turn
        released = time.monotonic()
        fcntl.flock(other, fcntl.LOCK_UN)
        assert done.wait(5) and time.monotonic() - released < 0.5
        writer.join()
        os.close(other)
        with db.read() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1
    finally:
        db.dispose()


def test_writers_of_one_process_queue_and_all_commit(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'spool.db'}", busy_timeout=10)
    try:
        with db.write() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))

        def write(n: int) -> None:
            for i in range(50):
                with db.write() as conn:
                    conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": n * 100 + i})

        threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with db.read() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 200
    finally:
        db.dispose()


CHILD = """
import sys, time
from pathlib import Path
from spool.engine import HOLDING_SWITCH_INTERVAL, Database
db = Database(sys.argv[1], busy_timeout=10)
Path(sys.argv[2]).touch()  # about to ask for the turn
with db.write():
    Path(sys.argv[3]).touch()  # in its turn
    time.sleep(0.2)
db.dispose()
"""


def test_a_process_that_lets_go_of_the_turn_cannot_take_it_back_from_a_waiting_one(
    tmp_path: Path,
) -> None:
    """Intake's committer lets go of the turn and asks for it again at once, group after
    group: another process waiting (the dispatcher) must get it in between."""
    url = f"sqlite:///{tmp_path / 'spool.db'}"
    db = Database(url, busy_timeout=10)
    asking, inside = tmp_path / "asking", tmp_path / "inside"
    try:
        with db.write() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, url, str(asking), str(inside)],
                cwd=Path(__file__).resolve().parents[2])
            deadline = time.monotonic() + 10
            while not asking.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.3)  # the child waits for the turn
            assert not inside.exists()
        with db.write() as conn:  # asked again straight after letting go
            assert inside.exists(), "took the turn back before the waiting process had it"
            conn.execute(text("INSERT INTO t VALUES (1)"))
        assert child.wait(10) == 0
    finally:
        db.dispose()


def urgent() -> bool:
    # Python keeps the interval in whole microseconds.
    return bool(sys.getswitchinterval() == pytest.approx(HOLDING_SWITCH_INTERVAL))


def test_a_writer_in_its_turn_gets_the_interpreter_lock_back_sooner(tmp_path: Path) -> None:
    """Within a turn, threads waiting for the interpreter lock ask for it after 0.2 ms
    (spool.engine._Urgent); the interval is Python's again once no turn is held, also
    when turns on two spools overlap and end in either order."""
    first = Database(f"sqlite:///{tmp_path / 'one.db'}", busy_timeout=10)
    second = Database(f"sqlite:///{tmp_path / 'two.db'}", busy_timeout=10)
    before = sys.getswitchinterval()
    try:
        with first.turn():
            assert urgent()
            with first.write():  # a write inside the turn: the same turn
                assert urgent()
            assert urgent()
        assert sys.getswitchinterval() == pytest.approx(before)
        # Two threads, each in a turn of its own spool; the first to take one ends first.
        taken, ended = threading.Event(), threading.Event()

        def hold_second() -> None:
            with second.write():
                taken.set()
                ended.wait(5)

        other = threading.Thread(target=hold_second)
        with first.write():
            other.start()
            assert taken.wait(5)
        assert urgent()  # the other still holds
        ended.set()
        other.join()
        assert sys.getswitchinterval() == pytest.approx(before)
    finally:
        first.dispose()
        second.dispose()


def test_the_writer_figures_count_each_turn_its_wait_and_its_hold(tmp_path: Path) -> None:
    """What /metrics shows of the writer (smshub_spool_writer_*): a turn is counted once
    however many writes it holds, the time another process held the writer counts as
    this one's wait, and the time inside as its hold."""
    db = Database(f"sqlite:///{tmp_path / 'spool.db'}", busy_timeout=10)
    try:
        with db.write() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        start = db.writer_figures()
        assert start.turns == 1 and start.holding > 0
        with db.turn():
            with db.write() as conn:
                conn.execute(text("INSERT INTO t VALUES (1)"))
            with db.write() as conn:
                conn.execute(text("INSERT INTO t VALUES (2)"))
            time.sleep(0.2)
        held = db.writer_figures()
        assert held.turns == 2 and held.holding - start.holding >= 0.2
        assert held.waiting - start.waiting < 0.1  # no one else was writing
        other = os.open(tmp_path / "spool.db.write", os.O_RDWR)
        fcntl.flock(other, fcntl.LOCK_EX)  # another process's writer in its turn
        threading.Timer(0.3, fcntl.flock, (other, fcntl.LOCK_UN)).start()
        with db.write() as conn:
            conn.execute(text("INSERT INTO t VALUES (3)"))
        os.close(other)
        waited = db.writer_figures()
        assert waited.turns == 3 and waited.waiting - held.waiting >= 0.25
        assert waited.holding - held.holding < 0.25
    finally:
        db.dispose()

"""The spool's own cost per message for each write of a message's life, on one thread
with nothing else running: intake's group commit, the dispatcher's claim, the record of
the carrier's answer and the receipt, each in the group sizes the hub meets under load.

    .venv/bin/python bench/spool_ops.py [--n 6000] [--runs 5] [--contended] [--groups 40,250,80]

It measures the code on PYTHONPATH first (A/B of two trees: run it with each, in turn).
Each run uses a fresh SQLite spool (WAL, synchronous=FULL, as shipped) in a temporary
directory; the figures are microseconds of wall time and of this thread's CPU per
message, medians over the runs. In the running hub the same work costs more (its
threads take turns at the interpreter lock with an event loop): bench/README.md.
`--contended` measures that too: the writes in the writer's turn, with another thread
running Python throughout (a stand-in for a busy event loop). `--groups 1,1,1` gives each
write's fixed cost: what a transaction costs whatever the number of messages in it.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from hub.clock import utcnow
from hub.intake import Intake, IntakeRules
from hub.model import Claim, DeliveryReport, NewMessage, Source, Status, Submission, Transition
from hub.spoolcall import SpoolThreads
from spool import SqlSpool, open_spool

GROUP = 40  # intake's group commits under 50 clients: 30 to 50 messages
CLAIM = 250  # a claim of the dispatcher under load
SETTLE = 80  # records or receipts in one settle


@dataclass(frozen=True)
class Groups:
    """How many messages each write takes at once (--groups)."""

    intake: int = GROUP
    claim: int = CLAIM
    settle: int = SETTLE


def one_run(n: int, contended: bool = False, groups: Groups = Groups()
            ) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory(prefix="spool-ops-") as tmp:
        spool = open_spool(f"sqlite:///{Path(tmp) / 'spool.db'}")
        try:
            spool.upgrade()
            return _measure(spool, n, contended, groups)
        finally:
            spool.close()


@contextlib.contextmanager
def _busy_python() -> Iterator[None]:
    """Another thread running Python until the block ends: every time a spool call gives
    the interpreter lock up, this thread takes it, as the hub's event loop does."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(200))

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _measure(spool: SqlSpool, n: int, contended: bool, groups: Groups
             ) -> dict[str, tuple[float, float]]:
    group, claim, settle = groups.intake, groups.claim, groups.settle
    account = spool.create_account("bench", Decimal("1000000"), Decimal("0.10"), ("ACME",))
    intake = Intake(SpoolThreads(spool, threads=1), IntakeRules())
    now = utcnow()
    ready: list[NewMessage] = []
    for i in range(n):
        prepared = intake.prepare(account, Source.REST, Submission(
            f"+4916{i:08d}", f"Benchmark message number {i}"), now)
        assert isinstance(prepared, NewMessage), prepared
        ready.append(prepared)
    out: dict[str, tuple[float, float]] = {}

    def timed(name: str, work: Callable[[], None]) -> None:
        # Contended, the writer's turn is held across the measure: its writes take it
        # again at no cost, and the writer's short switch interval (spool.engine)
        # applies to them as in the hub.
        beside = (_busy_python(), spool.writer_turn()) if contended else ()
        wall, cpu = time.perf_counter(), time.thread_time()
        with contextlib.ExitStack() as stack:
            for context in beside:
                stack.enter_context(context)
            work()
        out[name] = (1e6 * (time.perf_counter() - wall) / n,
                     1e6 * (time.thread_time() - cpu) / n)

    timed("accept", lambda: [spool.accept(ready[i:i + group]) for i in range(0, n, group)])
    claims: list[Claim] = []
    timed("claim", lambda: claims.extend(spool.claim("bench", claim, 60, utcnow())
                                         for _ in range(0, n, claim)))
    assert sum(len(c.messages) for c in claims) == n
    records = [(c.token, Transition(m.id, Status.SUBMITTED, carrier="sim",
                                    carrier_message_id=f"c{m.id}"))
               for c in claims for m in c.messages]

    def record() -> None:
        for i in range(0, n, settle):
            by_token: dict[str, list[Transition]] = {}
            for token, transition in records[i:i + settle]:
                by_token.setdefault(token, []).append(transition)
            spool.settle(list(by_token.items()), [], utcnow())

    timed("record", record)
    reports = [DeliveryReport("sim", f"c{t.message_id}", Status.DELIVERED, utcnow())
               for _, t in records]
    timed("receipt", lambda: [spool.settle([], reports[i:i + settle], utcnow())
                              for i in range(0, n, settle)])
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=6000, help="messages per run (default 6000)")
    p.add_argument("--runs", type=int, default=5, help="runs; medians printed (default 5)")
    p.add_argument("--contended", action="store_true",
                   help="with another thread running Python throughout")
    p.add_argument("--groups", default=f"{GROUP},{CLAIM},{SETTLE}", metavar="I,C,S",
                   help="messages per intake commit, per claim and per settle (default "
                   f"{GROUP},{CLAIM},{SETTLE}, as under load; 1,1,1 gives each write's "
                   "fixed cost)")
    args = p.parse_args()
    try:
        sizes = [int(x) for x in args.groups.split(",")]
    except ValueError:
        sizes = []
    if len(sizes) != 3 or min(sizes) < 1:
        p.error("--groups takes three whole numbers of at least 1, e.g. 40,250,80")
    groups = Groups(*sizes)
    runs = [one_run(args.n, args.contended, groups) for _ in range(args.runs)]
    print(f"spool_ops: N={args.n}, {args.runs} runs, groups: intake {groups.intake}, "
          f"claim {groups.claim}, settle {groups.settle}"
          f"{', contended' if args.contended else ''}; "
          "us per message, median (min-max)")
    for name in runs[0]:
        wall = [r[name][0] for r in runs]
        cpu = [r[name][1] for r in runs]
        print(f"  {name:<8} wall {statistics.median(wall):5.1f} ({min(wall):.1f}-{max(wall):.1f})"
              f"  cpu {statistics.median(cpu):5.1f} ({min(cpu):.1f}-{max(cpu):.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

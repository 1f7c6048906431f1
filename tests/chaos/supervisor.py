"""The kill -9 chaos supervisor: `smshub serve` under load on REST, XML, FTP and SMTP is
killed with SIGKILL at a moment chosen per cycle (intake, commit, claim, submit,
receipt, outbox delivery, batch processing), restarted on the same data directory, and
after the last cycle left to settle and checked (tests/chaos/invariants.py).

The phases and delays come from one seeded RNG, logged first, so a failing run can be
replayed with the same seed (thread timing still varies; the choices do not)."""

from __future__ import annotations

import random
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.invariants import Verdict, check, settle
from tests.chaos.load import Ledger, Load
from tests.chaos.rig import Life, RelaySink, Smsc, prepare, relay_sink, smsc

PHASES = ("intake", "commit", "claim", "submit", "receipt", "outbox", "batch")
WARM_UP = (0.1, 0.8)  # seconds of load before a cycle starts looking for its moment
WAIT = 4.0  # seconds a cycle waits for its phase's moment before killing anyway
POLL = 0.002  # how often the spool is looked at for the claim and batch moments


@dataclass
class Report:
    seed: int
    cycles: int = 0
    kills: Counter[str] = field(default_factory=Counter)  # phase -> kills on its moment
    missed: Counter[str] = field(default_factory=Counter)  # phase -> moment never came
    acked: dict[str, int] = field(default_factory=dict)
    offered: dict[str, int] = field(default_factory=dict)
    verdict: Verdict = field(default_factory=Verdict)
    settle_seconds: float = 0.0
    unsettled: list[str] = field(default_factory=list)
    client_errors: list[str] = field(default_factory=list)
    log_errors: Counter[str] = field(default_factory=Counter)  # its WARNING+ lines
    wall: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.verdict.failed and not self.unsettled and not self.client_errors

    def lines(self) -> list[str]:
        out = [f"seed {self.seed}: {self.cycles} cycles in {self.wall:.0f} s "
               f"(settled in {self.settle_seconds:.1f} s)",
               "kills by phase: " + ", ".join(
                   f"{p} {self.kills[p]}" + (f" (+{self.missed[p]} late)"
                                             if self.missed[p] else "") for p in PHASES),
               "acknowledged: " + ", ".join(f"{k} {v}" for k, v in self.acked.items()),
               "offered: " + ", ".join(f"{k} {v}" for k, v in sorted(self.offered.items())),
               "figures: " + ", ".join(f"{k} {v}" for k, v in
                                       sorted(self.verdict.figures.items()))]
        out += [f"[{'ok' if v == 'ok' else 'FAIL'}] {k}" + ("" if v == "ok" else f": {v}")
                for k, v in self.verdict.checks.items()]
        out += [f"hub log {n}x: {line}" for line, n in self.log_errors.most_common(10)]
        out += [f"[FAIL] not settled: {u}" for u in self.unsettled]
        out += [f"[FAIL] client error: {e}" for e in self.client_errors[:5]]
        return out


class Moment:
    """The instant a cycle's phase is reached: set by a hook (an ack, a submit_sm, a
    relayed mail) or by a watcher reading the spool."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.armed = threading.Event()  # set after the warm-up: load is running by then
        self.countdown = 1

    def hit(self) -> None:
        if not self.armed.is_set():
            return
        self.countdown -= 1
        if self.countdown <= 0:
            self.event.set()


def _watch(db: Path, sql: str, moment: Moment, stop: threading.Event) -> None:
    """Set the moment when the query first finds a row (the hub's own file, read only)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        while not stop.is_set() and not moment.event.is_set():
            try:
                if moment.armed.is_set() and conn.execute(sql).fetchone():
                    moment.event.set()
            except sqlite3.OperationalError:
                pass  # busy for a moment: look again
            time.sleep(POLL)


class Supervisor:
    def __init__(self, base: Path, seed: int, say: Callable[[str], None] = print) -> None:
        self.base, self.data = base, base / "var"
        self.rng = random.Random(seed)
        self.report = Report(seed)
        self.say = say

    def run(self, cycles: int, settle_timeout: float = 120.0) -> Report:
        started = time.monotonic()
        self.say(f"chaos seed {self.report.seed}: {cycles} cycles in {self.base}")
        ledger = Ledger()
        with smsc() as side, relay_sink() as (sink, relay_port):
            env, key = prepare(self.base, side.server.port, relay_port)
            for cycle in range(1, cycles + 1):
                self._cycle(cycle, env, key, ledger, side, sink)
            last = Life(env)  # the life that settles: nothing kills it
            try:
                resent = Load(last, key, ledger, cycles + 1).resend_unanswered()
                self.say(f"{resent} REST and XML requests still unanswered sent again")
                self.report.settle_seconds, self.report.unsettled = settle(
                    self.data, ledger, settle_timeout, self.say)
                self.report.verdict = check(self.data, ledger, side, sink, last.http, key)
            finally:
                last.kill()
                self._note_log_errors(last)
        self.report.acked = ledger.counts()
        self.report.offered = dict(ledger.tried)
        self.report.cycles = cycles
        self.report.wall = time.monotonic() - started
        for line in self.report.lines():
            self.say(line)
        return self.report

    def _cycle(self, cycle: int, env: dict[str, str], key: str, ledger: Ledger,
               side: Smsc, sink: RelaySink) -> None:
        phase = self.rng.choice(PHASES)
        warm_up = self.rng.uniform(*WARM_UP)
        moment = Moment()
        delay = self._arm(phase, moment, ledger, side, sink)
        life = Life(env)
        load = Load(life, key, ledger, cycle)
        stop = threading.Event()
        acked = ledger.counts()
        try:
            watchers = self._watchers(phase, moment, stop)
            load.start()
            hit = self._await_moment(moment, warm_up, ledger, sum(acked.values()))
            time.sleep(delay)
        finally:  # also when the supervisor itself is interrupted: no hub left running
            life.kill()
            stop.set()
            self._disarm(ledger, side, sink)
            load.join()
        for watcher in watchers:
            watcher.join(5)
        self._note_log_errors(life)
        (self.report.kills if hit else self.report.missed)[phase] += 1
        self.report.client_errors += load.errors
        now = ledger.counts()
        self.say(f"cycle {cycle}: kill -9 at {phase}{'' if hit else ' (late)'} "
                 f"+{delay * 1000:.0f} ms; acked in this life: " + ", ".join(
                     f"{k} {now[k] - acked[k]}" for k in now))

    def _note_log_errors(self, life: Life) -> None:
        """The hub's WARNING and ERROR lines, ids and numbers blanked: one entry a kind."""
        for line in life.server.log:
            found = re.search(r" ((?:WARNING|ERROR|CRITICAL) .*)", line)
            if found:
                kind = re.sub(r"\d+", "N", re.sub(r"[0-9A-Z]{26}", "<id>", found[1]))
                self.report.log_errors[kind[:160]] += 1

    def _await_moment(self, moment: Moment, warm_up: float, ledger: Ledger,
                      before: int) -> bool:
        """Let the clients get going (an answer in this life at least), so each life takes
        load and not only recovery work; then wait for the phase's moment."""
        time.sleep(warm_up)
        deadline = time.monotonic() + WAIT
        while sum(ledger.counts().values()) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        moment.armed.set()
        return moment.event.wait(WAIT)

    def _arm(self, phase: str, moment: Moment, ledger: Ledger, side: Smsc,
             sink: RelaySink) -> float:
        """Hook the phase's moment; return the random delay from it to the kill."""
        rng = self.rng
        if phase == "intake":  # requests in flight on every ingress, none special
            moment.countdown = rng.randint(1, 5)
            ledger.on_ack = moment.hit
            return rng.uniform(0.0, 0.3)
        if phase == "commit":  # straight after an answer: the next commits are in flight
            moment.countdown = rng.randint(1, 40)
            ledger.on_ack = moment.hit
            return 0.0
        if phase == "submit":  # submit_sm at the SMSC, its answer 10 ms away
            moment.countdown = rng.randint(1, 60)
            side.on_submit = moment.hit
            return rng.uniform(0.0, 0.02)
        if phase == "outbox":  # a receipt at the relay, its `sent` not yet recorded
            sink.on_mail = moment.hit
            return rng.uniform(0.0, 0.01)
        return {"claim": 0.0, "receipt": rng.uniform(0.0, 0.05),
                "batch": rng.uniform(0.0, 0.3)}[phase]

    def _watchers(self, phase: str, moment: Moment, stop: threading.Event
                  ) -> list[threading.Thread]:
        sql = {"claim": "SELECT 1 FROM messages WHERE status = 'sending' LIMIT 1",
               "batch": "SELECT 1 FROM batches WHERE state = 'processing' AND rows > 0"}
        if phase == "receipt":
            sql["receipt"] = self._receipt_sql()
        if phase not in sql:
            return []
        watcher = threading.Thread(target=_watch, args=(self.data / "spool.db", sql[phase],
                                                        moment, stop), daemon=True)
        watcher.start()
        return [watcher]

    def _receipt_sql(self) -> str:
        """Reports being applied: a final event newer than any before this life."""
        with sqlite3.connect(self.data / "spool.db", timeout=10) as conn:
            top = conn.execute("SELECT coalesce(max(id), 0) FROM message_events").fetchone()[0]
        return (f"SELECT 1 FROM message_events WHERE id > {top} AND status IN "
                "('delivered', 'undelivered') LIMIT 1")

    def _disarm(self, ledger: Ledger, side: Smsc, sink: RelaySink) -> None:
        ledger.on_ack = None
        side.on_submit = None
        sink.on_mail = None

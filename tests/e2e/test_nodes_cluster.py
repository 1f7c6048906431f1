"""Several dispatch nodes on one PostgreSQL spool working as one (issue #16): an idle
dispatcher woken at once by another node's commit (LISTEN/NOTIFY), again after its
connection was cut, and never by a rollback; upkeep jobs each run by one node at a time
and taken over when that node dies (SIGKILL); an SMPP carrier's binds and rate shared by
the nodes, not multiplied, and a node without a bind claiming nothing; webhook events
and emails delivered once each whichever node sends them."""

from __future__ import annotations

import asyncio
import re
import signal
import smtplib
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.engine import make_url

from hub.config import CarrierTable
from hub.mail import MailSettings
from hub.maintenance import Maintenance
from hub.ports import MESSAGES_CHANNEL
from hub.spoolcall import SpoolThreads
from spool import open_spool
from spool.cluster import PgCoordination, lock_key
from spool.engine import notify
from spool.store import SqlSpool
from tests.e2e.test_cli_and_crash import Server, env_for
from tests.e2e.test_nodes import RoleServer
from tests.hubthread import HubThread
from tests.integration.conftest import test_config as hub_config
from tests.polling import eventually
from tests.receiver import Receiver, Script
from tests.relay import Sink
from tests.smsc.pdu import UNBIND
from tests.smsc.scripted import Answer, ScriptedSmsc
from tests.smsc.thread import smsc_in_thread

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MessagePoster = Callable[[int], list[str]]


@pytest.fixture
def nodes(tmp_path: Path, pg_url: str) -> Iterator[Callable[..., HubThread]]:
    """node(name, role, **sections): an in-process hub on the test's PostgreSQL schema,
    started (one after another: the first one creates the schema), stopped at the end."""
    started: list[HubThread] = []

    def node(
        name: str,
        role: str = "dispatch",
        carriers: dict[str, CarrierTable] | None = None,
        **sections: dict[str, Any],
    ) -> HubThread:
        config = hub_config(
            tmp_path / name,
            **{
                "spool": {"url": pg_url},
                **sections,
                "hub": {
                    "data_dir": str(tmp_path / name),
                    "node": name,
                    "role": role,
                    **sections.get("hub", {}),
                },
            },
        )
        hub = HubThread(replace(config, carriers=carriers or {}))
        started.append(hub.start())
        return hub

    yield node
    for hub in reversed(started):
        hub.stop()


def _sql(pg_url: str, statement: str, **params: Any) -> list[Any]:
    engine = sqlalchemy.create_engine(
        make_url(pg_url).set(drivername="postgresql+psycopg"), poolclass=sqlalchemy.NullPool
    )
    try:
        with engine.begin() as conn:
            return list(conn.execute(sqlalchemy.text(statement), params))
    finally:
        engine.dispose()


def _cut(pg_url: str, lock: str) -> int:
    """Terminate the backend holding cluster lock `lock`, as PostgreSQL does when that
    process dies or its connection breaks; returns its pid."""
    [(schema,)] = _sql(pg_url, "SELECT current_schema()")
    first, second = lock_key(schema, lock)
    [(pid,)] = _sql(
        pg_url,
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND "
        "classid::bigint = :a AND objid::bigint = :b",
        a=first,
        b=second,
    )
    # Its locks go once the backend has ended (terminating it only asks it to).
    _sql(pg_url, "SELECT pg_terminate_backend(:pid, 5000)", pid=pid)
    return int(pid)


def _holder(pg_url: str, lock: str) -> int | None:
    [(schema,)] = _sql(pg_url, "SELECT current_schema()")
    first, second = lock_key(schema, lock)
    rows = _sql(
        pg_url,
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND "
        "granted AND classid::bigint = :a AND objid::bigint = :b",
        a=first,
        b=second,
    )
    return int(rows[0][0]) if rows else None


def _poster(hub: HubThread) -> MessagePoster:
    key = hub.account("acme", credits="10000", price="0.01")

    def post(count: int) -> list[str]:
        batch = {"messages": [{"to": f"08212345{n % 100:02d}", "text": "hi"} for n in range(count)]}
        r = httpx.post(
            f"{hub.url}/v1/messages",
            json=batch,
            timeout=30,
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 202, r.text
        return [m["id"] for m in r.json()["results"]]

    return post


# --- LISTEN/NOTIFY ------------------------------------------------------------------------


def test_an_idle_dispatcher_is_woken_by_another_nodes_commit_and_again_after_a_cut(
    nodes: Callable[..., HubThread], pg_url: str
) -> None:
    # It polls every 5 s: only a notification makes it claim within a second.
    dispatcher = nodes("d1", dispatcher={"poll_interval": 5.0})
    ingress = nodes("in", role="ingress")
    post = _poster(ingress)
    spool = ingress.spool

    def sent_within(seconds: float) -> bool:
        [mid] = post(1)
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            message = spool.get_message(mid)
            if message is not None and message.status.value not in ("accepted", "queued"):
                return True
            time.sleep(0.02)
        return False

    time.sleep(0.3)  # its first claim (at start) is over: idle now
    assert sent_within(1.0) and sent_within(1.0)
    # The listening connection breaks (a PostgreSQL restart, a failover): made again,
    # LISTENing again, and its locks taken again.
    cut = _cut(pg_url, "dispatcher:d1")
    eventually(
        lambda: _holder(pg_url, "dispatcher:d1") not in (None, cut),
        10,
        0.1,
        "the coordination connection made again",
    )
    assert sent_within(1.0)
    assert dispatcher.hub.services is not None


async def test_a_notification_is_sent_by_a_commit_and_never_by_a_rollback(pg_url: str) -> None:
    spool = open_spool(pg_url)

    def rolled_back() -> None:
        with pytest.raises(RuntimeError), spool.db.write() as conn:
            notify(conn, MESSAGES_CHANNEL)
            raise RuntimeError("rolled back")
        with spool.db.write() as conn:  # reuses that connection: nothing of it is left
            conn.execute(sqlalchemy.text("SELECT 1"))

    try:
        await _woken_only_by(pg_url, rolled_back, lambda: _notify(spool))
    finally:
        spool.close()


async def test_a_commit_on_a_spool_in_another_schema_of_the_database_wakes_no_one_here(
    pg_url: str, other_pg_url: str,
) -> None:
    """NOTIFY channels are the whole database's: two spools in two schemas of one
    database (two hubs, or staging beside production) must not wake each other."""
    here, there = open_spool(pg_url), open_spool(other_pg_url)
    try:
        await _woken_only_by(pg_url, lambda: _notify(there), lambda: _notify(here))
    finally:
        here.close()
        there.close()


def _notify(spool: SqlSpool) -> None:
    with spool.db.write() as conn:
        notify(conn, MESSAGES_CHANNEL)


async def _woken_only_by(pg_url: str, quiet: Callable[[], None],
                         waking: Callable[[], None]) -> None:
    """A listener on pg_url's spool is not woken by `quiet` (within 0.5 s), and is woken
    by `waking` (within 2 s)."""
    listener = PgCoordination(pg_url)
    woken = asyncio.Event()
    listener.subscribe(MESSAGES_CHANNEL, woken.set)
    try:
        await listener.start()
        assert listener.listening
        quiet()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(woken.wait(), 0.5)
        waking()
        await asyncio.wait_for(woken.wait(), 2)
    finally:
        await listener.stop()


# --- upkeep, one node at a time -----------------------------------------------------------


async def test_each_upkeep_job_runs_on_one_node_at_a_time_and_moves_when_it_is_cut(
    pg_url: str,
) -> None:
    spool = open_spool(pg_url)
    spool.upgrade()
    runner = SpoolThreads(spool)
    coordination = [PgCoordination(pg_url, member=f"dispatcher:{n}") for n in ("a", "b")]
    upkeep = [Maintenance(runner, 60, 3600, coordination=c) for c in coordination]
    try:
        for c in coordination:
            await c.start()
        jobs: set[str] = set()
        for _ in range(5):  # both at once, as two nodes' timers may fire together
            a, b = await asyncio.gather(upkeep[0].run_once(), upkeep[1].run_once())
            assert not set(a) & set(b)  # no job ran on both
            jobs |= set(a) | set(b)
            assert len(set(a) | set(b)) == 8  # and each job ran once
        ran = [set(await u.run_once()) for u in upkeep]
        assert ran[0] | ran[1] == jobs  # the same node runs each job from run to run
        # The leader's connection breaks, as when its process dies: PostgreSQL lets its
        # locks go, the other node runs every job at its next run, and the old leader,
        # connected again, runs none.
        leader = 0 if ran[0] else 1
        other = 1 - leader
        _cut(pg_url, f"dispatcher:{'ab'[leader]}")
        assert set(await upkeep[other].run_once()) == jobs
        deadline = time.monotonic() + 10
        while not coordination[leader].listening and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert coordination[leader].listening
        assert await upkeep[leader].run_once() == {}
    finally:
        for c in coordination:
            await c.stop()
        runner.shutdown()
        spool.close()


def test_upkeep_moves_to_the_surviving_node_when_its_node_is_killed(
    tmp_path: Path, servers: list[Server], pg_url: str
) -> None:
    env = env_for(tmp_path / "var", SMSHUB_SPOOL__URL=pg_url, SMSHUB_MAINTENANCE__INTERVAL="0.2")
    started = [RoleServer({**env, "SMSHUB_HUB__NODE": name}, "dispatch") for name in ("d1", "d2")]
    servers.extend(started)
    runs = re.compile(r"this node now runs lease-recovery")

    def leader() -> RoleServer | None:
        found = [s for s in started if any(runs.search(line) for line in list(s.log))]
        assert len(found) <= 1, "both nodes ran lease recovery"
        return found[0] if found else None

    first = eventually(leader, 15, 0.05, "one node running lease recovery")
    time.sleep(1.0)  # several runs later, still only one node has run it
    assert leader() is first
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    survivor = next(s for s in started if s is not first)
    assert survivor.wait_for_log(runs.pattern, timeout=10)


# --- SMPP binds and rate -------------------------------------------------------------------


class CountingSmsc(ScriptedSmsc):
    """The scripted SMSC counting the binds open at once, a session counted from its bind
    to its unbind or its end."""

    def __init__(self, **knobs: Any) -> None:
        super().__init__(**knobs)
        self.most_bound = 0
        self._unbound: set[int] = set()

    def bound_now(self) -> int:
        return len([s for s in self.sessions() if s not in self._unbound])

    def _handle(self, s: Any, pdu: Any) -> None:
        if pdu.command_id == UNBIND:
            self._unbound.add(s.id)
        super()._handle(s, pdu)
        self.most_bound = max(self.most_bound, self.bound_now())


@pytest.fixture
def smsc() -> Iterator[CountingSmsc]:
    with smsc_in_thread(CountingSmsc, receipt_mode="after") as server:
        yield server


def _smpp_table(smsc: CountingSmsc, binds: int, system_id: str = "hub",
                **settings: Any) -> CarrierTable:
    """The carrier `smsc` of every node's config: an SMPP login to the test SMSC."""
    return CarrierTable("smsc", "smpp", {
        "host": "127.0.0.1", "port": smsc.port, "system_id": system_id, "password": "pw",
        "binds": binds, **settings,
    }, "test")


def _slots(hub: HubThread) -> int:
    assert hub.hub.services is not None
    carrier = hub.hub.services.dispatcher.carriers["smsc"]
    return int(getattr(carrier, "stats")()["bind_slots_held"])


def test_three_nodes_share_an_smpp_carriers_binds_and_rate(
    nodes: Callable[..., HubThread], smsc: CountingSmsc
) -> None:
    rate, binds = 40.0, 3
    table = _smpp_table(smsc, binds, rate=rate, reconnect_min=0.2)
    sections: dict[str, Any] = {
        "routing": {"default_carrier": "smsc"},
        "dispatcher": {"batch_size": 10, "poll_interval": 0.05},
    }
    hubs = [
        nodes(name, role="all" if name == "a" else "dispatch", carriers={"smsc": table}, **sections)
        for name in ("a", "b", "c")
    ]
    eventually(lambda: [_slots(h) for h in hubs] == [1, 1, 1], 15, 0.1, "one bind slot per node")
    post = _poster(hubs[0])
    count = 160
    post(count)
    eventually(lambda: len(smsc.submits) >= count, 30, 0.1, "every message submitted")
    times = sorted(s.time for s in smsc.submits)
    span = times[-1] - times[0]
    # Each node may start with one message at once; beyond that the sum of their
    # shares is the carrier's rate: three nodes at the full rate would take a third.
    assert count - binds <= rate * span * 1.05, f"{count} in {span:.2f} s"
    assert len(smsc.submits) == count  # each message once
    assert smsc.most_bound <= binds
    # A node stops: its slot is taken over, the binds stay within the carrier's number.
    hubs[2].stop()
    eventually(
        lambda: sorted(_slots(h) for h in hubs[:2]) == [1, 2],
        15,
        0.1,
        "the stopped node's slot taken over",
    )
    eventually(lambda: smsc.bound_now() == binds, 10, 0.1, "three binds again")
    assert smsc.most_bound <= binds


def test_a_node_without_a_bind_slot_claims_nothing_until_the_slot_is_free(
    nodes: Callable[..., HubThread], smsc: CountingSmsc
) -> None:
    table = _smpp_table(smsc, 1, reconnect_min=0.2)
    sections: dict[str, Any] = {
        "routing": {"default_carrier": "smsc"},
        "dispatcher": {"batch_size": 5, "poll_interval": 0.05},
    }
    hubs = [nodes(n, carriers={"smsc": table}, **sections) for n in ("a", "b")]
    ingress = nodes("in", role="ingress")
    eventually(lambda: sorted(_slots(h) for h in hubs) == [0, 1], 15, 0.1, "one bind")
    holder, other = (hubs[0], hubs[1]) if _slots(hubs[0]) else (hubs[1], hubs[0])
    post = _poster(ingress)
    ids = post(30)
    eventually(lambda: len(smsc.submits) >= len(ids), 30, 0.1, "every message submitted")
    spool = ingress.spool
    sent = [spool.get_message(i) for i in ids]
    # Sent once each, at the first attempt: the node without the bind never took one
    # only to hand it back as a retry.
    assert [m.attempts if m else None for m in sent] == [1] * len(ids)
    assert {
        e.detail.rsplit(" by ", 1)[1]
        for i in ids
        for e in spool.events(i)
        if e.status.value == "sending"
    } == {holder.config.node}
    assert smsc.most_bound == 1
    holder.stop()  # its slot goes to the other node, which sends from then on
    eventually(lambda: _slots(other) == 1, 15, 0.1, "the slot taken over")
    [late] = post(1)
    eventually(
        lambda: (
            (m := spool.get_message(late)) is not None
            and m.status.value in ("submitted", "delivered")
        ),
        15,
        0.1,
        "sent by the other",
    )
    assert smsc.most_bound == 1


def test_nodes_binding_as_different_system_ids_each_keep_their_own_binds(
    nodes: Callable[..., HubThread], smsc: CountingSmsc
) -> None:
    """The SMSC counts binds per account: a node's own system_id is its own budget."""
    hubs = [
        nodes(n, carriers={"smsc": _smpp_table(smsc, 1, system_id=n)},
              routing={"default_carrier": "smsc"})
        for n in ("a", "b")
    ]
    eventually(lambda: [_slots(h) for h in hubs] == [1, 1], 15, 0.1, "a bind each")
    eventually(lambda: smsc.bound_now() == 2, 10, 0.1, "two binds")
    assert sorted(b.system_id for b in smsc.bind_log) == ["a", "b"]


def test_a_bind_outlives_a_cut_coordination_connection_and_a_given_up_slot_drains(
    nodes: Callable[..., HubThread], smsc: CountingSmsc, pg_url: str
) -> None:
    smsc.on_submit = lambda _: Answer(delay=0.2)  # answers owed when a slot is given up
    table = _smpp_table(smsc, 2, reconnect_min=0.2)
    sections: dict[str, Any] = {
        "routing": {"default_carrier": "smsc"},
        "dispatcher": {"batch_size": 10, "poll_interval": 0.05},
    }
    ingress = nodes("in", role="ingress")
    first = nodes("a", carriers={"smsc": table}, **sections)
    eventually(lambda: _slots(first) == 2 and smsc.bound_now() == 2, 15, 0.1, "both binds")
    # Its coordination connection breaks: nobody can take a slot meanwhile, so its binds
    # stay up and it takes their locks again once connected.
    cut = _cut(pg_url, "dispatcher:a")
    eventually(
        lambda: _holder(pg_url, "dispatcher:a") not in (None, cut), 10, 0.1, "connected again"
    )
    time.sleep(0.5)
    assert smsc.binds == 2 and smsc.unbinds == 0 and _slots(first) == 2
    # Messages in flight when a second node joins: the first gives a slot up, but only
    # once the answers owed on it have come: none is lost, so none is sent twice.
    post = _poster(ingress)
    ids = post(60)
    eventually(lambda: len(smsc.submits) >= 10, 15, 0.05, "sending")
    second = nodes("b", carriers={"smsc": table}, **sections)
    eventually(lambda: _slots(second) == 1, 15, 0.1, "a slot for the second node")
    eventually(lambda: len(smsc.submits) >= len(ids), 30, 0.1, "every message submitted")
    assert len(smsc.submits) == len(ids)  # each once: no answer was lost to the unbind
    assert smsc.unbinds == 1 and smsc.most_bound <= 2
    assert all((m := ingress.spool.get_message(i)) and m.attempts == 1 for i in ids)


# --- webhooks --------------------------------------------------------------------------------


def test_webhook_events_are_delivered_once_each_by_two_dispatch_nodes(
    nodes: Callable[..., HubThread], receiver: Receiver, pg_url: str
) -> None:
    fast: dict[str, Any] = {
        "webhooks": {"allow_networks": ["127.0.0.1/32"], "poll_interval": 0.05},
        "outbox": {"poll_interval": 0.05},
    }
    ingress = nodes("in", role="ingress", **fast)
    for name in ("d1", "d2"):
        nodes(name, **fast)
    receiver.scripts["/hook"] = Script(delay=0.02)  # deliveries overlap: both nodes send
    key = ingress.account("acme", credits="100", price="0.01")
    auth = {"Authorization": f"Bearer {key}"}
    r = httpx.post(f"{ingress.url}/v1/webhooks", json={"url": receiver.url("/hook")}, headers=auth)
    assert r.status_code == 201, r.text
    batch = {"messages": [{"to": f"08212345{n:02d}", "text": "hi"} for n in range(60)]}
    r = httpx.post(f"{ingress.url}/v1/messages", json=batch, timeout=30, headers=auth)
    assert r.status_code == 202, r.text
    wanted = {
        (m["id"], t)
        for m in r.json()["results"]
        for t in ("message.submitted", "message.delivered")
    }
    senders: set[str] = set()

    def all_seen() -> bool:
        # Items being delivered carry their node's name in their lease token.
        senders.update(
            row[0]
            for row in _sql(
                pg_url,
                "SELECT split_part(lease_token, ':', 1) FROM outbox WHERE status = 'sending'",
            )
        )
        return wanted <= {(h.event["data"]["id"], h.event["type"]) for h in receiver.at("/hook")}

    eventually(all_seen, 60, 0.02, "every event delivered")
    time.sleep(0.5)  # a second delivery of any of them would have come by now
    by_id = Counter(h.headers["webhook-id"] for h in receiver.at("/hook"))
    assert len(by_id) == len(wanted) and max(by_id.values()) == 1, "an event sent twice"
    assert senders == {"d1", "d2"}, senders  # both nodes delivered some


def test_an_idle_outbox_is_woken_by_another_nodes_commit(
    nodes: Callable[..., HubThread], receiver: Receiver
) -> None:
    # The outbox polls every 5 s: only a notification delivers within a second an event
    # that the ingress node committed (an opt-out it recorded).
    slow: dict[str, Any] = {
        "webhooks": {"allow_networks": ["127.0.0.1/32"], "poll_interval": 5.0},
        "outbox": {"poll_interval": 5.0},
    }
    ingress = nodes("in", role="ingress", **slow)
    nodes("d1", **slow)
    key = ingress.account("acme", credits="10")
    auth = {"Authorization": f"Bearer {key}"}
    r = httpx.post(f"{ingress.url}/v1/webhooks", headers=auth,
                   json={"url": receiver.url("/opt"), "events": ["optout.created"]})
    assert r.status_code == 201, r.text
    time.sleep(0.3)  # the outbox's first look (at start) is over: idle now
    for n, number in enumerate(("082 123 4501", "082 123 4502"), start=1):
        r = httpx.post(f"{ingress.url}/v1/optouts", headers=auth, json={"number": number})
        assert r.status_code in (200, 201), r.text
        started = time.monotonic()
        eventually(lambda n=n: len(receiver.at("/opt")) >= n, 5, 0.02, "the event delivered")
        assert time.monotonic() - started < 1.5


# --- email -----------------------------------------------------------------------------------


class SlowRelay(Sink):
    """The outgoing relay, taking 50 ms a mail: deliveries overlap, so both nodes send."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_relay() -> Iterator[tuple[SlowRelay, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    relay = SlowRelay()
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    yield relay, port
    controller.stop()


def test_mail_receipts_are_delivered_once_each_by_two_dispatch_nodes(
    nodes: Callable[..., HubThread], slow_relay: tuple[SlowRelay, int], pg_url: str
) -> None:
    relay, port = slow_relay
    smtp = {"enabled": True, "port": 0, "relay_host": "127.0.0.1", "relay_port": port,
            "relay_security": "none"}
    outbox = {"poll_interval": 0.05, "batch_size": 5}  # a claim leaves work for the other
    ingress = nodes("in", role="ingress", smtp=smtp, outbox=outbox)
    for name in ("d1", "d2"):
        nodes(name, smtp=smtp, outbox=outbox)
    ingress.account("acme", credits="100")
    account = ingress.spool.get_account("acme")
    assert account is not None
    sender = "ops@acme.co.za"
    ingress.spool.save_mail_settings(MailSettings(account.id, (sender,), receipts=True))
    count = 30
    assert ingress.hub.smtp_port is not None
    with smtplib.SMTP("127.0.0.1", ingress.hub.smtp_port, timeout=30) as client:
        for n in range(count):
            mail = EmailMessage()
            mail["From"], mail["To"], mail["Subject"] = sender, "0821234567@sms.localhost", "hi"
            mail["Message-ID"] = f"<m{n}@acme.co.za>"
            mail.set_content(f"parcel {n} is ready")
            client.send_message(mail)  # raises unless every recipient got 250
    senders: set[str] = set()
    received: list[str] = []

    def all_mailed() -> bool:
        senders.update(
            row[0]
            for row in _sql(
                pg_url,
                "SELECT split_part(lease_token, ':', 1) FROM outbox WHERE status = 'sending'",
            )
        )
        while not relay.mails.empty():
            received.append(str(relay.mails.get()["In-Reply-To"]))
        return len(set(received)) >= count

    eventually(all_mailed, 60, 0.02, "every receipt mailed")
    time.sleep(1.0)  # a second delivery of any of them would have come by now
    all_mailed()
    assert Counter(received) == Counter(f"<m{n}@acme.co.za>" for n in range(count))
    assert senders == {"d1", "d2"}, senders  # both nodes mailed some

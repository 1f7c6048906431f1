"""The SMPP carrier's edge cases against a scripted SMSC: the window really enforced, a
response that never comes, throttling, a refused bind, a dropped link with a full window,
receipts early/twice/unknown/12-digit, and deliver_sm acknowledged only after commit."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import trustme
from sqlalchemy import func, select

from adapters.carriers.simulator import SimulatorCarrier, SimulatorRules
from adapters.carriers.smpp import pdu
from adapters.carriers.smpp.carrier import SmppCarrier
from adapters.carriers.smpp.config import SmppSettings
from adapters.carriers.smpp.session import Session
from hub.clock import utcnow
from hub.dispatcher import Dispatcher, DispatchSettings
from hub.errors import TemporaryFailure
from hub.metrics import Metrics
from hub.model import DeliveryReport, Status
from hub.policies import RetryPolicy
from hub.routing import Router
from hub.spoolcall import SpoolThreads
from spool import SqlSpool, open_spool
from spool.tables import inbound, inbound_parts
from tests.factories import make_account, new_message
from tests.polling import until
from tests.smsc import pdu as p
from tests.smsc.scripted import WITHHOLD, ScriptedSmsc, SubmitRecord


@pytest.fixture
async def smsc() -> AsyncIterator[ScriptedSmsc]:
    server = await ScriptedSmsc().start()
    yield server
    await server.stop()


@pytest.fixture
async def hub(spool_url: str) -> AsyncIterator[Any]:
    made: list[tuple[SqlSpool, SpoolThreads[Any], Dispatcher]] = []

    async def make(port: int, retry: RetryPolicy | None = None,
                   **overrides: Any) -> tuple[SqlSpool, Dispatcher, SmppCarrier]:
        settings = SmppSettings(**{"port": port, "system_id": "hub", "password": "secret",
                                   "reconnect_min": 0.05, "reconnect_max": 0.1,
                                   "enquire_link_interval": 5, **overrides})
        store = open_spool(spool_url)
        await asyncio.to_thread(store.upgrade)
        runner = SpoolThreads(store)
        carrier = SmppCarrier("smsc", settings, parts=runner)
        dispatcher = Dispatcher(
            runner, Router({"smsc": carrier}, "smsc"),
            retry or RetryPolicy(max_attempts=10, base=0.05, cap=0.1),
            DispatchSettings(batch_size=100, poll_interval=0.02),
            "n1", Metrics())
        made.append((store, runner, dispatcher))
        return store, dispatcher, carrier

    yield make
    for store, runner, dispatcher in made:
        await dispatcher.stop()
        runner.shutdown()
        store.close()


def queue(store: SqlSpool, count: int, **kwargs: Any) -> list[str]:
    """`count` messages, each to its own recipient (one recipient's go one at a time)."""
    account = make_account(store, credits="1000", price="0.05")
    now = utcnow()
    messages = [new_message(account, **{"recipient": f"+2782{i:07d}", "accepted_at": now,
                                        **kwargs})
                for i in range(count)]
    store.accept(messages)
    return [m.id for m in messages]


def statuses(store: SqlSpool, ids: list[str]) -> Counter[Status]:
    return Counter(store.get_message(i).status for i in ids)  # type: ignore[union-attr]


async def test_the_window_of_outstanding_submit_sm_is_enforced(
    smsc: ScriptedSmsc, hub: Any,
) -> None:
    held: list[SubmitRecord] = []

    def hold(record: SubmitRecord) -> Any:
        held.append(record)
        return WITHHOLD

    smsc.on_submit = hold
    store, dispatcher, _ = await hub(smsc.port, window=5)
    ids = queue(store, 20)
    await dispatcher.start()
    await until(lambda: smsc.outstanding() == 5)
    await asyncio.sleep(0.2)  # nothing more may arrive while the window is full
    assert smsc.max_outstanding == 5
    smsc.on_submit = None
    for record in held:
        smsc.release(record)
    await until(lambda: statuses(store, ids)[Status.SUBMITTED] == 20, timeout=10)
    assert smsc.max_outstanding == 5


async def test_each_submit_sm_carries_its_messages_validity_in_utc(
    smsc: ScriptedSmsc, hub: Any,
) -> None:
    store, dispatcher, _ = await hub(smsc.port)
    account = make_account(store, credits="1000", price="0.05")
    now = utcnow()
    sast = timezone(timedelta(hours=2))
    expiries = {  # recipient -> expiry; two within one second, one given in SAST
        "+27820000001": datetime(2031, 3, 4, 5, 6, 7, 100, tzinfo=UTC),
        "+27820000002": datetime(2031, 3, 4, 5, 6, 7, 999_999, tzinfo=UTC),
        "+27820000003": datetime(2031, 3, 4, 7, 6, 8, 500_000, tzinfo=sast),
        "+27820000004": None,
    }
    store.accept([new_message(account, recipient=number, accepted_at=now, expires_at=when)
                  for number, when in expiries.items()])
    await dispatcher.start()
    await until(lambda: len(smsc.submits) == 4)
    sent = {f"+{r.dest_addr}": r.validity_period for r in smsc.submits}
    assert sent == {"+27820000001": "310304050607000+", "+27820000002": "310304050607000+",
                    "+27820000003": "310304050608000+", "+27820000004": ""}


async def test_a_recipients_messages_go_one_after_another_while_others_fill_the_window(
    smsc: ScriptedSmsc, hub: Any,
) -> None:
    """An SMSC keeps no order between outstanding submissions: a recipient's next message
    goes only once the one before it is answered, while other recipients' fill the window
    (answers come newest first here, as they may from a busy SMSC)."""
    held: list[SubmitRecord] = []
    overlapping: list[bytes] = []

    def hold(record: SubmitRecord) -> Any:
        if record.dest_addr == "27829999999" and any(
                h.dest_addr == record.dest_addr and h.status is None for h in held):
            overlapping.append(record.short_message)
        held.append(record)
        return WITHHOLD

    smsc.on_submit = hold
    store, dispatcher, _ = await hub(smsc.port, window=5)
    account = make_account(store, credits="1000", price="0.05")
    now = utcnow()
    mine = [new_message(account, recipient="+27829999999", text=text, accepted_at=now)
            for text in ("first", "second", "third")]
    others = [new_message(account, recipient=f"+2782{i:07d}", accepted_at=now)
              for i in range(12)]
    store.accept([*mine, *others])

    async def answer_newest_first() -> None:
        while True:
            await asyncio.sleep(0.02)
            for record in reversed([h for h in held if h.status is None]):
                smsc.release(record)

    answering = asyncio.create_task(answer_newest_first())
    try:
        await dispatcher.start()
        ids = [m.id for m in (*mine, *others)]
        await until(lambda: statuses(store, ids)[Status.SUBMITTED] == 15, timeout=10)
    finally:
        answering.cancel()
    sent = [r.short_message for r in smsc.submits if r.dest_addr == "27829999999"]
    assert sent == [b"first", b"second", b"third"] and overlapping == []
    assert smsc.max_outstanding == 5  # the others kept the window full meanwhile


async def test_a_batch_claimed_before_the_bind_is_up_goes_out_in_each_recipients_order(
    smsc: ScriptedSmsc, hub: Any,
) -> None:
    """Binds are refused until the whole batch has gone back to the queue, each message
    with its own jittered backoff: a recipient's messages still go out in the order they
    were accepted (before, they came back shuffled, one backoff apart)."""
    # Retries due well after the next bind (reconnect_max 0.1 s): a recipient's first
    # message retried before it would fail again, and its order with the rest of the
    # recipient's messages would then depend on the next backoff, not on this batch.
    store, dispatcher, _ = await hub(smsc.port, retry=RetryPolicy(max_attempts=10, base=0.6,
                                                                  cap=0.6))
    account = make_account(store, credits="1000", price="0.05")
    now = utcnow()
    texts = [f"message {n}".encode() for n in range(1, 7)]
    mine = [new_message(account, recipient="+27829999999", text=t.decode(), accepted_at=now)
            for t in texts]
    others = [new_message(account, recipient=f"+2782{i:07d}", accepted_at=now)
              for i in range(12)]
    store.accept([*mine, *others])
    ids = [m.id for m in (*mine, *others)]

    def sent_back(message_id: str) -> bool:
        return any(e.status is Status.QUEUED for e in store.events(message_id))

    def bind_status(record: Any) -> int:
        return p.ESME_ROK if all(sent_back(i) for i in ids) else 0x0D  # ESME_RBINDFAIL

    smsc.bind_status = bind_status
    await dispatcher.start()
    await until(lambda: statuses(store, ids)[Status.SUBMITTED] == len(ids), timeout=10)
    sent = [r.short_message for r in smsc.submits if r.dest_addr == "27829999999"]
    assert sent == texts
    retried = [e for e in store.events(mine[0].id) if e.status is Status.QUEUED]
    assert retried and "no bind is up" in retried[0].detail


async def test_a_recipients_later_messages_wait_for_an_earlier_one_sent_back_to_the_queue(
    smsc: ScriptedSmsc, hub: Any,
) -> None:
    """The SMSC refuses a recipient's first message with a temporary error: the two after
    it are not sent in the same round (they would overtake it), but go back to the queue
    behind it, saying why, and all three reach the SMSC in their order."""
    refusals: list[bytes] = []

    def first_refused(record: SubmitRecord) -> Any:
        if record.short_message == b"first" and not refusals:
            refusals.append(record.short_message)
            return 0x08  # ESME_RSYSERR: transient
        return None

    smsc.on_submit = first_refused
    store, dispatcher, _ = await hub(smsc.port)
    account = make_account(store, credits="1000", price="0.05")
    now = utcnow()
    mine = [new_message(account, recipient="+27829999999", text=text, accepted_at=now)
            for text in ("first", "second", "third")]
    store.accept(mine)
    await dispatcher.start()
    ids = [m.id for m in mine]
    await until(lambda: statuses(store, ids)[Status.SUBMITTED] == 3, timeout=10)
    sent = [(r.short_message, r.status) for r in smsc.submits]
    assert sent == [(b"first", 0x08), (b"first", 0), (b"second", 0), (b"third", 0)]
    held = [e for e in store.events(mine[1].id) if e.status is Status.QUEUED]
    assert len(held) == 1 and "an earlier message to the same recipient" in held[0].detail


async def test_each_answered_message_is_recorded_while_the_rest_of_its_batch_waits(
    smsc: ScriptedSmsc, hub: Any,
) -> None:
    """P7: a crash can send again only what had no answer yet, so what has one is in the
    spool at once, not when the whole claimed batch is through."""
    held: list[SubmitRecord] = []

    def answer_fifteen(record: SubmitRecord) -> Any:
        if len(smsc.submits) <= 15:
            return None
        held.append(record)
        return WITHHOLD

    smsc.on_submit = answer_fifteen
    store, dispatcher, _ = await hub(smsc.port, response_timeout=30)
    ids = queue(store, 20)
    await dispatcher.start()
    await until(lambda: statuses(store, ids)[Status.SUBMITTED] == 15, timeout=10)
    assert statuses(store, ids)[Status.SENDING] == 5  # their batch is still out
    for record in held:
        smsc.release(record)
    await until(lambda: statuses(store, ids)[Status.SUBMITTED] == 20, timeout=10)


async def test_a_response_that_never_comes_closes_the_bind_before_the_message_is_retried(
    smsc: ScriptedSmsc, hub: Any,
) -> None:
    smsc.on_submit = lambda record: WITHHOLD if record.session == 1 else None
    store, dispatcher, _ = await hub(smsc.port, response_timeout=0.3)
    [mid] = queue(store, 1)
    await dispatcher.start()
    await until(lambda: statuses(store, [mid])[Status.SUBMITTED] == 1, timeout=10)
    first, second = smsc.submits[0], smsc.submits[1]
    # The retry went out on a new bind: the first one was closed, so its answer can
    # no longer arrive and be confused with the second submission's.
    assert (first.session, second.session) == (1, 2)
    assert 1 not in smsc.sessions()
    assert any(e.detail.startswith("retry at") for e in store.events(mid))


async def test_throttling_slows_down_and_the_message_still_goes_out(
    smsc: ScriptedSmsc, hub: Any,
) -> None:
    smsc.throttle(3)
    store, dispatcher, carrier = await hub(smsc.port, throttle_pause=0.05)
    [mid] = queue(store, 1)
    await dispatcher.start()
    await until(lambda: statuses(store, [mid])[Status.SUBMITTED] == 1, timeout=10)
    assert [r.status for r in smsc.submits] == [p.ESME_RTHROTTLED] * 3 + [p.ESME_ROK]
    assert carrier.counts["status_ESME_RTHROTTLED"] == 3


async def test_a_refused_bind_leaves_the_carrier_down_and_messages_queued(
    smsc: ScriptedSmsc, hub: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    smsc.bind_status = p.ESME_RINVPASWD
    store, dispatcher, carrier = await hub(smsc.port)
    [mid] = queue(store, 1)
    with caplog.at_level(logging.INFO, logger="adapters.carriers.smpp"):
        await dispatcher.start()
        await until(lambda: smsc.binds >= 3)  # it keeps trying, with backoff
    assert not carrier.available
    assert statuses(store, [mid])[Status.SUBMITTED] == 0
    assert smsc.submits == []
    # Said once, not once per attempt.
    refused = [r for r in caplog.records if "bind refused" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.ERROR
    assert "ESME_RINVPASWD" in refused[0].getMessage()


async def test_a_link_dropped_with_a_full_window_loses_nothing(
    smsc: ScriptedSmsc, hub: Any,
) -> None:
    smsc.drop_at_window = 10
    smsc.on_submit = lambda record: WITHHOLD if record.session == 1 else None
    store, dispatcher, _ = await hub(smsc.port, window=10)
    ids = queue(store, 30)
    await dispatcher.start()
    await until(lambda: statuses(store, ids)[Status.SUBMITTED] == 30, timeout=15)
    answered = Counter(r.dest_addr for r in smsc.submits if r.status == p.ESME_ROK)
    assert sum(answered.values()) == 30


@pytest.mark.parametrize("mode", ["before", "twice"])
async def test_receipts_early_or_twice_finish_each_message_once(
    smsc: ScriptedSmsc, hub: Any, mode: str,
) -> None:
    smsc.receipt_mode, smsc.receipt_seconds = mode, True  # and 12-digit dates
    smsc.id_style = "padded"
    store, dispatcher, _ = await hub(smsc.port)
    ids = queue(store, 10)
    await dispatcher.start()
    await until(lambda: statuses(store, ids)[Status.DELIVERED] == 10, timeout=10)
    for mid in ids:
        assert [e.status for e in store.events(mid)].count(Status.DELIVERED) == 1


async def test_receipt_ids_written_in_another_base_still_match(
    smsc: ScriptedSmsc, hub: Any,
) -> None:
    smsc.receipt_mode, smsc.id_style, smsc.receipt_id_style = "after", "hex", "dec"
    smsc.receipt_tlvs = False
    store, dispatcher, _ = await hub(smsc.port, response_id_format="hex",
                                     receipt_id_format="dec")
    ids = queue(store, 5)
    await dispatcher.start()
    await until(lambda: statuses(store, ids)[Status.DELIVERED] == 5, timeout=10)


async def test_an_unknown_receipt_is_acknowledged_and_changes_nothing(
    smsc: ScriptedSmsc, hub: Any,
) -> None:
    _, dispatcher, carrier = await hub(smsc.port)
    await dispatcher.start()
    await carrier.wait_bound(5)
    answer = await smsc.send_receipt("987654321")
    assert answer.status == p.ESME_ROK


class _Sink:
    """A CarrierSink that cannot commit until told to: the spool away."""

    def __init__(self) -> None:
        self.calls: list[list[DeliveryReport]] = []
        self.down = True

    async def report(self, reports: Sequence[DeliveryReport]) -> None:
        self.calls.append(list(reports))
        if self.down:
            raise TemporaryFailure("spool unavailable: busy")

    async def inbound(self, messages: Sequence[Any]) -> None:
        raise AssertionError("no replies here")


async def test_receipts_read_together_are_committed_together_and_acked_only_after(
    smsc: ScriptedSmsc, caplog: pytest.LogCaptureFixture,
) -> None:
    """Receipts an SMSC sends back to back go to the spool as one write; while it cannot
    take them, each is answered ESME_RX_T_APPN (send it again), none is acknowledged,
    and each failed write is logged once, not once a receipt."""
    sink = _Sink()
    carrier = SmppCarrier("smsc", SmppSettings(port=smsc.port, system_id="hub"))
    await carrier.start(sink)
    try:
        await carrier.wait_bound(5)
        ids = [str(n) for n in range(1001, 1006)]
        with caplog.at_level(logging.ERROR, logger="adapters.carriers.smpp.session"):
            refused = await asyncio.gather(*(smsc.send_receipt(i) for i in ids))
        assert [a.status for a in refused] == [pdu.ESME_RX_T_APPN] * 5
        assert sorted(r.carrier_message_id for c in sink.calls for r in c) == ids
        assert len(sink.calls) < 5  # read in one go, written in one go
        logged = [r for r in caplog.records if "deliver_sm not taken" in r.getMessage()]
        assert len(logged) == len(sink.calls)
        sink.down, before = False, len(sink.calls)
        taken = await asyncio.gather(*(smsc.send_receipt(i) for i in ids))
        assert [a.status for a in taken] == [p.ESME_ROK] * 5
        assert sorted(r.carrier_message_id for c in sink.calls[before:] for r in c) == ids
        assert carrier.counts["receipts"] == 5
    finally:
        await carrier.stop()


def inbound_count(store: SqlSpool) -> int:
    with store.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(inbound)).scalar_one())


async def test_a_reply_is_acknowledged_only_after_it_is_committed(
    smsc: ScriptedSmsc, hub: Any,
) -> None:
    store, dispatcher, carrier = await hub(smsc.port)
    await dispatcher.start()
    await carrier.wait_bound(5)
    answer = await smsc.push_mo("27821234567", "31337", b"YES please")
    assert answer.status == p.ESME_ROK
    assert inbound_count(store) == 1  # committed before the ack came back


async def test_a_three_part_reply_is_reassembled_into_one_inbound_message(
    smsc: ScriptedSmsc, hub: Any,
) -> None:
    store, dispatcher, carrier = await hub(smsc.port)
    await dispatcher.start()
    await carrier.wait_bound(5)
    parts = [b"first part, ", b"second part, ", b"third part"]
    answers = await smsc.push_mo_parts("27821234567", "31337", parts, order=[2, 0, 1])
    assert [a.status for a in answers] == [p.ESME_ROK] * 3
    with store.db.engine.connect() as conn:
        texts = [row.text for row in conn.execute(select(inbound.c.text))]
        left = conn.execute(select(func.count()).select_from(inbound_parts)).scalar_one()
    assert texts == ["first part, second part, third part"]
    assert left == 0  # the parts are forgotten once the whole reply is stored


async def test_the_parts_of_a_long_reply_survive_a_restart_between_them(
    smsc: ScriptedSmsc, hub: Any,
) -> None:
    store, dispatcher, carrier = await hub(smsc.port)
    await dispatcher.start()
    await carrier.wait_bound(5)
    first = await smsc.push_mo_parts("27821234567", "31337", [b"before the crash, "],
                                     ref=9, total=2)
    assert [a.status for a in first] == [p.ESME_ROK]  # acknowledged: it is committed
    await dispatcher.stop()  # the hub goes away between the parts
    _, again, carrier = await hub(smsc.port)  # a new hub on the same spool
    await again.start()
    await carrier.wait_bound(5)
    second = await smsc.push_mo_parts("27821234567", "31337", [b"after it"], ref=9,
                                      total=2, first_seq=2)
    assert [a.status for a in second] == [p.ESME_ROK]
    with store.db.engine.connect() as conn:
        texts = [row.text for row in conn.execute(select(inbound.c.text))]
    assert texts == ["before the crash, after it"]


async def test_query_sm_answers_for_a_message_overdue_for_its_receipt(
    smsc: ScriptedSmsc, hub: Any,
) -> None:
    smsc.query_state = p.MESSAGE_STATES["UNDELIV"]
    store, dispatcher, carrier = await hub(smsc.port, query_before_timeout=True)
    [mid] = queue(store, 1)
    await dispatcher.start()
    await until(lambda: statuses(store, [mid])[Status.SUBMITTED] == 1, timeout=10)
    message = store.get_message(mid)
    assert message is not None
    [report] = await carrier.query([message])
    assert (report.carrier_message_id, report.status) == (message.carrier_message_id,
                                                          Status.UNDELIVERED)
    assert smsc.queries == [smsc.submits[0].message_id]


async def test_binds_over_tls_when_the_smsc_requires_it(
    hub: Any, tmp_path: Any,
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_side)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    smsc = await ScriptedSmsc(tls=server_side, receipt_mode="after").start()
    try:
        store, dispatcher, _ = await hub(smsc.port, tls=True, tls_ca_file=str(ca_file),
                                         host="127.0.0.1")
        ids = queue(store, 3)
        await dispatcher.start()
        await until(lambda: statuses(store, ids)[Status.DELIVERED] == 3, timeout=10)
    finally:
        await smsc.stop()


async def test_the_rate_limit_spaces_submissions_over_all_binds(
    smsc: ScriptedSmsc, hub: Any,
) -> None:
    store, dispatcher, _ = await hub(smsc.port, rate=20.0, binds=2)
    ids = queue(store, 8)
    await dispatcher.start()
    await until(lambda: statuses(store, ids)[Status.SUBMITTED] == 8, timeout=10)
    times = sorted(r.time for r in smsc.submits)
    # 20 a second over both binds: 8 submissions span at least 7 gaps of 50 ms (each
    # arrival may jitter, the span cannot shrink); unlimited, they come within a few ms.
    assert times[-1] - times[0] >= 0.9 * 7 / 20
    assert len({r.session for r in smsc.submits}) == 2  # spread over both binds


async def test_a_transmitter_and_receiver_pair_submits_on_one_and_takes_receipts_on_the_other(
    smsc: ScriptedSmsc, hub: Any,
) -> None:
    smsc.receipt_mode = "after"
    store, dispatcher, _ = await hub(smsc.port, bind_mode="transmitter+receiver",
                                     system_type="VMA", address_range="^27")
    ids = queue(store, 4)
    await dispatcher.start()
    await until(lambda: statuses(store, ids)[Status.DELIVERED] == 4, timeout=10)
    # Each receipt is answered once committed: the answers follow the commits.
    await until(lambda: len(smsc.deliveries) == 4)
    assert sorted(b.kind for b in smsc.bind_log) == ["RX", "TX"]
    assert {(b.system_id, b.password, b.system_type, b.address_range, b.interface_version)
            for b in smsc.bind_log} == {("hub", "secret", "VMA", "^27", 0x34)}
    sessions = {b.kind: b.session for b in smsc.bind_log}
    assert {r.session for r in smsc.submits} == {sessions["TX"]}
    assert {d.session for d in smsc.deliveries} == {sessions["RX"]}


async def test_a_stop_that_comes_with_a_bind_answer_ends_the_reconnecting(
    smsc: ScriptedSmsc, hub: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stop cancels the bind loop in the same turn of the event loop in which a bind
    answer arrives. Python 3.11's asyncio.wait_for then returned the answer and dropped
    the cancellation: the loop went on binding (refused, again and again) and the stop
    waited for it for ever (a test that failed over to another carrier hung this way)."""
    smsc.bind_status = p.ESME_RBINDFAIL  # every bind refused: the carrier keeps trying
    answers = {command | pdu.RESPONSE for command in
               (pdu.BIND_TRANSCEIVER, pdu.BIND_TRANSMITTER, pdu.BIND_RECEIVER)}
    stopping: list[asyncio.Future[None]] = []
    dispatch = Session._dispatch

    def answered(session: Session, head: pdu.Header, raw: bytes) -> None:
        dispatch(session, head, raw)  # the bind's answer is in: its waiter is woken
        if head.command_id in answers and not stopping:
            stopping.append(asyncio.ensure_future(carrier.stop()))  # before it resumes

    monkeypatch.setattr(Session, "_dispatch", answered)
    _, dispatcher, carrier = await hub(smsc.port)
    await dispatcher.start(claim=False)
    await until(lambda: bool(stopping))
    async with asyncio.timeout(5):
        await stopping[0]
    binds = len(smsc.bind_log)
    await asyncio.sleep(0.3)  # reconnect_max is 0.1 s: a live loop would bind again
    assert len(smsc.bind_log) == binds and not carrier.available


async def test_when_the_smsc_goes_away_traffic_fails_over_to_the_next_carrier(
    smsc: ScriptedSmsc, spool_url: str,
) -> None:
    carrier = SmppCarrier("smsc", SmppSettings(port=smsc.port, system_id="hub",
                                               reconnect_min=0.05, reconnect_max=0.1))
    backup = SimulatorCarrier(SimulatorRules(report_delay=0.01))
    store = open_spool(spool_url)
    await asyncio.to_thread(store.upgrade)
    runner = SpoolThreads(store)
    dispatcher = Dispatcher(
        runner, Router({"smsc": carrier, "simulator": backup}, "smsc", ("simulator",)),
        RetryPolicy(max_attempts=5, base=0.05, cap=0.1),
        DispatchSettings(batch_size=100, poll_interval=0.02), "n1", Metrics())
    try:
        await dispatcher.start()
        # The carrier binds in the background: traffic queued before the bind is up
        # already fails over, and the first half is about the SMSC taking it.
        await until(lambda: carrier.available)
        before = queue(store, 3)
        dispatcher.wake()
        await until(lambda: statuses(store, before)[Status.SUBMITTED] == 3)
        smsc.bind_status = p.ESME_RBINDFAIL  # it will not take us back
        await smsc.drop()
        await until(lambda: not carrier.available)
        after = queue(store, 3)
        dispatcher.wake()
        await until(lambda: statuses(store, after)[Status.DELIVERED] == 3)
        carriers = {store.get_message(i).carrier for i in after}  # type: ignore[union-attr]
        assert carriers == {"simulator"}
    finally:
        await dispatcher.stop()
        runner.shutdown()
        store.close()

"""ScriptedSmsc: a small asyncio SMPP 3.4 SMSC on 127.0.0.1 port 0 whose behaviour a test
scripts, for the edge cases a real SMSC (or smpp34.Server) will not produce on demand:
bind refusal, throttling bursts, withheld or late responses, early/duplicate/unknown
receipts, ids in another base, MO that must be acked only after commit, redelivery on
rebind, abrupt drops and malformed PDUs. It records everything it receives.

    smsc = ScriptedSmsc()
    await smsc.start()                      # then connect the ESME to smsc.port
    smsc.receipt_mode = "after"             # knobs may change at any moment
    await smsc.wait_for(lambda: smsc.submits)
    result = await smsc.push_mo("27821234567", "31337", b"hi")
    await smsc.stop()
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tests.polling import until
from tests.smsc import pdu as p
from tests.smsc.pdu import Body, MalformedPdu, Pdu, ShortMessage


@dataclass(frozen=True)
class Answer:
    """What to do with one submit_sm: answer `status` after `delay` seconds, or never."""

    status: int = p.ESME_ROK
    delay: float = 0.0
    withhold: bool = False


OK = Answer()
WITHHOLD = Answer(withhold=True)


@dataclass
class BindRecord:
    session: int
    kind: str  # "TX", "RX" or "TRX"
    system_id: str
    password: str
    system_type: str
    interface_version: int
    addr_ton: int
    addr_npi: int
    address_range: str
    status: int = p.ESME_ROK


@dataclass
class SubmitRecord(ShortMessage):
    """A decoded submit_sm (every ShortMessage field) plus what the SMSC did with it."""

    session: int = 0
    sequence: int = 0
    time: float = 0.0  # time.monotonic() at arrival
    status: int | None = None  # command_status answered; None while unanswered
    message_id: str | None = None  # as sent in submit_sm_resp
    number: int | None = None  # the id before formatting


@dataclass(frozen=True)
class Delivery:
    """The client's answer to one deliver_sm. status None: the connection went first."""

    kind: str  # "receipt" or "mo"
    status: int | None
    elapsed: float  # seconds from writing the deliver_sm to its response
    session: int
    attempt: int  # 1 for the first delivery, 2 for the first redelivery...
    short_message: bytes


@dataclass
class _Held:
    """A deliver_sm the SMSC owes until the client acknowledges it."""

    kind: str
    sm: ShortMessage
    done: asyncio.Future[Delivery]
    origin: int | None = None  # session that should preferably get it
    attempts: int = 0
    sent_at: float = 0.0


class _Session:
    def __init__(self, sid: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.id, self.reader, self.writer = sid, reader, writer
        self.kind: str | None = None
        self.closed = False
        self.sequences = itertools.count(1)
        self.outstanding = 0  # submit_sm not yet answered
        self.inflight: dict[int, _Held] = {}  # deliver_sm by sequence
        self.waiting: dict[int, asyncio.Future[int | None]] = {}  # other SMSC requests

    @property
    def receives(self) -> bool:
        return self.kind in ("RX", "TRX") and not self.closed

    def send(self, command_id: int, body: bytes = b"", status: int = 0,
             seq: int | None = None) -> int:
        seq = next(self.sequences) if seq is None else seq
        self.write(Pdu(command_id, status, seq, body).encode())
        return seq

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.writer.write(data)


class ScriptedSmsc:
    """An SMPP 3.4 SMSC driven by the attributes below (set before or during a test)."""

    bind_status: int | Callable[[BindRecord], int] = p.ESME_ROK
    """Answer binds with this command_status (or what the callable returns); non-zero
    refuses the bind with an empty bind_resp body."""
    on_submit: Callable[[SubmitRecord], Answer | int | None] | None = None
    """Decides each submit_sm: None/0 accept, an int rejects with that status, an Answer
    delays (Answer(delay=2.0)) or withholds (WITHHOLD) the submit_sm_resp."""
    throttle_left = 0
    """The next this-many submit_sm are answered with throttle_status (see throttle())."""
    throttle_status = p.ESME_RTHROTTLED
    id_style = "dec"
    """How submit_sm_resp writes ids: dec, hex, HEX, padded or padded_hex."""
    receipt_id_style: str | None = None
    """How receipts write the id (text and TLV); None: as id_style. Kannel's msg-id-type."""
    receipt_mode = "none"
    """Automatic receipt for each accepted submit_sm asking registered_delivery:
    none, after (the submit_sm_resp), before it ("early"), or twice."""
    receipt_delay = 0.0
    """Seconds between the submit_sm_resp and an automatic after/twice receipt."""
    receipt_stat = "DELIVRD"
    receipt_err = "000"
    receipt_seconds = False
    """12-digit dates (YYMMDDhhmmss) in receipt text instead of 10."""
    receipt_tlvs = True
    """Add receipted_message_id (0x001E) and message_state (0x0427) to receipts."""
    redeliver_unacked = False
    """Keep deliver_sm that were not acked with status 0 (connection lost or error
    status) and deliver them again when a receiver binds, like a real SMSC."""
    drop_at_window: int | None = None
    """Drop the connection abruptly when a session has this many unanswered submit_sm."""
    query_state = p.MESSAGE_STATES["DELIVRD"]
    """message_state in query_sm_resp."""
    query_status = p.ESME_ROK
    """command_status of query_sm_resp (e.g. ESME_RQUERYFAIL)."""

    def __init__(self, *, system_id: str = "scripted", first_id: int = 1000,
                 tls: ssl.SSLContext | None = None,
                 **knobs: Any) -> None:
        for name, value in knobs.items():
            if not hasattr(type(self), name):
                raise TypeError(f"unknown knob {name}")
            setattr(self, name, value)
        self.system_id = system_id
        self._tls = tls  # serve SMPP over TLS with this context
        self.port = 0
        self.binds = self.enquire_links = self.unbinds = 0
        self.max_outstanding = 0  # most unanswered submit_sm one session ever had
        self.bind_log: list[BindRecord] = []
        self.submits: list[SubmitRecord] = []
        self.deliveries: list[Delivery] = []  # every deliver_sm_resp received
        self.queries: list[str] = []  # message ids asked by query_sm
        self.received: list[tuple[int, int, int, int]] = []  # session, id, status, seq
        self.errors: list[Exception] = []  # raised while serving; stop() re-raises
        self._numbers = itertools.count(first_id)
        self._session_ids = itertools.count(1)
        self._sessions: dict[int, _Session] = {}
        self._backlog: list[_Held] = []  # owed deliver_sm waiting for a receiver
        self._timers: set[asyncio.TimerHandle] = set()  # delayed answers and receipts
        self._handlers: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> ScriptedSmsc:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions.values()):
            session.writer.transport.abort()
        for timer in self._timers:
            timer.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        for held in self._backlog:
            held.done.cancel()
        if self.errors:
            raise self.errors[0]

    # -- what a test asks ----------------------------------------------------------------
    def sessions(self, kind: str | None = None) -> list[int]:
        """Ids of the bound sessions (of one bind kind)."""
        return [s.id for s in self._sessions.values()
                if s.kind is not None and kind in (None, s.kind)]

    def outstanding(self, session: int | None = None) -> int:
        """Unanswered submit_sm on one open session, or on all of them."""
        return sum(s.outstanding for s in self._targets(session))

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> None:
        await until(lambda: bool(predicate()), timeout)

    # -- what a test makes the SMSC do ---------------------------------------------------
    def throttle(self, count: int, status: int = p.ESME_RTHROTTLED) -> None:
        """Answer the next `count` submit_sm with `status`, then accept again."""
        self.throttle_left, self.throttle_status = count, status

    def release(self, record: SubmitRecord, status: int = p.ESME_ROK) -> None:
        """Answer a withheld submit_sm now (if its session is still open)."""
        session = self._sessions.get(record.session)
        if session is not None:
            self._respond(session, record, status)

    async def send_receipt(self, target: SubmitRecord | str, *, timeout: float = 5.0,
                           **options: Any) -> Delivery:
        """Deliver a receipt for a submit record, or for any id string (an unknown id),
        and await the client's answer. Options: stat, err, seconds, id_style, tlvs."""
        return await self._deliver(self._receipt(target, **options), timeout)

    async def push_mo(self, source: str, dest: str, short_message: bytes, *,
                      timeout: float = 5.0, **fields: Any) -> Delivery:
        """Deliver an MO deliver_sm (ShortMessage fields: data_coding, esm_class, tlvs...)
        and await the client's deliver_sm_resp (its status and how long it took)."""
        sm = ShortMessage(**{"source_ton": 1, "source_npi": 1, "dest_ton": 0,
                             "dest_npi": 1, **fields},
                          source_addr=source, dest_addr=dest, short_message=short_message)
        loop = asyncio.get_running_loop()
        return await self._deliver(_Held("mo", sm, loop.create_future()), timeout)

    async def push_mo_parts(self, source: str, dest: str, parts: list[bytes], *,
                            ref: int = 42, ref16: bool = False,
                            order: Iterable[int] | None = None, total: int | None = None,
                            first_seq: int = 1, **fields: Any) -> list[Delivery]:
        """Deliver a UDH-concatenated MO (esm_class 0x40), one part after another's ack,
        in `order` (0-based part indexes) if given; `total` and `first_seq` send only some
        parts of a longer set (the rest later, say after a restart)."""
        count = total or len(parts)
        return [await self.push_mo(
            source, dest,
            p.udh_concat(ref, count, first_seq + i, ref16=ref16) + parts[i],
            esm_class=p.ESM_UDHI, **fields) for i in (order or range(len(parts)))]

    async def drop(self, session: int | None = None) -> None:
        """Close one session (or all) abruptly, without unbind, and wait until it is gone."""
        targets = list(self._targets(session))
        for s in targets:
            self._abort(s)
        await self.wait_for(lambda: not any(s.id in self._sessions for s in targets))

    async def unbind(self, session: int | None = None, timeout: float = 5.0) -> int | None:
        """SMSC-initiated unbind; the status of the client's unbind_resp (None if none
        came), then the SMSC closes the connection."""
        s = next(self._targets(session))
        status = await self._request(s, p.UNBIND, timeout)
        s.writer.close()
        return status

    async def enquire_link(self, session: int | None = None,
                           timeout: float = 5.0) -> int | None:
        """SMSC-initiated enquire_link; the status of the client's answer."""
        return await self._request(next(self._targets(session)), p.ENQUIRE_LINK, timeout)

    def send_malformed(self, kind: str, session: int | None = None) -> int:
        """Write a broken PDU: short_length (command_length 10), huge_length, truncated
        (a deliver_sm body cut inside its fields) or unknown_command. Returns its
        sequence number, to find the client's generic_nack in `received`."""
        s = next(self._targets(session))
        seq = next(s.sequences)
        raw = {"short_length": p.HEADER.pack(10, p.DELIVER_SM, 0, seq) + b"\0\0",
               "huge_length": p.HEADER.pack(0x7FFFFFFF, p.DELIVER_SM, 0, seq),
               "truncated": Pdu(p.DELIVER_SM, 0, seq, b"\0\x01\x01278212").encode(),
               "unknown_command": Pdu(0x0000_0099, 0, seq).encode()}[kind]
        s.write(raw)
        return seq

    # -- connection loop -----------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        s = _Session(next(self._session_ids), reader, writer)
        self._sessions[s.id] = s
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while not s.closed:
                try:
                    pdu = await p.read_pdu(reader)
                except MalformedPdu:
                    s.send(p.GENERIC_NACK, status=p.ESME_RINVCMDLEN, seq=0)
                    break
                self.received.append((s.id, pdu.command_id, pdu.status, pdu.sequence))
                try:
                    self._handle(s, pdu)
                except MalformedPdu:
                    s.send(p.GENERIC_NACK, status=p.ESME_RINVCMDLEN, seq=pdu.sequence)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception as exc:  # a bug in a knob's callable: stop() raises it
            self.errors.append(exc)
        finally:
            self._closed(s)
            writer.close()
            self._handlers.discard(task)

    def _handle(self, s: _Session, pdu: Pdu) -> None:
        if pdu.command_id & p.RESP:
            self._on_response(s, pdu)
        elif pdu.command_id in p.BINDS:
            self._on_bind(s, pdu)
        elif pdu.command_id == p.ENQUIRE_LINK:
            self.enquire_links += 1
            s.send(p.ENQUIRE_LINK | p.RESP, seq=pdu.sequence)
        elif pdu.command_id == p.UNBIND:
            self.unbinds += 1
            s.send(p.UNBIND | p.RESP, seq=pdu.sequence)
            s.writer.close()
        elif pdu.command_id in (p.SUBMIT_SM, p.QUERY_SM) and s.kind not in ("TX", "TRX"):
            s.send(pdu.command_id | p.RESP, status=p.ESME_RINVBNDSTS, seq=pdu.sequence)
        elif pdu.command_id == p.SUBMIT_SM:
            self._on_submit(s, pdu)
        elif pdu.command_id == p.QUERY_SM:
            self._on_query(s, pdu)
        else:
            s.send(p.GENERIC_NACK, status=p.ESME_RINVCMDID, seq=pdu.sequence)

    def _on_bind(self, s: _Session, pdu: Pdu) -> None:
        b = Body(pdu.body)
        rec = BindRecord(s.id, p.BINDS[pdu.command_id], b.cstr(), b.cstr(), b.cstr(), b.u8(),
                         b.u8(), b.u8(), b.cstr())
        self.binds += 1
        rule = self.bind_status
        rec.status = rule(rec) if callable(rule) else rule
        if s.kind is not None and not rec.status:
            rec.status = 0x05  # ESME_RALYBND
        self.bind_log.append(rec)
        if rec.status:
            s.send(pdu.command_id | p.RESP, status=rec.status, seq=pdu.sequence)
            return
        s.kind = rec.kind
        s.send(pdu.command_id | p.RESP, p.cstr(self.system_id) + p.tlv(0x0210, b"\x34"),
               seq=pdu.sequence)
        if s.receives:
            backlog, self._backlog = self._backlog, []
            for held in backlog:
                self._queue(held)

    def _on_submit(self, s: _Session, pdu: Pdu) -> None:
        sm = ShortMessage.decode(pdu.body)
        rec = SubmitRecord(**vars(sm), session=s.id, sequence=pdu.sequence,
                           time=time.monotonic())
        self.submits.append(rec)
        s.outstanding += 1
        self.max_outstanding = max(self.max_outstanding, s.outstanding)
        if self.drop_at_window is not None and s.outstanding >= self.drop_at_window:
            self._abort(s)
            return
        answer = self._decide(rec)
        if answer.withhold:
            return
        if answer.delay:
            self._later(answer.delay, self._respond, s, rec, answer.status)
        else:
            self._respond(s, rec, answer.status)

    def _decide(self, rec: SubmitRecord) -> Answer:
        if self.throttle_left > 0:
            self.throttle_left -= 1
            return Answer(self.throttle_status)
        verdict = self.on_submit(rec) if self.on_submit is not None else None
        return verdict if isinstance(verdict, Answer) else Answer(verdict or p.ESME_ROK)

    def _respond(self, s: _Session, rec: SubmitRecord, status: int) -> None:
        if rec.status is not None or s.closed:
            return
        s.outstanding -= 1
        rec.status = status
        wants = (status == p.ESME_ROK and rec.registered_delivery & 0x03 != 0
                 and self.receipt_mode != "none")
        body = b""
        if status == p.ESME_ROK:
            rec.number = next(self._numbers)
            rec.message_id = p.format_id(rec.number, self.id_style)
            body = p.cstr(rec.message_id)
        if wants and self.receipt_mode == "before":
            self._queue(self._receipt(rec))
        s.send(p.SUBMIT_SM | p.RESP, body, status, rec.sequence)
        if wants and self.receipt_mode in ("after", "twice"):
            for _ in range(2 if self.receipt_mode == "twice" else 1):
                self._later(self.receipt_delay, self._queue, self._receipt(rec))

    def _on_query(self, s: _Session, pdu: Pdu) -> None:
        message_id = Body(pdu.body).cstr()
        self.queries.append(message_id)
        body = b"" if self.query_status else (
            p.cstr(message_id) + p.cstr("") + bytes([self.query_state, 0]))
        s.send(p.QUERY_SM | p.RESP, body, self.query_status, pdu.sequence)

    def _on_response(self, s: _Session, pdu: Pdu) -> None:
        held = s.inflight.pop(pdu.sequence, None)
        if held is None:
            waiter = s.waiting.pop(pdu.sequence, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(pdu.status)
            return
        delivery = Delivery(held.kind, pdu.status, time.monotonic() - held.sent_at, s.id,
                            held.attempts, held.sm.short_message)
        self.deliveries.append(delivery)
        if not held.done.done():
            held.done.set_result(delivery)
        if pdu.status and self.redeliver_unacked:
            self._backlog.append(held)

    # -- deliver_sm bookkeeping ----------------------------------------------------------
    def _receipt(self, target: SubmitRecord | str, *, stat: str | None = None,
                 err: str | None = None, seconds: bool | None = None,
                 id_style: str | None = None, tlvs: bool | None = None) -> _Held:
        stat = stat or self.receipt_stat
        done = datetime.now()
        submitted, text, origin, src, dst = done, b"", None, "", ""
        if isinstance(target, SubmitRecord):
            assert target.number is not None, "receipt for a submit_sm not accepted"
            style = id_style or self.receipt_id_style or self.id_style
            message_id = p.format_id(target.number, style)
            submitted = done - timedelta(seconds=time.monotonic() - target.time)
            text = target.short_message if target.data_coding in (0, 1, 3) else b""
            origin, src, dst = target.session, target.dest_addr, target.source_addr
        else:
            message_id = target
        sm = ShortMessage(
            source_addr=src, dest_addr=dst, esm_class=p.ESM_RECEIPT,
            short_message=p.receipt_text(
                message_id, stat=stat, err=err or self.receipt_err, submitted=submitted,
                done=done, text=text,
                seconds=self.receipt_seconds if seconds is None else seconds))
        if self.receipt_tlvs if tlvs is None else tlvs:
            sm.tlvs = {p.TLV_RECEIPTED_MESSAGE_ID: p.cstr(message_id),
                       p.TLV_MESSAGE_STATE: bytes([p.MESSAGE_STATES.get(stat, 7)])}
        return _Held("receipt", sm, asyncio.get_running_loop().create_future(), origin)

    async def _deliver(self, held: _Held, timeout: float) -> Delivery:
        self._queue(held)
        return await asyncio.wait_for(held.done, timeout)

    def _queue(self, held: _Held) -> None:
        """Write a deliver_sm to a receiving session (the origin's if it receives), or
        keep it until one binds."""
        receivers = [s for s in self._sessions.values() if s.receives]
        if not receivers:
            self._backlog.append(held)
            return
        s = next((r for r in receivers if r.id == held.origin), receivers[0])
        held.attempts += 1
        held.sent_at = time.monotonic()
        s.inflight[s.send(p.DELIVER_SM, held.sm.encode())] = held

    def _closed(self, s: _Session) -> None:
        s.closed = True
        self._sessions.pop(s.id, None)
        for held in s.inflight.values():
            if self.redeliver_unacked:
                self._backlog.append(held)
            elif not held.done.done():
                held.done.set_result(Delivery(held.kind, None, 0.0, s.id, held.attempts,
                                              held.sm.short_message))
        for waiter in s.waiting.values():
            if not waiter.done():
                waiter.set_result(None)

    # -- small helpers -------------------------------------------------------------------
    def _targets(self, session: int | None) -> Iterator[_Session]:
        return (s for s in list(self._sessions.values())
                if session in (None, s.id) and not s.closed)

    def _abort(self, s: _Session) -> None:
        s.closed = True
        s.writer.transport.abort()

    async def _request(self, s: _Session, command_id: int, timeout: float) -> int | None:
        waiter: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        s.waiting[s.send(command_id)] = waiter
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return None

    def _later(self, delay: float, action: Callable[..., object], *args: Any) -> None:
        if delay:
            self._timers.add(asyncio.get_running_loop().call_later(delay, action, *args))
        else:
            action(*args)

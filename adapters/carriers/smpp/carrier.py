"""The SMPP carrier: keeps its binds up (reconnecting with backoff and jitter), submits
each message's parts over the least-loaded bind within the window and the rate limit,
maps every command status to a verdict, and turns deliver_sm into receipts and
inbound messages that are acknowledged only once the hub has committed them."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import math
import random
import ssl
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.carriers.smpp import encoding, pdu, receipts, status
from adapters.carriers.smpp.config import SmppSettings
from adapters.carriers.smpp.session import (
    DeliverOutcome,
    ResponseTimeout,
    Session,
    SessionClosed,
    SessionSettings,
)
from adapters.carriers.smpp.slots import RateLimit, SlotBudget
from hub import cpa, logs
from hub.clock import Clock, utcnow
from hub.dispatcher import held_behind
from hub.errors import TemporaryFailure
from hub.faultlog import FaultLog
from hub.model import (
    DeliveryReport,
    ErrorInfo,
    InboundMessage,
    InboundPart,
    Message,
    SubmitResult,
    Verdict,
)
from hub.ports import CarrierSink, Coordination, InboundPartStore
from hub.spoolcall import SpoolThreads
from hub.tasks import cancel_all
from hub.turns import PerTurn

log = logging.getLogger(__name__)

# How long the parts of a long reply wait for the rest of their set.
PART_MAX_AGE = timedelta(hours=1)
# How often one part is tried again on the same carrier while the SMSC says "throttled",
# before the message goes back to the spool for a later attempt.
THROTTLE_TRIES = 5


class SmppCarrier:
    """A carrier reached over SMPP 3.4 through `binds` sessions to one SMSC."""

    def __init__(self, name: str, settings: SmppSettings, clock: Clock = utcnow,
                 parts: SpoolThreads[InboundPartStore] | None = None,
                 coordination: Coordination | None = None) -> None:
        self.name = name
        self.settings = settings
        self._clock = clock
        self._session_settings = SessionSettings(
            window=settings.window, response_timeout=settings.response_timeout,
            enquire_link_interval=settings.enquire_link_interval,
            bind_timeout=settings.bind_timeout,
        )
        self._sink: CarrierSink | None = None
        self._sessions: list[Session] = []
        self._slots: list[asyncio.Task[None]] = []
        # Shared with the other nodes on a PostgreSQL spool: binds and rate (slots.py).
        self._budget = SlotBudget(name, settings.binds, settings.rate, coordination,
                                  f"{settings.host}/{settings.port}/{settings.system_id}")
        self._rate: RateLimit = self._budget.limit
        self._throttled_until = 0.0
        self._refs = itertools.count(random.randrange(256))  # noqa: S311 (not a secret)
        self._parts = parts
        # One line when a bind starts failing (or fails differently), then quiet: an SMSC
        # that is down for an hour must not fill the log with a line per attempt.
        self._bind_faults = [FaultLog(log, f"{name}: bind {slot}", "smpp-bind")
                             for slot in range(settings.binds)]
        self._bound_event = asyncio.Event()
        self.counts: Counter[str] = Counter()
        # Receipts read in one turn of the event loop go to the sink as one list, a turn
        # later than they were read: the answers to submit_sm that came in the same read
        # reach the dispatcher's settler a turn later than their receipts would (their
        # coroutines resume first), and only in one settle is each receipt folded into
        # its submission's record (not held for it, and applied in a write of its own).
        self._receipts: PerTurn[DeliveryReport] = PerTurn(self._report, turns=2)

    # --- lifecycle -------------------------------------------------------------------

    async def start(self, sink: CarrierSink) -> None:
        """Bind in the background: a carrier that is down must not stop the hub."""
        self._sink = sink
        self._budget.start()
        for slot in range(self.settings.binds):
            self._slots.append(asyncio.create_task(self._keep_bound(slot)))
        if self._parts is not None:
            self._slots.append(asyncio.create_task(self._purge_parts()))

    async def stop(self) -> None:
        await cancel_all(self._slots)
        self._slots.clear()
        await asyncio.gather(*(s.unbind() for s in list(self._sessions)),
                             return_exceptions=True)
        self._sessions.clear()
        await self._receipts.wait()  # the receipts read: committed, or refused
        await self._budget.stop()  # after the unbinds: the slots are free for others now
        self._sink = None

    @property
    def available(self) -> bool:
        """At least one bind can take submissions now (routing fails over otherwise)."""
        return any(s.can_submit for s in self._sessions)

    @property
    def standby(self) -> bool:
        """Shared with other nodes, and this one holds none of its bind slots: the
        others send for it (the dispatcher claims nothing it could only send here)."""
        return self._budget.shared and not self._budget.held

    async def wait_bound(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            await self._bound_event.wait()

    def stats(self) -> dict[str, object]:
        """What `smshub carriers` and /metrics show of this carrier."""
        live = [s for s in self._sessions if s.bound]
        return {
            "type": "smpp", "binds_configured": self.settings.binds,
            "binds_up": len(live), "window": self.settings.window,
            "outstanding": sum(s.outstanding for s in live),
            "rate_limit": self.settings.rate, "bind_slots_held": len(self._held_slots()),
            **dict(self.counts),
        }

    def _held_slots(self) -> frozenset[int]:
        return self._budget.held if self._budget.shared else frozenset(
            range(self.settings.binds))

    async def _keep_bound(self, slot: int) -> None:
        delay = self.settings.reconnect_min
        while True:
            # Shared with other nodes: bind only while this node holds the slot.
            end = await self._budget.take(slot)
            try:
                sessions = await self._bind_slot(slot)
            except Exception:  # a bug must not end the slot: it would never bind again
                log.exception("%s: bind %d failed unexpectedly", self.name, slot,
                              extra={"action": "smpp-bind"})
                sessions = []
            if sessions:
                delay = self.settings.reconnect_min
                await self._serve_until_lost(slot, sessions, end)
            if end is not None and end.is_set():
                await self._budget.give_back(slot)
                continue  # given up for another node: no failure, no backoff
            # Jitter: binds of several nodes dropped together must not return together.
            await asyncio.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311
            delay = min(delay * 2, self.settings.reconnect_max)

    async def _serve_until_lost(self, slot: int, sessions: list[Session],
                                end: asyncio.Event | None = None) -> None:
        self._sessions.extend(sessions)
        self._bound_event.set()
        waits: set[asyncio.Future[Any]] = {s.closed for s in sessions}
        ending = None if end is None else asyncio.ensure_future(end.wait())
        if ending is not None:
            waits.add(ending)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if ending is not None and not ending.done():
                ending.cancel()
        if ending is not None and ending.done() and not ending.cancelled():
            log.info("%s: bind %d ends: its slot goes to another node", self.name, slot,
                     extra={"action": "smpp-bind"})
            await self._drain(sessions)
            # Unbind first: the SMSC counts this bind until it has gone.
            await asyncio.gather(*(s.unbind() for s in sessions), return_exceptions=True)
        else:
            reason = next(s.close_reason for s in sessions if s.closed.done())
            log.warning("%s: bind %d lost (%s); reconnecting", self.name, slot, reason,
                        extra={"action": "smpp-bind"})
        for s in sessions:
            s.close("its pair ended")
            await s.wait_closed()
            self._sessions.remove(s)
        if not any(s.bound for s in self._sessions):
            self._bound_event.clear()
        self.counts["reconnects"] += 1

    async def _drain(self, sessions: list[Session]) -> None:
        """Submit nothing more on these sessions and wait (up to the response timeout)
        for the answers still owed: an unbind would lose them, and their messages would
        be sent again."""
        for s in sessions:
            s.can_submit = False
        deadline = time.monotonic() + self.settings.response_timeout
        while (any(s.outstanding for s in sessions if not s.closed.done())
               and time.monotonic() < deadline):
            await asyncio.sleep(0.02)

    async def _purge_parts(self) -> None:
        """Parts of long replies whose set never completed are dropped after an hour (an
        SMSC sends a set within seconds; an old stray part could mix with a new set that
        reuses its reference)."""
        parts = self._parts
        assert parts is not None
        while True:
            # Several nodes: one purges (the holder of its job lock), the others skip.
            with contextlib.suppress(TemporaryFailure):
                leads = await self._budget.leads("inbound-parts-purge")
                dropped = await parts.call(parts.spool.purge_inbound_parts,
                                           self._clock() - PART_MAX_AGE) if leads else 0
                if dropped:
                    self.counts["inbound_parts_dropped"] += dropped
                    log.warning("%s: dropped %d parts of long replies that never completed",
                                self.name, dropped, extra={"action": "smpp-inbound"})
            await asyncio.sleep(3600)

    async def _bind_slot(self, slot: int) -> list[Session]:
        mode = self.settings.bind_mode
        commands = {"transceiver": [pdu.BIND_TRANSCEIVER],
                    "transmitter": [pdu.BIND_TRANSMITTER],
                    "transmitter+receiver": [pdu.BIND_TRANSMITTER, pdu.BIND_RECEIVER]}[mode]
        sessions: list[Session] = []
        for command in commands:
            session = await self._open(slot, command)
            if session is None:
                for s in sessions:
                    await s.unbind()
                return []
            sessions.append(session)
        log.info("%s: bind %d up (%s)", self.name, slot, mode, extra={"action": "smpp-bind"})
        return sessions

    async def _open(self, slot: int, command: int) -> Session | None:
        s = self.settings
        loop = asyncio.get_running_loop()
        session: Session | None = None
        try:
            async with asyncio.timeout(s.bind_timeout):
                _, session = await loop.create_connection(
                    lambda: Session(f"{self.name}/{slot}", self._session_settings,
                                    self._deliver),
                    s.host, s.port, ssl=self._tls())
            answer = await session.bind(command, pdu.BindParams(
                s.system_id, s.password, s.system_type, s.addr_ton, s.addr_npi,
                s.address_range))
        except asyncio.CancelledError:
            if session is not None:  # the carrier stops while this bind is under way
                session.close("the carrier stops")
            raise
        except (OSError, TimeoutError, SessionClosed, ResponseTimeout) as exc:
            self.counts["bind_failures"] += 1
            self._bind_faults[slot].failed(f"cannot bind to {s.host}:{s.port}: "
                                           f"{exc or type(exc).__name__}")
            return None
        if answer.status != pdu.ESME_ROK:
            info = status.classify(answer.status)
            self.counts["bind_failures"] += 1
            self._bind_faults[slot].failed(f"bind refused: {info.name} ({info.text})",
                                           logging.ERROR)
            session.close("bind refused")
            await session.wait_closed()
            return None
        self._bind_faults[slot].cleared()
        return session

    def _tls(self) -> ssl.SSLContext | None:
        if not self.settings.tls:
            return None
        context = ssl.create_default_context(cafile=self.settings.tls_ca_file or None)
        if not self.settings.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    # --- submitting ------------------------------------------------------------------

    async def submit(self, messages: Sequence[Message]) -> list[SubmitResult]:
        """One result per message, in order. One recipient's messages go one after the
        other, so the SMSC gets them in the order they were accepted; once one is to be
        retried, the recipient's later ones wait for it (hub.dispatcher.held_behind)."""
        return await self.submit_each(messages, lambda _: None)

    async def submit_each(self, messages: Sequence[Message],
                          on_result: Callable[[SubmitResult], None]) -> list[SubmitResult]:
        """`submit`, telling each result as its submit_sm_resp comes (StreamingCarrier)."""
        by_recipient: dict[str, list[Message]] = {}
        for message in messages:
            by_recipient.setdefault(message.recipient, []).append(message)
        results: dict[str, SubmitResult] = {}

        async def in_order(queue: list[Message]) -> None:
            retried: SubmitResult | None = None  # the first of the queue to go back
            for message in queue:
                if retried is None:
                    result = await self._submit_one(message)
                    if result.verdict is Verdict.RETRY:
                        retried = result
                else:  # sent now, it would overtake the one going back to the queue
                    result = held_behind(message, retried)
                results[message.id] = result
                on_result(result)

        await asyncio.gather(*(in_order(q) for q in by_recipient.values()))
        return [results[m.id] for m in messages]

    async def _submit_one(self, message: Message) -> SubmitResult:
        encoded = encoding.encode_message(message.text,
                                          long_mode=self.settings.long_messages,  # type: ignore[arg-type]
                                          ref=next(self._refs) & 0xFFFF)
        source, ton, npi = self._source(message.sender)
        ids: list[str] = []
        for number, part in enumerate(encoded.parts, 1):
            submit = pdu.Submit(
                source, ton, npi, message.recipient.lstrip("+"), part.short_message,
                part.esm_class, encoded.data_coding,
                1 if self.settings.registered_delivery else 0, part.tlvs,
                _validity(message.expires_at),
            )
            outcome = await self._submit_part(submit, message if number == 1 else None)
            if isinstance(outcome, str):
                ids.append(outcome)
                continue
            if ids:  # parts already went out: a retry would send them twice
                log.warning("%s: part %d of %d of a message to %s failed after earlier "
                            "parts were accepted: %s", self.name, number, len(encoded.parts),
                            logs.number(message.recipient), outcome.error,
                            extra={"action": "smpp-submit"})
                break
            return SubmitResult(message.id, outcome.verdict, error=outcome.error)
        self.counts["submitted"] += 1
        return SubmitResult(message.id, Verdict.SUBMITTED, carrier_message_id=ids[0],
                            part_ids=tuple(ids) if len(ids) > 1 else ())

    async def _submit_part(self, submit: pdu.Submit,
                           first: Message | None = None) -> str | SubmitResult:
        """The SMSC's id for the part, or a result saying why there is none. For a
        message's `first` part, the last word before it goes is hub.cpa.too_late: the
        waits here (throttling, rate) may outlast direct-marketing hours. Later parts
        follow the first whatever the hour: half a message would be worse."""
        for _ in range(THROTTLE_TRIES):
            session = self._pick()
            if session is None:
                return _failed(Verdict.RETRY, "carrier_unavailable",
                               f"{self.name}: no bind is up")
            # Checked here, not awaited: most submissions have neither wait ahead.
            pause = self._throttled_until - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            if self._rate.limited:
                await self._rate.wait()
            if first is not None and (late := cpa.too_late(first, self._clock())) is not None:
                return late
            try:
                answer = await session.submit(submit)
            except (SessionClosed, ResponseTimeout) as exc:
                self.counts["lost_in_flight"] += 1
                return _failed(Verdict.RETRY, "carrier_connection_lost", f"{self.name}: {exc}")
            if answer.status == pdu.ESME_ROK:
                raw = pdu.submit_sm_resp_id(answer.body)
                return receipts.normalise_id(raw, self.settings.response_id_format)  # type: ignore[arg-type]
            info = status.classify(answer.status)
            self.counts[f"status_{info.name}"] += 1
            if info.outcome is status.Outcome.THROTTLE:
                self._throttled_until = time.monotonic() + self.settings.throttle_pause
                continue
            verdict = (Verdict.REJECTED if info.outcome is status.Outcome.PERMANENT
                       else Verdict.RETRY)
            return SubmitResult("", verdict, error=status.error_info(answer.status))
        return _failed(Verdict.RETRY, "throttled", f"{self.name}: the SMSC kept throttling")

    def _pick(self) -> Session | None:
        sessions = self._sessions
        if len(sessions) == 1:  # one bind, the usual: no list to make
            return sessions[0] if sessions[0].can_submit else None
        live = [s for s in sessions if s.can_submit]
        return min(live, key=lambda s: s.outstanding) if live else None

    def _source(self, sender: str | None) -> tuple[str, int, int]:
        """The sender and its TON/NPI: alphanumeric 5/0, short code 3/0, else
        international 1/1; the carrier's settings override either."""
        text = (sender or "").lstrip("+")
        if not text:
            ton, npi = 0, 0
        elif not text.isdigit():
            ton, npi = 5, 0
        elif len(text) <= 8:
            ton, npi = 3, 0
        else:
            ton, npi = 1, 1
        s = self.settings
        return (text, ton if s.source_ton < 0 else s.source_ton,
                npi if s.source_npi < 0 else s.source_npi)

    # --- asking the SMSC ---------------------------------------------------------------

    async def query(self, messages: Sequence[Message]) -> list[DeliveryReport]:
        """query_sm for messages overdue for a receipt (with `query_before_timeout`): a
        report for each the SMSC says has ended. Ids are asked as stored (normalised), so
        this suits SMSCs whose ids need no leading zeros; parted messages are not asked."""
        if not self.settings.query_before_timeout:
            return []
        reports = []
        for message in messages:
            session = self._pick()
            if session is None or not message.carrier_message_id or message.segments > 1:
                continue
            smsc_id = self._as_sent(message.carrier_message_id)
            source, ton, npi = self._source(message.sender)
            build = functools.partial(_query_pdu, smsc_id=smsc_id, source=source, ton=ton,
                                      npi=npi)
            try:
                answer = await session.request(pdu.QUERY_SM, build)
                found = pdu.read_query_sm_resp(answer.body) if answer.status == 0 else None
            except (SessionClosed, ResponseTimeout, pdu.PduError):
                continue
            if found is None:
                continue
            receipt = receipts.parse_receipt(
                f"id:{smsc_id} err:{found.error_code:03d}",
                [(receipts.TAG_MESSAGE_STATE, bytes((found.message_state,)))])
            if receipt is not None and receipt.status.final:
                reports.append(DeliveryReport(
                    self.name, message.carrier_message_id, receipt.status, self._clock(),
                    error=receipt.error, detail=f"query_sm: {receipt.detail}"))
        return reports

    def _as_sent(self, stored: str) -> str:
        if self.settings.response_id_format == "hex" and stored.isdigit():
            return format(int(stored), "x")
        return stored

    # --- what the SMSC delivers --------------------------------------------------------

    def _deliver(self, session: Session, delivered: pdu.Delivered) -> DeliverOutcome:
        sink = self._sink
        if sink is None:
            return pdu.ESME_RX_T_APPN
        if receipts.is_receipt(delivered.esm_class):
            return self._receipt(delivered)
        return self._mobile_originated(sink, delivered)

    def _receipt(self, delivered: pdu.Delivered) -> int | asyncio.Future[None]:
        receipt = receipts.parse_receipt(delivered.short_message, delivered.tlvs)
        if receipt is None:
            log.warning("%s: a receipt without a message id, acknowledged and dropped",
                        self.name, extra={"action": "smpp-receipt"})
            self.counts["receipts_unreadable"] += 1
            return pdu.ESME_ROK
        # The TLV carries the id as submit_sm_resp gave it (SMPP 3.4 5.3.2.12); the text
        # is where SMSCs write it in another base.
        fmt = (self.settings.response_id_format if receipt.id_source == "tlv"
               else self.settings.receipt_id_format)
        report = DeliveryReport(
            self.name, receipts.normalise_id(receipt.message_id, fmt),  # type: ignore[arg-type]
            receipt.status, self._clock(), error=receipt.error,
            detail=receipt.detail or receipt.state)
        # Done once committed (only then the ack), with the others read in this turn.
        return self._receipts.add(report)

    async def _report(self, reports: list[DeliveryReport]) -> None:
        sink = self._sink
        if sink is None:  # stopped meanwhile: not taken, the SMSC sends them again
            raise SessionClosed("the carrier stopped")
        await sink.report(reports)
        self.counts["receipts"] += len(reports)

    async def _mobile_originated(self, sink: CarrierSink, delivered: pdu.Delivered) -> int:
        decoded = encoding.decode_short_message(delivered.data_coding, delivered.esm_class,
                                                delivered.short_message, delivered.tlvs)
        sender = _e164(delivered.source)
        if decoded.concat is None:
            await sink.inbound([InboundMessage(self.name, sender, delivered.destination,
                                               decoded.text, self._clock())])
            self.counts["inbound"] += 1
            return pdu.ESME_ROK
        return await self._mo_part(sink, sender, delivered.destination, decoded)

    async def _mo_part(self, sink: CarrierSink, sender: str, recipient: str,
                       decoded: encoding.Decoded) -> int:
        """A part of a long reply is acknowledged once it is committed (held in the spool
        with its set); the part that completes the set, once the whole reply is stored.
        The reply's carrier id is made from its set and first arrival, so a set
        completed again after a crash is still stored once."""
        concat = decoded.concat
        assert concat is not None
        if self._parts is None:
            return pdu.ESME_RX_T_APPN  # nowhere to keep it: the SMSC sends it again
        part = InboundPart(self.name, sender, recipient, concat.ref, concat.total,
                           concat.seq, decoded.text, self._clock())
        parts = self._parts
        whole = await parts.call(parts.spool.hold_inbound_part, part)
        if whole is None:
            return pdu.ESME_ROK
        text, first = whole
        ref = f"parts:{sender}:{recipient}:{concat.ref}:{concat.total}:{first.isoformat()}"
        await sink.inbound([InboundMessage(self.name, sender, recipient, text, self._clock(),
                                           carrier_message_id=ref)])
        await parts.call(parts.spool.forget_inbound_parts, part)
        self.counts["inbound"] += 1
        return pdu.ESME_ROK


def _query_pdu(sequence: int, *, smsc_id: str, source: str, ton: int, npi: int) -> bytes:
    return pdu.query_sm(sequence, smsc_id, source, ton, npi)


def _failed(verdict: Verdict, code: str, text: str) -> SubmitResult:
    return SubmitResult("", verdict, error=ErrorInfo(code, text))


def _e164(address: str) -> str:
    return f"+{address}" if address.isdigit() and len(address) >= 10 else address


def _validity(expires_at: datetime | None) -> str:
    """SMPP absolute time, UTC: YYMMDDhhmmss, tenths, quarter hours from UTC, '+'."""
    if expires_at is None:
        return ""
    # Whole seconds are all it says: messages accepted a moment apart (each single
    # POST has its own acceptance time, to the microsecond) share one formatting.
    return _validity_at(math.floor(expires_at.timestamp()))


@functools.lru_cache(maxsize=256)
def _validity_at(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%y%m%d%H%M%S") + "000+"

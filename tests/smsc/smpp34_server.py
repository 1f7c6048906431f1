"""Smpp34Smsc: smpp34.Server (an SMSC we did not write, Rust/tokio) on 127.0.0.1 with a
free port, answering every submit_sm and pushing receipts, for the ordinary paths.

    smsc = await Smpp34Smsc(receipt_delay=0.1).start()   # connect the ESME to smsc.port
    ...
    await smsc.stop()

Quirks of smpp34 1.5.0 (measured when it was chosen): it accepts any
credentials; on unbind it closes TCP, sometimes after an unbind_resp and sometimes
without one (both seen here); a receipt can arrive before the submit_sm_resp it refers
to; it rejects query_sm and data_sm. Found here: a bind_receiver session cannot
acknowledge deliver_sm (its deliver_sm_resp gets generic_nack ESME_RINVCMDID and the
deliver_sm fails with ESME_RSYSERR after 30 s), so bind transceiver against it; and
`binds`/`esmes` fill in only after bind_resp was sent (wait_for them). Server.next()
never returns after stop(), so the event task is cancelled. The tokio runtime keeps six
descriptors (epoll, eventfd, sockets) open for the life of the process from the first
start(): tests under tests/integration need @pytest.mark.keeps_process_fds. Never use
smpp34.Client in test processes (it can crash the interpreter at exit).
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import smpp34

from tests.polling import until
from tests.smsc import pdu as p


@dataclass
class Smpp34Submit:
    """A submit_sm as smpp34 decoded it, and how it was answered."""

    session_id: str
    source_addr: str
    source_ton: int
    source_npi: int
    dest_addr: str
    dest_ton: int
    dest_npi: int
    esm_class: int
    data_coding: int
    registered_delivery: int
    short_message: bytes
    tlvs: dict[int, bytes]
    time: float = field(default_factory=time.monotonic)
    status: int = p.ESME_ROK
    message_id: str | None = None


class Smpp34Smsc:
    """smpp34.Server with a recording, receipt-sending event loop."""

    def __init__(self, *, receipt_delay: float = 0.0, receipt_stat: str = "DELIVRD",
                 receipt_err: str = "000", receipt_seconds: bool = False,
                 receipt_tlvs: bool = True, id_style: str = "dec", first_id: int = 1000,
                 decide: Callable[[Smpp34Submit], int | None] | None = None,
                 system_id: str = "smpp34") -> None:
        self.receipt_delay, self.receipt_stat, self.receipt_err = (
            receipt_delay, receipt_stat, receipt_err)
        self.receipt_seconds, self.receipt_tlvs = receipt_seconds, receipt_tlvs
        self.id_style = id_style
        self.decide = decide  # None/0 accepts; a status rejects the submit_sm with it
        self.system_id = system_id
        self.port = 0
        self.esmes: dict[str, smpp34.Esme] = {}  # bound sessions by session_id
        self.binds: list[tuple[str, str]] = []  # (session_id, system_id)
        self.unbound: list[str] = []  # session_ids that ended (unbind or drop)
        self.submits: list[Smpp34Submit] = []
        self.receipts: list[tuple[str, int | None]] = []  # (message_id, deliver_sm_resp)
        self._numbers = itertools.count(first_id)
        self._server: smpp34.Server | None = None
        self._events: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self, attempts: int = 5) -> Smpp34Smsc:
        """Start on a free port. smpp34.Server accepts port 0 but does not say which port
        it got, so a port is picked by binding a socket to port 0 first (retried if the
        port is taken in between)."""
        for attempt in range(attempts):
            port = _free_port()
            server = smpp34.Server("127.0.0.1", port, system_id=self.system_id)
            try:
                await server.start()
            except smpp34.SmppError:
                if attempt == attempts - 1:
                    raise
                continue
            self._server, self.port = server, port
            break
        self._events = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        tasks = [t for t in (self._events, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.stop()
        self.esmes.clear()
        failures = [r for r in results if isinstance(r, Exception)]
        if failures:
            raise failures[0]

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> None:
        await until(lambda: bool(predicate()), timeout)

    async def push_mo(self, session_id: str, source: str, dest: str, short_message: bytes,
                      **fields: Any) -> int:
        """Send an MO deliver_sm to one bound session; the deliver_sm_resp status (smpp34
        clients ack before the application sees it; a raw client answers itself)."""
        resp = await self.esmes[session_id].deliver_sm(
            dest, short_message, source_addr=source, **fields)
        return resp.command_status

    async def _run(self) -> None:
        assert self._server is not None
        while True:
            event = await self._server.next()
            if isinstance(event, smpp34.Esme):
                self.esmes[event.session_id] = event
                self.binds.append((event.session_id, event.system_id))
            elif isinstance(event, smpp34.SubmitSmEvent):
                self._on_submit(event)
            elif isinstance(event, smpp34.Unbound):
                self.unbound.append(event.session_id)
                self.esmes.pop(event.session_id, None)

    def _on_submit(self, event: smpp34.SubmitSmEvent) -> None:
        rec = Smpp34Submit(
            event.session_id, event.source_addr, event.source_addr_ton,
            event.source_addr_npi, event.destination_addr, event.dest_addr_ton,
            event.dest_addr_npi, event.esm_class, event.data_coding,
            event.registered_delivery, event.short_message,
            {t.tag: t.value for t in event.tlvs})
        self.submits.append(rec)
        rec.status = (self.decide(rec) if self.decide is not None else None) or p.ESME_ROK
        if rec.status:
            event.reject(rec.status)
            return
        rec.message_id = p.format_id(next(self._numbers), self.id_style)
        event.accept(rec.message_id)
        if rec.registered_delivery & 0x03:
            task = asyncio.create_task(self._send_receipt(rec))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send_receipt(self, rec: Smpp34Submit) -> None:
        await asyncio.sleep(self.receipt_delay)
        esme = self._receiver(rec.session_id)
        assert rec.message_id is not None
        if esme is None:
            self.receipts.append((rec.message_id, None))
            return
        done = datetime.now()
        text = p.receipt_text(
            rec.message_id, stat=self.receipt_stat, err=self.receipt_err,
            submitted=done - timedelta(seconds=time.monotonic() - rec.time), done=done,
            seconds=self.receipt_seconds,
            text=rec.short_message if rec.data_coding in (0, 1, 3) else b"")
        tlvs = [smpp34.Tlv(p.TLV_RECEIPTED_MESSAGE_ID, p.cstr(rec.message_id)),
                smpp34.Tlv(p.TLV_MESSAGE_STATE,
                           bytes([p.MESSAGE_STATES.get(self.receipt_stat, 7)]))]
        try:
            resp = await esme.deliver_sm(
                rec.source_addr, text, source_addr=rec.dest_addr, esm_class=p.ESM_RECEIPT,
                tlvs=tlvs if self.receipt_tlvs else [])
        except smpp34.SmppError:
            self.receipts.append((rec.message_id, None))
            return
        self.receipts.append((rec.message_id, resp.command_status))

    def _receiver(self, session_id: str) -> smpp34.Esme | None:
        """The submitting session if it can receive, else a receiver of the same system_id
        (transmitter + receiver binds); None when the session is gone."""
        own = self.esmes.get(session_id)
        if own is None or own.can_receive:
            return own
        return next((e for e in self.esmes.values()
                     if e.can_receive and e.system_id == own.system_id), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

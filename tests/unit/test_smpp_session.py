"""The SMPP session's response deadlines, against a peer on 127.0.0.1 that answers only
what the test tells it to: every request has its own deadline, kept by one timer; and
its answers to deliver_sm, each sent once the carrier's commit of it is done."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from adapters.carriers.smpp import pdu
from adapters.carriers.smpp.session import (
    DeliverHandler,
    ResponseTimeout,
    Session,
    SessionClosed,
    SessionSettings,
)
from tests.smsc.pdu import ESM_RECEIPT, Pdu, ShortMessage


class Peer:
    """The SMSC's end of the connection: records each request's sequence number, and
    each PDU's command, status and sequence."""

    def __init__(self) -> None:
        self.sequences: list[int] = []
        self.pdus: list[tuple[int, int, int]] = []
        self.writer: asyncio.StreamWriter | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readexactly(pdu.HEADER_SIZE)
                parsed = pdu.header(head)
                await reader.readexactly(parsed.length - pdu.HEADER_SIZE)
                self.sequences.append(parsed.sequence)
                self.pdus.append((parsed.command_id, parsed.status, parsed.sequence))

    def answer(self, sequence: int) -> None:
        assert self.writer is not None
        self.writer.write(pdu.frame(pdu.ENQUIRE_LINK | pdu.RESPONSE, sequence))

    async def received(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.sequences) < count:
                await asyncio.sleep(0.01)


async def _refuse(session: Session, delivered: pdu.Delivered) -> int:
    return pdu.ESME_RX_T_APPN


@contextlib.asynccontextmanager
async def connected(on_deliver: DeliverHandler = _refuse,
                    ) -> AsyncIterator[tuple[Session, Peer]]:
    peer = Peer()
    server = await asyncio.start_server(peer.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    _, session = await loop.create_connection(
        lambda: Session("test", SessionSettings(response_timeout=30.0), on_deliver),
        "127.0.0.1", port)
    try:
        yield session, peer
    finally:
        session.close("test over")
        await session.wait_closed()
        if peer.writer is not None:
            peer.writer.close()
        server.close()
        await server.wait_closed()


def _enquire(session: Session, timeout: float | None = None) -> asyncio.Future[object]:
    return asyncio.ensure_future(session.request(
        pdu.ENQUIRE_LINK, lambda sequence: pdu.frame(pdu.ENQUIRE_LINK, sequence), timeout))


async def test_a_request_left_unanswered_times_out_at_its_own_deadline() -> None:
    async with connected() as (session, peer):
        loop = asyncio.get_running_loop()
        started = loop.time()
        first = _enquire(session, timeout=0.3)
        later = [_enquire(session) for _ in range(20)]
        await peer.received(21)
        for sequence in peer.sequences[1:]:
            peer.answer(sequence)
        await asyncio.gather(*later)  # answered: none of them waits for the first
        with pytest.raises(ResponseTimeout):
            await first
        assert 0.25 < loop.time() - started < 2.0
        assert session.closed.done()  # its answer can no longer come


async def test_a_shorter_deadline_sent_after_a_longer_one_comes_first() -> None:
    async with connected() as (session, peer):
        loop = asyncio.get_running_loop()
        started = loop.time()
        patient = _enquire(session)  # 30 s
        hasty = _enquire(session, timeout=0.2)
        await peer.received(2)
        with pytest.raises(ResponseTimeout):
            await hasty
        assert loop.time() - started < 2.0
        with pytest.raises(SessionClosed):  # the session closed with it
            await patient


async def test_requests_answered_in_order_leave_no_deadline_behind() -> None:
    """Under load a deadline kept for every request ever sent would grow without end."""
    async with connected() as (session, peer):
        requests = [_enquire(session) for _ in range(50)]
        await peer.received(50)
        for sequence in peer.sequences:
            peer.answer(sequence)
        await asyncio.gather(*requests)
        assert session._deadlines == []


async def test_a_deliver_sm_is_answered_when_its_commit_is_done_with_no_task_of_its_own(
) -> None:
    """A receipt's handler gives a future (the commit of the receipts read together):
    each deliver_sm is answered when it is done, ESME_RX_T_APPN if the commit failed,
    not at all if it was called off (the SMSC sends it again); no task per PDU."""
    loop = asyncio.get_running_loop()
    commits: list[asyncio.Future[None]] = []

    def commit_later(session: Session, delivered: pdu.Delivered) -> asyncio.Future[None]:
        commits.append(loop.create_future())
        return commits[-1]

    async with connected(commit_later) as (_, peer):
        async with asyncio.timeout(5):
            while peer.writer is None:
                await asyncio.sleep(0.01)
        tasks = len(asyncio.all_tasks())
        receipt = ShortMessage(source_addr="27821234567", esm_class=ESM_RECEIPT,
                               short_message=b"id:1001 stat:DELIVRD err:000").encode()
        peer.writer.write(b"".join(Pdu(pdu.DELIVER_SM, 0, sequence, receipt).encode()
                                   for sequence in (7, 8, 9)))
        async with asyncio.timeout(5):
            while len(commits) < 3:
                await asyncio.sleep(0.01)
        assert len(asyncio.all_tasks()) == tasks
        await asyncio.sleep(0.05)
        assert peer.pdus == []  # nothing answered before its commit
        commits[0].set_result(None)
        commits[1].set_exception(RuntimeError("the spool is away"))
        commits[2].cancel()
        async with asyncio.timeout(5):
            while len(peer.pdus) < 2:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        resp = pdu.DELIVER_SM | pdu.RESPONSE
        assert peer.pdus == [(resp, pdu.ESME_ROK, 7), (resp, pdu.ESME_RX_T_APPN, 8)]

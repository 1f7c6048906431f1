"""One SMPP bind: an asyncio protocol that frames PDUs, matches responses to requests by
sequence number, enforces the window of outstanding submit_sm, keeps the link alive with
enquire_link, and hands each deliver_sm to the carrier, answering it only afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, cast

from adapters.carriers.smpp import pdu
from hub.model import record

log = logging.getLogger(__name__)

# What the carrier makes of a deliver_sm, answered only once what it carries (a receipt
# or an inbound message) is committed: the command_status to answer with at once; a
# future that gives it (None for ESME_ROK), which a receipt shares with the others read
# in the same turn, so that a receipt costs no task of its own; or a coroutine that
# gives it, run in a task of the session's (an inbound message's work).
DeliverOutcome = int | asyncio.Future[Any] | Coroutine[Any, Any, int]
DeliverHandler = Callable[["Session", pdu.Delivered], DeliverOutcome]


class SessionClosed(Exception):
    """The bind is gone (dropped, unbound, or timed out); nothing more can come on it."""


class ResponseTimeout(Exception):
    """A request got no response in time; the session is closed so that none can come."""


@dataclass(frozen=True, slots=True)
class SessionSettings:
    window: int = 100
    response_timeout: float = 30.0
    enquire_link_interval: float = 30.0
    bind_timeout: float = 10.0
    unbind_timeout: float = 2.0


@record
class Response:
    command_id: int
    status: int
    body: bytes


class Session(asyncio.Protocol):
    """A bound (or binding) SMPP session; `closed` resolves when it ends."""

    def __init__(self, name: str, settings: SessionSettings, on_deliver: DeliverHandler
                 ) -> None:
        self.name = name
        self.settings = settings
        self._on_deliver = on_deliver
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._out: list[bytes] = []
        self._sequence = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Response]] = {}
        # (deadline, sequence, command_id) of requests sent, in a heap, and one timer at
        # the earliest: a timeout per request (asyncio.timeout) cost a tenth of the
        # dispatching event loop's time per message. Answered ones leave lazily.
        self._deadlines: list[tuple[float, int, int]] = []
        self._timer: asyncio.TimerHandle | None = None
        self.window = asyncio.Semaphore(settings.window)
        self.outstanding = 0  # submit_sm sent and not yet answered
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._refused: BaseException | None = None  # the failure last logged (_not_taken)
        self.bound = False
        self.can_submit = False
        self.can_receive = False
        self.close_reason = ""

    # --- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport is not an asyncio.Transport subclass, though it is one.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(self.close_reason or (f"connection lost: {exc}" if exc
                                           else "connection closed by the SMSC"))

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= pdu.HEADER_SIZE:
            try:
                head = pdu.header(self._buffer)
            except pdu.PduError as exc:
                self.close(f"unreadable PDU header: {exc}")
                return
            if len(self._buffer) < head.length:
                return
            raw = bytes(self._buffer[: head.length])
            del self._buffer[: head.length]
            self._dispatch(head, raw)

    # --- requests --------------------------------------------------------------------

    def next_sequence(self) -> int:
        # Sequence numbers run 1..0x7FFFFFFF and then wrap.
        return next(self._sequence) % 0x7FFFFFFF or next(self._sequence)

    async def request(self, command_id: int, build: Callable[[int], bytes],
                      timeout: float | None = None) -> Response:
        """Send one request and wait for its response; on a timeout the session is closed,
        so the response can no longer come and the caller may safely try again later."""
        if self.closed.done() or self._transport is None:
            raise SessionClosed(self.close_reason or "not connected")
        sequence = self.next_sequence()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Response] = loop.create_future()
        self._waiting[sequence] = future
        try:
            if not self._can_write.is_set():
                await self._can_write.wait()
            self._write(build(sequence))
            deadline = loop.time() + (
                self.settings.response_timeout if timeout is None else timeout)
            heapq.heappush(self._deadlines, (deadline, sequence, command_id))
            if self._timer is None or deadline < self._timer.when():
                self._arm(loop, deadline)
            return await future
        finally:
            waiting, heap = self._waiting, self._deadlines
            waiting.pop(sequence, None)
            while heap and heap[0][1] not in waiting:  # answers come mostly in order
                heapq.heappop(heap)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(when, self._expire)

    def _expire(self) -> None:
        """The earliest deadline has come: a request still unanswered by its deadline
        fails with ResponseTimeout and the session is closed, so that its response can
        no longer come (the caller may safely try again later)."""
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        heap, waiting = self._deadlines, self._waiting
        late: list[tuple[int, int]] = []
        while heap and (heap[0][0] <= now or heap[0][1] not in waiting):
            _, sequence, command_id = heapq.heappop(heap)
            future = waiting.get(sequence)
            if future is not None and not future.done():
                late.append((sequence, command_id))
        if late:
            for sequence, command_id in late:
                waiting[sequence].set_exception(
                    ResponseTimeout(f"no response to command 0x{command_id:08x}"))
            self.close(f"no response to command 0x{late[0][1]:08x} in time")
        elif heap and not self.closed.done():
            self._arm(loop, heap[0][0])

    async def submit(self, submit: pdu.Submit) -> Response:
        """submit_sm within the window; the window slot is held until the answer."""
        # acquire() and release() rather than `async with`: one coroutine less a message.
        await self.window.acquire()
        self.outstanding += 1
        try:
            return await self.request(pdu.SUBMIT_SM, lambda seq: pdu.submit_sm(seq, submit))
        finally:
            self.outstanding -= 1
            self.window.release()

    async def bind(self, command_id: int, params: pdu.BindParams) -> Response:
        answer = await self.request(command_id, lambda seq: pdu.bind(command_id, seq, params),
                                    self.settings.bind_timeout)
        if answer.status == pdu.ESME_ROK:
            self.bound = True
            self.can_submit = command_id in (pdu.BIND_TRANSMITTER, pdu.BIND_TRANSCEIVER)
            self.can_receive = command_id in (pdu.BIND_RECEIVER, pdu.BIND_TRANSCEIVER)
            self._spawn(self._keep_alive())
        return answer

    async def unbind(self) -> None:
        """A clean goodbye: unbind, wait briefly for unbind_resp, close."""
        if self.bound and not self.closed.done():
            with contextlib.suppress(SessionClosed, ResponseTimeout):
                await self.request(pdu.UNBIND, lambda seq: pdu.frame(pdu.UNBIND, seq),
                                   self.settings.unbind_timeout)
        self.close("unbound")
        await self.wait_closed()

    async def wait_closed(self) -> None:
        await asyncio.shield(self.closed)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def close(self, reason: str) -> None:
        if not self.close_reason:
            self.close_reason = reason
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        else:
            self._finish(reason)

    # --- what arrives ------------------------------------------------------------------

    def _dispatch(self, head: pdu.Header, raw: bytes) -> None:
        command_id = head.command_id
        if command_id & pdu.RESPONSE:
            future = self._waiting.get(head.sequence)
            if future is not None and not future.done():
                future.set_result(Response(command_id, head.status, raw[pdu.HEADER_SIZE:]))
            elif command_id == pdu.GENERIC_NACK:
                log.warning("%s: generic_nack 0x%08x for sequence %d", self.name,
                            head.status, head.sequence, extra={"action": "smpp-nack"})
            return
        if command_id == pdu.DELIVER_SM:
            self._deliver(head.sequence, raw)
        elif command_id == pdu.ENQUIRE_LINK:
            self._write(pdu.frame(pdu.ENQUIRE_LINK | pdu.RESPONSE, head.sequence))
        elif command_id == pdu.UNBIND:
            self._write(pdu.frame(pdu.UNBIND | pdu.RESPONSE, head.sequence))
            self.close("unbound by the SMSC")
        else:
            self._write(pdu.frame(pdu.GENERIC_NACK, head.sequence, status=pdu.ESME_RINVCMDID))

    def _deliver(self, sequence: int, raw: bytes) -> None:
        try:
            delivered = pdu.read_deliver_sm(raw)
        except pdu.PduError as exc:
            log.warning("%s: %s", self.name, exc, extra={"action": "smpp-deliver"})
            self._answer_deliver(sequence, pdu.ESME_RSYSERR)
            return
        try:
            outcome = self._on_deliver(self, delivered)
        except Exception as exc:
            self._not_taken(sequence, exc)
            return
        if isinstance(outcome, int):
            self._answer_deliver(sequence, outcome)
        elif isinstance(outcome, asyncio.Future):
            outcome.add_done_callback(functools.partial(self._committed, sequence))
        else:
            self._spawn(self._deliver_later(sequence, outcome))

    def _committed(self, sequence: int, done: asyncio.Future[Any]) -> None:
        if done.cancelled():
            return  # not committed, and not answered: the SMSC sends it again
        exc = done.exception()
        if exc is not None:
            self._not_taken(sequence, exc)
            return
        status = done.result()
        self._answer_deliver(sequence, pdu.ESME_ROK if status is None else status)

    async def _deliver_later(self, sequence: int, work: Awaitable[int]) -> None:
        try:
            status = await work
        except Exception as exc:
            self._not_taken(sequence, exc)
            return
        self._answer_deliver(sequence, status)

    def _not_taken(self, sequence: int, exc: BaseException) -> None:
        # Not committed: the SMSC keeps it and sends it again. The receipts of one read
        # share one commit and so one failure: it is logged once, not once a receipt.
        if exc is not self._refused:
            self._refused = exc
            log.error("%s: deliver_sm not taken; asking the SMSC to resend", self.name,
                      exc_info=exc, extra={"action": "smpp-deliver"})
        self._answer_deliver(sequence, pdu.ESME_RX_T_APPN)

    def _answer_deliver(self, sequence: int, status: int) -> None:
        self._write(pdu.frame(pdu.DELIVER_SM | pdu.RESPONSE, sequence, b"\0", status))

    async def _keep_alive(self) -> None:
        interval = self.settings.enquire_link_interval
        while not self.closed.done():
            await asyncio.sleep(interval)
            with contextlib.suppress(SessionClosed, ResponseTimeout):
                await self.request(pdu.ENQUIRE_LINK,
                                   lambda seq: pdu.frame(pdu.ENQUIRE_LINK, seq))

    # --- plumbing ----------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        # PDUs written in one turn of the loop leave in one send: under load a window of
        # submit_sm (or of deliver_sm_resp) costs one system call, not one each.
        self._out.append(data)
        if len(self._out) == 1:
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        data, self._out = b"".join(self._out), []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _finish(self, reason: str) -> None:
        if not self.close_reason:
            self.close_reason = reason
        self.bound = self.can_submit = self.can_receive = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadlines.clear()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(SessionClosed(self.close_reason))
        self._waiting.clear()
        self._can_write.set()
        if not self.closed.done():
            self.closed.set_result(None)

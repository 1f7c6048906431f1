"""The SMPP carrier's own CPU a message, in process, with no network, spool or SMSC:
what the dispatch process's event loop spends on each submit_sm and each receipt.

    .venv/bin/python bench/smpp_paths.py [--n 20000] [--runs 5] [--path submit|receive]

- submit: `SmppCarrier.submit_each` of claims of 250 messages (each to its own
  recipient, as a claim of single POSTs is), over one bind whose transport answers every
  submit_sm with a submit_sm_resp in the next turn of the loop (as an SMSC's answers
  come in reads: several per read), window 100;
- receive: deliver_sm receipts fed to the bind in reads of 64 PDUs, handed to the
  carrier's sink in per-turn lists (a sink that takes them at once), each answered with
  its deliver_sm_resp.

CPU is the event loop thread's (time.thread_time), uvloop as `smshub serve` runs it;
medians over the runs. bench/smpp_e2e.py measures the whole path with a real SMSC.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import struct
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.carriers.smpp import pdu
from adapters.carriers.smpp.carrier import SmppCarrier
from adapters.carriers.smpp.config import SmppSettings
from adapters.carriers.smpp.session import Session
from hub.model import (
    DeliveryReport,
    Encoding,
    InboundMessage,
    Message,
    MessageClass,
    Source,
    Status,
)
from tests.smsc.pdu import ESM_RECEIPT, Pdu, ShortMessage, receipt_text

CLAIM = 250
READ = 64


class Sink:
    """Takes every report and reply at once."""

    def __init__(self) -> None:
        self.reports = 0

    async def report(self, reports: Sequence[DeliveryReport]) -> None:
        self.reports += len(reports)

    async def inbound(self, messages: Sequence[InboundMessage]) -> None:
        pass


class Answering:
    """A transport that answers each submit_sm written to it with a submit_sm_resp, all
    of one write in one read on the next turn of the loop."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.loop = asyncio.get_running_loop()
        self.next_id = 1000

    def write(self, data: bytes) -> None:
        answers = []
        at = 0
        while at < len(data):
            length, command_id, _, sequence = struct.unpack_from(">IIII", data, at)
            if command_id == pdu.SUBMIT_SM:
                self.next_id += 1
                body = f"{self.next_id}".encode() + b"\0"
                answers.append(struct.pack(">IIII", 16 + len(body), pdu.SUBMIT_SM | pdu.RESPONSE,
                                           0, sequence) + body)
            at += length
        if answers:
            self.loop.call_soon(self.session.data_received, b"".join(answers))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


class Discarding(Answering):
    def write(self, data: bytes) -> None:
        pass


def bound(carrier: SmppCarrier, transport: type[Answering]) -> Session:
    session = Session("smsc/0", carrier._session_settings, carrier._deliver)
    session.connection_made(transport(session))  # type: ignore[arg-type]
    session.bound = session.can_submit = session.can_receive = True
    carrier._sessions.append(session)  # a bind made without a socket
    return session


def messages(n: int) -> list[Message]:
    now = datetime.now(UTC)
    return [Message(f"01J{i:023d}", 1, Source.REST, f"+2782{i:07d}", f"Benchmark message {i}",
                    Encoding.GSM7, 1, Decimal("0.10"), Status.SENDING, 1,
                    MessageClass.TRANSACTIONAL, 0, now, now, now, sender="ACME",
                    expires_at=now + timedelta(hours=48, microseconds=i))
            for i in range(n)]


async def submit(n: int) -> float:
    carrier = SmppCarrier("smsc", SmppSettings(port=1, system_id="hub", password="x"))
    bound(carrier, Answering)
    todo = messages(n)
    told = 0

    def on_result(_: Any) -> None:
        nonlocal told
        told += 1

    started = time.thread_time()
    for at in range(0, n, CLAIM):
        results = await carrier.submit_each(todo[at:at + CLAIM], on_result)
        assert all(r.carrier_message_id for r in results), results[0]
    used = time.thread_time() - started
    assert told == n
    return used / n


async def receive(n: int) -> float:
    carrier = SmppCarrier("smsc", SmppSettings(port=1, system_id="hub", password="x"))
    sink = Sink()
    carrier._sink = sink  # started without binding
    session = bound(carrier, Discarding)
    now = datetime.now(UTC)
    pdus = [Pdu(pdu.DELIVER_SM, 0, i + 1, ShortMessage(
        source_addr="27820000001", dest_addr="ACME", esm_class=ESM_RECEIPT,
        short_message=receipt_text(str(1000 + i), submitted=now, done=now),
        tlvs={0x001E: f"{1000 + i:x}".encode() + b"\0", 0x0427: bytes([2])}).encode()).encode()
        for i in range(n)]
    reads = [b"".join(pdus[at:at + READ]) for at in range(0, n, READ)]
    started = time.thread_time()
    for data in reads:
        session.data_received(data)
        for _ in range(3):  # the read's commit, then its answers
            await asyncio.sleep(0)
    while sink.reports < n:
        await asyncio.sleep(0)
    for _ in range(3):
        await asyncio.sleep(0)
    return (time.thread_time() - started) / n


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20_000, help="messages and receipts a run")
    p.add_argument("--runs", type=int, default=5, help="runs (medians are printed)")
    p.add_argument("--path", choices=("submit", "receive", "both"), default="both")
    a = p.parse_args()
    for name, run in (("submit", submit), ("receive", receive)):
        if a.path not in (name, "both"):
            continue
        figures = [uvloop.run(run(a.n)) * 1e6 for _ in range(a.runs)]
        print(f"{name:8s} {statistics.median(figures):6.2f} us of CPU a message "
              f"(runs: {', '.join(f'{f:.2f}' for f in figures)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

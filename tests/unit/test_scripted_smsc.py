"""The test SMSCs themselves, driven by a raw ESME written here with struct (independent of
tests/smsc/pdu.py), so they are known-good before the hub's SMPP client meets them."""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import AsyncIterator

import pytest

from tests.smsc.scripted import WITHHOLD, Answer, ScriptedSmsc
from tests.smsc.smpp34_server import Smpp34Smsc

BIND_TRX, BIND_RX, BIND_TX = 0x09, 0x01, 0x02
SUBMIT, DELIVER, QUERY, UNBIND, ENQUIRE, NACK = 0x04, 0x05, 0x03, 0x06, 0x15, 0x80000000
RESP = 0x80000000


def z(text: str) -> bytes:
    return text.encode() + b"\0"


def submit_body(dest: str, message: bytes, *, registered: int = 1, dc: int = 0,
                esm: int = 0, tlvs: bytes = b"") -> bytes:
    return (z("") + bytes([5, 0]) + z("ACME") + bytes([1, 1]) + z(dest)
            + bytes([esm, 0, 0]) + z("") + z("") + bytes([registered, 0, dc, 0, len(message)])
            + message + tlvs)


def parse_deliver(body: bytes) -> tuple[int, int, bytes, dict[int, bytes]]:
    """esm_class, data_coding, short_message and TLVs of a deliver_sm body."""
    pos = body.index(b"\0") + 3  # service_type, source ton/npi
    pos = body.index(b"\0", pos) + 3  # source_addr, dest ton/npi
    pos = body.index(b"\0", pos) + 1  # destination_addr
    esm = body[pos]
    pos = body.index(b"\0", pos + 3) + 1  # esm, protocol_id, priority, schedule
    pos = body.index(b"\0", pos) + 1  # validity_period
    dc, length = body[pos + 2], body[pos + 4]
    message, pos = body[pos + 5:pos + 5 + length], pos + 5 + length
    tlvs = {}
    while pos < len(body):
        tag, size = struct.unpack(">HH", body[pos:pos + 4])
        tlvs[tag], pos = body[pos + 4:pos + 4 + size], pos + 4 + size
    return esm, dc, message, tlvs


class RawEsme:
    """A minimal ESME over asyncio streams: write PDUs, read them back one by one."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.seq = reader, writer, 0
        self.stash: list[tuple[int, int, int, bytes]] = []

    @classmethod
    async def connect(cls, port: int) -> RawEsme:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def send(self, command_id: int, body: bytes = b"", status: int = 0,
             seq: int | None = None) -> int:
        if seq is None:
            self.seq += 1
            seq = self.seq
        self.writer.write(struct.pack(">IIII", 16 + len(body), command_id, status, seq) + body)
        return seq

    async def read(self, timeout: float = 5.0) -> tuple[int, int, int, bytes]:
        """(command_id, status, sequence, body) of the next PDU."""
        head = await asyncio.wait_for(self.reader.readexactly(16), timeout)
        length, command_id, status, seq = struct.unpack(">IIII", head)
        return command_id, status, seq, await self.reader.readexactly(length - 16)

    async def expect(self, command_id: int) -> tuple[int, int, bytes]:
        """(status, sequence, body) of the next PDU with this id; others wait in stash."""
        for pdu in self.stash:
            if pdu[0] == command_id:
                self.stash.remove(pdu)
                return pdu[1:]
        while True:
            pdu = await self.read()
            if pdu[0] == command_id:
                return pdu[1:]
            self.stash.append(pdu)

    async def bind(self, kind: int = BIND_TRX, system_id: str = "hub") -> tuple[int, bytes]:
        self.send(kind, z(system_id) + z("secret") + z("SMPP") + bytes([0x34, 0, 0]) + z(""))
        status, _, body = await self.expect(kind | RESP)
        return status, body

    async def submit(self, dest: str = "27821234567", message: bytes = b"hello",
                     **kw: int) -> tuple[int, str]:
        self.send(SUBMIT, submit_body(dest, message, **kw))
        status, _, body = await self.expect(SUBMIT | RESP)
        return status, body.rstrip(b"\0").decode()

    async def rest(self) -> bytes:
        """What the peer still sends until it closes the connection."""
        return await asyncio.wait_for(self.reader.read(), 5)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@pytest.fixture
async def smsc() -> AsyncIterator[ScriptedSmsc]:
    server = await ScriptedSmsc().start()
    yield server
    await server.stop()
    assert asyncio.all_tasks() == {asyncio.current_task()}


@pytest.fixture
async def esme(smsc: ScriptedSmsc) -> AsyncIterator[RawEsme]:
    client = await RawEsme.connect(smsc.port)
    yield client
    await client.close()


async def test_bind_submit_receipt_enquire_unbind(smsc: ScriptedSmsc, esme: RawEsme) -> None:
    smsc.receipt_mode = "after"
    assert await esme.bind() == (0, b"scripted\0" + bytes.fromhex("0210000134"))
    tlv = struct.pack(">HHH", 0x020C, 2, 77)
    assert await esme.submit(message=b"hello world", tlvs=tlv) == (0, "1000")
    _, seq, body = await esme.expect(DELIVER)
    esm, dc, text, tlvs = parse_deliver(body)
    assert (esm, dc) == (0x04, 0)
    assert re.fullmatch(rb"id:1000 sub:001 dlvrd:001 submit date:\d{10} done date:\d{10} "
                        rb"stat:DELIVRD err:000 text:hello world", text)
    assert tlvs == {0x001E: b"1000\0", 0x0427: b"\x02"}
    esme.send(DELIVER | RESP, b"\0", seq=seq)
    await smsc.wait_for(lambda: smsc.deliveries)
    assert smsc.deliveries[0].status == 0 and smsc.deliveries[0].kind == "receipt"
    rec = smsc.submits[0]
    assert (rec.source_addr, rec.source_ton, rec.source_npi) == ("ACME", 5, 0)
    assert (rec.dest_addr, rec.dest_ton, rec.dest_npi) == ("27821234567", 1, 1)
    assert (rec.registered_delivery, rec.short_message, rec.tlvs) == (
        1, b"hello world", {0x020C: b"\x00\x4d"})
    assert (rec.session, rec.status, rec.message_id) == (1, 0, "1000")
    esme.send(ENQUIRE)
    assert (await esme.expect(ENQUIRE | RESP))[0] == 0
    esme.send(UNBIND)
    assert (await esme.expect(UNBIND | RESP))[0] == 0
    assert await esme.rest() == b""
    assert (smsc.binds, smsc.enquire_links, smsc.unbinds) == (1, 1, 1)
    assert smsc.bind_log[0].system_type == "SMPP" and smsc.bind_log[0].kind == "TRX"


async def test_bind_refused_and_submit_before_bind(smsc: ScriptedSmsc, esme: RawEsme) -> None:
    smsc.bind_status = 0x0E
    assert await esme.submit() == (0x04, "")  # ESME_RINVBNDSTS
    assert await esme.bind() == (0x0E, b"")
    smsc.bind_status = 0
    assert (await esme.bind(BIND_RX))[0] == 0
    assert await esme.submit() == (0x04, "")  # a receiver may not submit
    assert [b.status for b in smsc.bind_log] == [0x0E, 0]


async def test_early_receipt_in_another_base_with_12_digit_dates(
        smsc: ScriptedSmsc, esme: RawEsme) -> None:
    smsc.receipt_mode, smsc.receipt_seconds = "before", True
    smsc.id_style, smsc.receipt_id_style = "hex", "padded"
    await esme.bind()
    esme.send(SUBMIT, submit_body("27821234567", b"x"))
    first, second = await esme.read(), await esme.read()
    assert (first[0], second[0]) == (DELIVER, SUBMIT | RESP)  # the receipt came first
    assert second[3] == b"3e8\0"
    _, _, text, tlvs = parse_deliver(first[3])
    assert re.match(rb"id:0000001000 sub:001 dlvrd:001 submit date:\d{12} done date:\d{12} ",
                    text)
    assert tlvs[0x001E] == b"0000001000\0"


async def test_receipts_twice_unknown_and_not_requested(
        smsc: ScriptedSmsc, esme: RawEsme) -> None:
    smsc.receipt_mode, smsc.receipt_delay = "twice", 0.05
    await esme.bind()
    assert await esme.submit(registered=0) == (0, "1000")
    assert await esme.submit() == (0, "1001")
    texts = []
    for _ in range(2):
        _, seq, body = await esme.expect(DELIVER)
        texts.append(parse_deliver(body)[2][:8])
        esme.send(DELIVER | RESP, b"\0", seq=seq)
    assert texts == [b"id:1001 ", b"id:1001 "]
    pushed = asyncio.create_task(smsc.send_receipt("999", stat="UNDELIV", err="0x1F",
                                                   tlvs=False))
    _, seq, body = await esme.expect(DELIVER)
    _, _, text, tlvs = parse_deliver(body)
    assert b"id:999 " in text and b"stat:UNDELIV err:0x1F" in text and tlvs == {}
    esme.send(DELIVER | RESP, b"\0", status=0x08, seq=seq)
    assert (await pushed).status == 0x08


async def test_throttle_burst_then_accept(smsc: ScriptedSmsc, esme: RawEsme) -> None:
    smsc.throttle(2)
    await esme.bind()
    assert [await esme.submit() for _ in range(3)] == [(0x58, ""), (0x58, ""), (0, "1000")]


async def test_withheld_delayed_and_window_maximum(smsc: ScriptedSmsc, esme: RawEsme) -> None:
    smsc.on_submit = lambda rec: (WITHHOLD if rec.dest_addr.startswith("2782") else
                                  Answer(delay=0.2) if rec.dest_addr == "27830000000" else
                                  0x0B if rec.dest_addr == "bad" else None)
    await esme.bind()
    for _ in range(5):
        esme.send(SUBMIT, submit_body("27821234567", b"w"))
    assert await esme.submit("bad") == (0x0B, "")
    await smsc.wait_for(lambda: len(smsc.submits) == 6)
    assert (smsc.outstanding(), smsc.max_outstanding) == (5, 6)
    started = asyncio.get_running_loop().time()
    assert await esme.submit("27830000000") == (0, "1000")
    assert asyncio.get_running_loop().time() - started >= 0.2
    smsc.release(smsc.submits[2], 0x58)
    status, seq, _ = await esme.expect(SUBMIT | RESP)
    assert (status, seq, smsc.outstanding()) == (0x58, smsc.submits[2].sequence, 4)


async def test_drop_with_a_full_window(smsc: ScriptedSmsc, esme: RawEsme) -> None:
    smsc.on_submit, smsc.drop_at_window = lambda rec: WITHHOLD, 3
    await esme.bind()
    for _ in range(3):
        esme.send(SUBMIT, submit_body("27821234567", b"w"))
    assert await esme.rest() == b""
    await smsc.wait_for(lambda: not smsc.sessions())
    assert smsc.max_outstanding == 3 and all(r.status is None for r in smsc.submits)


async def test_mo_ack_timing_and_multipart(smsc: ScriptedSmsc, esme: RawEsme) -> None:
    await esme.bind()
    pushed = asyncio.create_task(smsc.push_mo("27821234567", "31337", b"hi", data_coding=8))
    _, seq, body = await esme.expect(DELIVER)
    assert parse_deliver(body)[:3] == (0, 8, b"hi")
    await asyncio.sleep(0.2)  # "commit" before the ack
    esme.send(DELIVER | RESP, b"\0", seq=seq)
    result = await pushed
    assert result.status == 0 and result.elapsed >= 0.2 and result.kind == "mo"
    parts = asyncio.create_task(smsc.push_mo_parts("27821234567", "31337", [b"ab", b"cd"],
                                                   ref=0x1234, ref16=True, order=[1, 0]))
    seen = []
    for _ in range(2):
        _, seq, body = await esme.expect(DELIVER)
        seen.append(parse_deliver(body)[::2])
        esme.send(DELIVER | RESP, b"\0", seq=seq)
    assert seen == [(0x40, bytes.fromhex("0608041234 0202") + b"cd"),
                    (0x40, bytes.fromhex("0608041234 0201") + b"ab")]
    assert [d.status for d in await parts] == [0, 0]


async def test_unacked_deliver_sm_redelivered_on_rebind(smsc: ScriptedSmsc) -> None:
    smsc.redeliver_unacked = True
    pushed = asyncio.create_task(smsc.push_mo("27821234567", "31337", b"again"))
    first = await RawEsme.connect(smsc.port)
    await first.bind(BIND_RX)
    _, _, body = await first.expect(DELIVER)  # held until a receiver bound
    await first.close()  # "crash" before acking
    second = await RawEsme.connect(smsc.port)
    await second.bind(BIND_TRX)
    _, seq, body2 = await second.expect(DELIVER)
    assert body2 == body
    second.send(DELIVER | RESP, b"\0", seq=seq)
    result = await pushed
    assert (result.status, result.attempt, result.session) == (0, 2, 2)
    await second.close()


async def test_malformed_pdus_both_ways(smsc: ScriptedSmsc, esme: RawEsme) -> None:
    await esme.bind()
    seq = smsc.send_malformed("unknown_command")
    assert await esme.read() == (0x99, 0, seq, b"")
    esme.send(NACK, status=0x03, seq=seq)
    smsc.send_malformed("truncated")
    command_id, _, _, body = await esme.read()
    assert command_id == DELIVER and len(body) == 9
    esme.send(0x0000_0103)  # data_sm: not supported here
    assert (await esme.expect(NACK))[0] == 0x03
    esme.writer.write(struct.pack(">IIII", 8, SUBMIT, 0, 9))
    assert (await esme.expect(NACK))[0] == 0x02
    assert await esme.rest() == b""
    assert (1, NACK, 0x03, seq) in smsc.received


async def test_query_sm_and_smsc_initiated_unbind(smsc: ScriptedSmsc, esme: RawEsme) -> None:
    smsc.query_state = 5
    await esme.bind()
    esme.send(QUERY, z("1000") + bytes([5, 0]) + z("ACME"))
    assert await esme.expect(QUERY | RESP) == (0, 2, z("1000") + z("") + bytes([5, 0]))
    smsc.query_status = 0x67
    esme.send(QUERY, z("1001") + bytes([5, 0]) + z("ACME"))
    assert (await esme.expect(QUERY | RESP))[0] == 0x67
    assert smsc.queries == ["1000", "1001"]
    unbinding = asyncio.create_task(smsc.unbind())
    _, seq, _ = await esme.expect(UNBIND)
    esme.send(UNBIND | RESP, seq=seq)
    assert await unbinding == 0
    assert await esme.rest() == b""


@pytest.mark.parametrize(("kind", "length", "rest"),
                         [("short_length", 10, 14), ("huge_length", 0x7FFFFFFF, 12)])
async def test_bad_lengths_reach_the_client(smsc: ScriptedSmsc, esme: RawEsme, kind: str,
                                            length: int, rest: int) -> None:
    await esme.bind()
    smsc.send_malformed(kind)
    assert struct.unpack(">I", await esme.reader.readexactly(4))[0] == length
    await smsc.drop()
    assert len(await esme.rest()) == rest  # then the connection is gone


@pytest.mark.keeps_process_fds  # smpp34's tokio runtime lives as long as the process
async def test_smpp34_server_submit_and_receipt() -> None:
    smsc = await Smpp34Smsc(receipt_delay=0.05, receipt_seconds=True).start()
    esme = await RawEsme.connect(smsc.port)
    try:
        status, _ = await esme.bind(BIND_TRX)
        assert status == 0
        assert await esme.submit(message=b"hello", registered=1) == (0, "1000")
        _, seq, body = await esme.expect(DELIVER)
        esm, _, text, tlvs = parse_deliver(body)
        assert esm == 0x04 and re.match(rb"id:1000 sub:001 dlvrd:001 submit date:\d{12} ",
                                        text)
        assert tlvs == {0x001E: b"1000\0", 0x0427: b"\x02"}
        esme.send(DELIVER | RESP, b"\0", seq=seq)
        await smsc.wait_for(lambda: smsc.receipts)
        assert smsc.receipts == [("1000", 0)]
        assert smsc.submits[0].dest_addr == "27821234567" and smsc.binds[0][1] == "hub"
        seq = esme.send(UNBIND)  # quirk: smpp34 closes, often without unbind_resp
        assert await esme.rest() in (b"", struct.pack(">IIII", 16, UNBIND | RESP, 0, seq))
        await smsc.wait_for(lambda: smsc.unbound)
    finally:
        await esme.close()
        await smsc.stop()
    assert asyncio.all_tasks() == {asyncio.current_task()}

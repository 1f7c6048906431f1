"""A small SMPP 3.4 PDU codec for the test SMSCs, written with struct and independent of
the hub's own codec (so a bug cannot hide on both sides of the wire)."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field
from datetime import datetime

HEADER = struct.Struct(">IIII")  # command_length, command_id, command_status, sequence_number
MAX_PDU = 64 * 1024

# command ids (a response is the request id | RESP)
RESP = 0x80000000
GENERIC_NACK = 0x80000000
BIND_RECEIVER, BIND_TRANSMITTER, QUERY_SM, SUBMIT_SM, DELIVER_SM = 0x01, 0x02, 0x03, 0x04, 0x05
UNBIND, BIND_TRANSCEIVER, ENQUIRE_LINK = 0x06, 0x09, 0x15
BINDS = {BIND_RECEIVER: "RX", BIND_TRANSMITTER: "TX", BIND_TRANSCEIVER: "TRX"}

# command_status
ESME_ROK, ESME_RINVMSGLEN, ESME_RINVCMDLEN, ESME_RINVCMDID = 0x00, 0x01, 0x02, 0x03
ESME_RINVBNDSTS, ESME_RSYSERR, ESME_RINVDSTADR, ESME_RBINDFAIL = 0x04, 0x08, 0x0B, 0x0D
ESME_RINVPASWD, ESME_RMSGQFUL, ESME_RTHROTTLED, ESME_RQUERYFAIL = 0x0E, 0x14, 0x58, 0x67

# TLV tags
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_SAR_MSG_REF_NUM, TLV_SAR_TOTAL_SEGMENTS, TLV_SAR_SEGMENT_SEQNUM = 0x020C, 0x020E, 0x020F
TLV_MESSAGE_PAYLOAD, TLV_MESSAGE_STATE = 0x0424, 0x0427

# message_state values, by the stat word a receipt carries
MESSAGE_STATES = {"ENROUTE": 1, "DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5,
                  "ACCEPTD": 6, "UNKNOWN": 7, "REJECTD": 8}

ESM_RECEIPT = 0x04  # esm_class: SMSC delivery receipt
ESM_UDHI = 0x40  # esm_class: short_message starts with a user data header


@dataclass(frozen=True)
class Pdu:
    command_id: int
    status: int
    sequence: int
    body: bytes = b""

    def encode(self) -> bytes:
        return HEADER.pack(HEADER.size + len(self.body), self.command_id, self.status,
                           self.sequence) + self.body


class MalformedPdu(Exception):
    """The peer sent a PDU whose length or body does not parse."""


async def read_pdu(reader: asyncio.StreamReader) -> Pdu:
    """The next PDU; IncompleteReadError at EOF, MalformedPdu on an impossible length."""
    length, command_id, status, sequence = HEADER.unpack(await reader.readexactly(HEADER.size))
    if not HEADER.size <= length <= MAX_PDU:
        raise MalformedPdu(f"command_length {length}")
    return Pdu(command_id, status, sequence, await reader.readexactly(length - HEADER.size))


def cstr(value: str | bytes) -> bytes:
    return (value.encode("latin-1") if isinstance(value, str) else value) + b"\0"


def tlv(tag: int, value: bytes) -> bytes:
    return struct.pack(">HH", tag, len(value)) + value


class Body:
    """A cursor over a PDU body; every read raises MalformedPdu past the end."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise MalformedPdu("body truncated")
        chunk, self.pos = self.data[self.pos:self.pos + n], self.pos + n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def cstr(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise MalformedPdu("C-octet string not terminated")
        text, self.pos = self.data[self.pos:end].decode("latin-1"), end + 1
        return text

    def tlvs(self) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        while self.pos < len(self.data):
            tag, size = struct.unpack(">HH", self.take(4))
            found[tag] = self.take(size)
        return found


@dataclass
class ShortMessage:
    """The shared body of submit_sm and deliver_sm (SMPP 3.4 §4.4.1 / §4.6.1)."""

    source_addr: str = ""
    dest_addr: str = ""
    short_message: bytes = b""
    service_type: str = ""
    source_ton: int = 0
    source_npi: int = 0
    dest_ton: int = 1
    dest_npi: int = 1
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    tlvs: dict[int, bytes] = field(default_factory=dict)

    def encode(self) -> bytes:
        return (cstr(self.service_type) + bytes([self.source_ton, self.source_npi])
                + cstr(self.source_addr) + bytes([self.dest_ton, self.dest_npi])
                + cstr(self.dest_addr)
                + bytes([self.esm_class, self.protocol_id, self.priority_flag])
                + cstr(self.schedule_delivery_time) + cstr(self.validity_period)
                + bytes([self.registered_delivery, self.replace_if_present, self.data_coding,
                         self.sm_default_msg_id, len(self.short_message)])
                + self.short_message + b"".join(tlv(t, v) for t, v in self.tlvs.items()))

    @classmethod
    def decode(cls, data: bytes) -> ShortMessage:
        b = Body(data)
        sm = cls(service_type=b.cstr(), source_ton=b.u8(), source_npi=b.u8(),
                 source_addr=b.cstr(), dest_ton=b.u8(), dest_npi=b.u8(), dest_addr=b.cstr(),
                 esm_class=b.u8(), protocol_id=b.u8(), priority_flag=b.u8(),
                 schedule_delivery_time=b.cstr(), validity_period=b.cstr(),
                 registered_delivery=b.u8(), replace_if_present=b.u8(), data_coding=b.u8(),
                 sm_default_msg_id=b.u8())
        sm.short_message = b.take(b.u8())
        sm.tlvs = b.tlvs()
        return sm


def udh_concat(ref: int, total: int, seq: int, *, ref16: bool = False) -> bytes:
    """A concatenation user data header: IEI 0x00 (8-bit ref) or 0x08 (16-bit ref)."""
    if ref16:
        return bytes([6, 0x08, 4]) + struct.pack(">H", ref) + bytes([total, seq])
    return bytes([5, 0x00, 3, ref & 0xFF, total, seq])


def format_id(number: int, style: str) -> str:
    """A message id as an SMSC writes it: dec, hex, HEX, padded (10 decimal digits)
    or padded_hex (8 hex digits)."""
    return {"dec": f"{number}", "hex": f"{number:x}", "HEX": f"{number:X}",
            "padded": f"{number:010d}", "padded_hex": f"{number:08x}"}[style]


def receipt_text(message_id: str, *, stat: str = "DELIVRD", err: str = "000",
                 submitted: datetime, done: datetime, seconds: bool = False,
                 text: bytes = b"") -> bytes:
    """The de-facto receipt text (SMPP 3.4 appendix B), with 10- or 12-digit dates."""
    fmt = "%y%m%d%H%M%S" if seconds else "%y%m%d%H%M"
    dlvrd = "001" if stat == "DELIVRD" else "000"
    return (f"id:{message_id} sub:001 dlvrd:{dlvrd} submit date:{submitted.strftime(fmt)} "
            f"done date:{done.strftime(fmt)} stat:{stat} err:{err} text:").encode() + text[:20]

"""SMPP 3.4 PDUs on the wire: framing, the small session PDUs (bind, enquire_link,
unbind, responses) with struct, and submit_sm / deliver_sm through smpp34's codec."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import smpp34

from hub.model import record

HEADER = struct.Struct("!IIII")
HEADER_SIZE = HEADER.size
# Nothing an SMSC sends us is near this; a larger length is a broken or hostile peer.
MAX_PDU = 65_536

GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
QUERY_SM = 0x00000003
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
BIND_TRANSCEIVER = 0x00000009
ENQUIRE_LINK = 0x00000015
RESPONSE = 0x80000000

ESME_ROK = 0x00000000
ESME_RINVCMDLEN = 0x00000002
ESME_RINVCMDID = 0x00000003
ESME_RSYSERR = 0x00000008
ESME_RX_T_APPN = 0x00000064  # ESME receiver temporary error: "send it again later"

TLV_RECEIPTED_MESSAGE_ID = 0x001E


class PduError(Exception):
    """A PDU we cannot read: the session answers generic_nack or drops the link."""


@record
class Header:
    length: int
    command_id: int
    status: int
    sequence: int


def header(data: bytes | bytearray) -> Header:
    length, command_id, status, sequence = HEADER.unpack_from(data)
    if not HEADER_SIZE <= length <= MAX_PDU:
        raise PduError(f"command_length {length} is outside {HEADER_SIZE}..{MAX_PDU}")
    return Header(length, command_id, status, sequence)


def frame(command_id: int, sequence: int, body: bytes = b"", status: int = ESME_ROK) -> bytes:
    return HEADER.pack(HEADER_SIZE + len(body), command_id, status, sequence) + body


def cstring(value: str, limit: int) -> bytes:
    """A C-octet string of at most `limit` octets including the NUL (the spec's sizes)."""
    raw = value.encode("ascii", "replace")[: limit - 1]
    return raw + b"\0"


def read_cstring(body: bytes, offset: int = 0) -> tuple[str, int]:
    end = body.find(b"\0", offset)
    if end < 0:
        raise PduError("a C-octet string has no terminating NUL")
    return body[offset:end].decode("ascii", "replace"), end + 1


@dataclass(frozen=True, slots=True)
class BindParams:
    system_id: str
    password: str
    system_type: str = ""
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


def bind(command_id: int, sequence: int, p: BindParams) -> bytes:
    body = (cstring(p.system_id, 16) + cstring(p.password, 9) + cstring(p.system_type, 13)
            + bytes((0x34, p.addr_ton, p.addr_npi)) + cstring(p.address_range, 41))
    return frame(command_id, sequence, body)


def query_sm(sequence: int, message_id: str, source: str, ton: int, npi: int) -> bytes:
    body = cstring(message_id, 65) + bytes((ton, npi)) + cstring(source, 21)
    return frame(QUERY_SM, sequence, body)


@dataclass(frozen=True, slots=True)
class QueryAnswer:
    message_id: str
    final_date: str
    message_state: int
    error_code: int


def read_query_sm_resp(body: bytes) -> QueryAnswer:
    message_id, at = read_cstring(body)
    final_date, at = read_cstring(body, at)
    if len(body) < at + 2:
        raise PduError("query_sm_resp is too short")
    return QueryAnswer(message_id, final_date, body[at], body[at + 1])


@record
class Submit:
    """One submit_sm as the carrier builds it."""
    source: str
    source_ton: int
    source_npi: int
    destination: str
    short_message: bytes
    esm_class: int
    data_coding: int
    registered_delivery: int
    tlvs: tuple[tuple[int, bytes], ...] = ()
    validity_period: str = ""


def submit_sm(sequence: int, s: Submit) -> bytes:
    pdu = smpp34.SubmitSm(
        s.source, s.destination, s.short_message,
        source_addr_ton=s.source_ton, source_addr_npi=s.source_npi,
        dest_addr_ton=1, dest_addr_npi=1,  # destinations are E.164, international
        esm_class=s.esm_class, data_coding=s.data_coding,
        registered_delivery=s.registered_delivery, validity_period=s.validity_period,
        tlvs=[smpp34.Tlv(tag, value) for tag, value in s.tlvs],
        sequence_number=sequence,
    )
    return pdu.encode()


def submit_sm_resp_id(body: bytes) -> str:
    """The message id of a submit_sm_resp body (empty when the SMSC sent none)."""
    if not body:
        return ""
    return read_cstring(body)[0]


@record
class Delivered:
    """What the carrier needs of a deliver_sm: a receipt or a mobile-originated message."""
    source: str
    destination: str
    esm_class: int
    data_coding: int
    short_message: bytes
    tlvs: tuple[tuple[int, bytes], ...]


def read_deliver_sm(pdu: bytes) -> Delivered:
    try:
        decoded = smpp34.decode(pdu)
    except smpp34.SmppError as exc:  # translated at the boundary: the library's error
        raise PduError(f"unreadable deliver_sm: {exc}") from exc
    if not isinstance(decoded, smpp34.DeliverSm):
        raise PduError("not a deliver_sm")
    return Delivered(
        decoded.source_addr, decoded.destination_addr, decoded.esm_class,
        decoded.data_coding, decoded.short_message,
        tuple((t.tag, t.value) for t in decoded.tlvs),
    )
